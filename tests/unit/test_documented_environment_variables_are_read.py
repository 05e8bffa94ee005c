"""The environment variables the docs tell people about are the ones the code reads: the functions' configuration
table of docs/architecture.md against template.yaml and ``agentops_server.config``, the local stack's table of
infra/README.md against ``infra/``, and the SDK's ``AGENTOPS_*`` variables against the SDK."""

from __future__ import annotations

import re
from pathlib import Path

from infra.template import function_definitions, load_template
from tests.support.paths import REPO_ROOT, TEMPLATE

VARIABLE = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")


def _table_variables(doc: Path, heading: str) -> set[str]:
    """The variables named in the first column of the table under ``heading``."""
    section = doc.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in VARIABLE.findall(row)}


def _source(*folders: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for folder in folders for path in sorted(folder.rglob("*.py")))


def test_every_function_variable_of_the_template_is_documented_and_every_documented_one_is_set() -> None:
    documented = _table_variables(REPO_ROOT / "docs" / "architecture.md", "## Configuration")
    template = {name for function in function_definitions(load_template(TEMPLATE)) for name in function.environment}
    functions_variables = {name for name in template if not name.startswith("POWERTOOLS_")}
    assert functions_variables <= documented, functions_variables - documented
    local_only = {"ARCHIVE_RETENTION_DAYS", "AWS_ENDPOINT_URL"}  # the table says: local stack, boto3
    assert documented - local_only <= functions_variables, documented - local_only - functions_variables
    config = (REPO_ROOT / "layers" / "server" / "agentops_server" / "config.py").read_text(encoding="utf-8")
    assert all(f'"{name}"' in config for name in functions_variables)
    assert all(f'"{name}"' in _source(REPO_ROOT / "infra") for name in local_only)


def test_the_local_stacks_variables_are_read_by_the_local_stack() -> None:
    documented = _table_variables(REPO_ROOT / "infra" / "README.md", "## Environment")
    infra = _source(REPO_ROOT / "infra")
    template = {name for function in function_definitions(load_template(TEMPLATE)) for name in function.environment}
    unread = {name for name in documented if f'"{name}"' not in infra and name not in template}
    assert not unread


def test_the_sdks_variables_are_read_by_the_sdk() -> None:
    docs = [REPO_ROOT / "README.md", REPO_ROOT / "sdk" / "README.md", *(REPO_ROOT / "docs").glob("*.md")]
    documented = {name for doc in docs for name in re.findall(r"\bAGENTOPS_[A-Z_]+\b", doc.read_text(encoding="utf-8"))}
    sdk = _source(REPO_ROOT / "sdk" / "src")
    assert documented, "the docs name the SDK's variables"
    assert {name for name in documented if f'"{name}"' not in sdk} == set()
