"""The project's own commands in the user documentation parse as written: every ``agentops-replay``,
``agentops-verify`` or ``agentops-log-audit`` command in a code block (and every one a runbook of docs/operations.md
gives inline) is one the command accepts, and every option any of them names, inline mentions and synopses
included, is an option of that command. Placeholders such as ``<session_id>`` stand for any value."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable

import pytest
from agentops_replay.cli._main import _parser as replay_parser
from agentops_verify._cli import _argument_parser as verify_parser
from agentops_verify._logaudit_cli import _argument_parser as log_audit_parser

from tests.support.paths import REPO_ROOT

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "agentops-replay": replay_parser,
    "agentops-verify": verify_parser,
    "agentops-log-audit": log_audit_parser,
}
USER_DOCS = sorted(
    path.relative_to(REPO_ROOT).as_posix()
    for path in (
        REPO_ROOT / "README.md",
        REPO_ROOT / "SECURITY.md",
        REPO_ROOT / "verifier" / "README.md",
        REPO_ROOT / "sdk" / "README.md",
        REPO_ROOT / "infra" / "README.md",
        *(REPO_ROOT / "docs").glob("*.md"),
    )
)
# A command starts a line of a code block or an inline code span; it ends where the span, line or shell list does.
COMMAND = re.compile(r"(?:^[ \t]*|(?<=`))(agentops-(?:replay|verify|log-audit) [^`\n|&;#]+)", re.MULTILINE)
CODE_BLOCK = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _text(doc: str) -> str:
    """The document with each shell command's continuation lines joined into one line."""
    return re.sub(r"\\\n\s*", "", (REPO_ROOT / doc).read_text(encoding="utf-8"))


def complete_commands() -> list[tuple[str, str]]:
    """Whole commands: those in code blocks (synopses, with their ``[...]``, aside) and a runbook's inline ones."""
    found = set()
    for doc in USER_DOCS:
        text = _text(doc)
        sources = CODE_BLOCK.findall(text) + ([text] if doc == "docs/operations.md" else [])
        for source in sources:
            found |= {(doc, match.strip()) for match in COMMAND.findall(source) if "[" not in match}
    return sorted(found)


def mentioned_commands() -> list[tuple[str, str]]:
    """Every command or fragment of one, whole or not (``agentops-verify --receipts`` in a sentence)."""
    return sorted({(doc, match.strip()) for doc in USER_DOCS for match in COMMAND.findall(_text(doc))})


def _options_of(program: str, arguments: list[str]) -> set[str]:
    parser = PARSERS[program]()
    subcommands = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    words = [word for word in arguments if not word.startswith("-")]
    if subcommands and words and words[0] in subcommands[0].choices:
        parser = subcommands[0].choices[words[0]]
    return {option for action in parser._actions for option in action.option_strings}


def test_the_docs_use_each_of_the_projects_commands() -> None:
    assert {command.split()[0] for _, command in complete_commands()} == set(PARSERS)
    assert {command.split()[0] for doc, command in complete_commands() if doc == "docs/operations.md"} == set(PARSERS)


@pytest.mark.parametrize(("doc", "command"), complete_commands())
def test_a_documented_command_parses(doc: str, command: str) -> None:
    program, *arguments = shlex.split(re.sub(r"<[^>]+>", "placeholder", command))
    try:
        PARSERS[program]().parse_args(arguments)
    except SystemExit as exit_:
        pytest.fail(f"{doc}: {command!r} does not parse (exit {exit_.code})")


@pytest.mark.parametrize(("doc", "command"), mentioned_commands())
def test_every_option_a_doc_names_exists(doc: str, command: str) -> None:
    program, *arguments = re.sub(r"<[^>]+>", "placeholder", command).split()
    unknown = set(OPTION.findall(command)) - _options_of(program, arguments)
    assert not unknown, f"{doc}: {command!r} names options {program} does not have"
