"""The project's own commands in docs/operations.md parse as written: every option a runbook gives
``agentops-replay``, ``agentops-verify`` or ``agentops-log-audit`` is one the command accepts (placeholders such as
``<session_id>`` stand for any value)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable

import pytest
from agentops_replay.cli._main import _parser as replay_parser
from agentops_verify._cli import _argument_parser as verify_parser
from agentops_verify._logaudit import _argument_parser as log_audit_parser

from tests.support.paths import REPO_ROOT

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "agentops-replay": replay_parser,
    "agentops-verify": verify_parser,
    "agentops-log-audit": log_audit_parser,
}
# A command starts a line of a code block or an inline code span; it ends where the span, line or shell list does.
COMMAND = re.compile(r"(?:^[ \t]*|(?<=`))(agentops-(?:replay|verify|log-audit) [^`\n|&;#]+)", re.MULTILINE)


def documented_commands() -> list[str]:
    text = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    return sorted({match.strip() for match in COMMAND.findall(text)})


def test_the_runbooks_use_the_projects_commands() -> None:
    assert {command.split()[0] for command in documented_commands()} == set(PARSERS)


@pytest.mark.parametrize("command", documented_commands())
def test_a_documented_command_parses(command: str) -> None:
    program, *arguments = shlex.split(re.sub(r"<[^>]+>", "placeholder", command))
    try:
        PARSERS[program]().parse_args(arguments)
    except SystemExit as exit_:
        pytest.fail(f"{command!r} does not parse (exit {exit_.code})")
