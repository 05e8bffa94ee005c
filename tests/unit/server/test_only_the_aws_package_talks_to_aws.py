"""The layering rule of docs/architecture.md, enforced on the source: only ``agentops_server.aws`` talks to AWS.

Every module of the server layer outside ``agentops_server/aws/`` (interfaces, pure cores, in-memory doubles) and
every module of the verifier must import neither boto3 nor botocore, nor anything from ``agentops_server.aws``. A core
that reached AWS through an interface module would fail here on that interface module, so the rule also holds
transitively: an import chain from a core to botocore has to pass through a module this test reads.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import agentops_server
import agentops_verify
import pytest

SERVER_ROOT = Path(agentops_server.__file__).parent
VERIFIER_ROOT = Path(agentops_verify.__file__).parent
AWS_PACKAGE = "agentops_server.aws"
FORBIDDEN_ROOTS = ("boto3", "botocore", AWS_PACKAGE)


def _imported_modules(path: Path, package: str) -> set[str]:
    """Every module named by an import statement of the file, relative imports resolved against ``package``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _forbidden(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in FORBIDDEN_ROOTS)


def _modules_outside_aws() -> list[Any]:
    modules = []
    for root, top in ((SERVER_ROOT, "agentops_server"), (VERIFIER_ROOT, "agentops_verify")):
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if relative.parts[0] == "aws":
                continue
            package = ".".join([top, *relative.parts[:-1]])
            modules.append(pytest.param(path, package, id=f"{top}/{relative}"))
    return modules


def test_the_aws_sub_package_exists_and_holds_the_adapters() -> None:
    adapters = {path.stem for path in (SERVER_ROOT / "aws").glob("*.py")}
    assert {"dynamodb", "s3_archive", "s3_archive_reader", "s3_export_store", "s3_once", "kms_signer"} <= adapters


@pytest.mark.parametrize(("path", "package"), _modules_outside_aws())
def test_no_module_outside_the_aws_package_imports_boto3_botocore_or_the_adapters(path: Path, package: str) -> None:
    offending = sorted(name for name in _imported_modules(path, package) if _forbidden(name))
    assert offending == [], f"{path} imports {offending}: AWS code belongs in agentops_server/aws/"


def test_the_rule_catches_an_import_of_botocore_through_any_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "core.py"
    sample.write_text(
        "import json\nfrom botocore.exceptions import ClientError\nfrom .aws import dynamodb\n", encoding="utf-8"
    )
    imported = _imported_modules(sample, "agentops_server")
    assert sorted(name for name in imported if _forbidden(name)) == [
        "agentops_server.aws",
        "agentops_server.aws.dynamodb",
        "botocore.exceptions",
        "botocore.exceptions.ClientError",
    ]
