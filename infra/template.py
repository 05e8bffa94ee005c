"""Read ``template.yaml``: the single source of truth for the table schema and the HTTP routes.

The template is parsed with cfn-lint's YAML decoder, which understands the short-form intrinsics (``!Ref``, ``!Sub``,
``!GetAtt``) that a plain YAML loader rejects. Everything returned here is plain Python data (dicts, lists, str,
bool, int) so callers can hand it to boto3 or compare it in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "template.yaml"
TABLE_TYPE = "AWS::DynamoDB::Table"
FUNCTION_TYPE = "AWS::Serverless::Function"


class TemplateError(Exception):
    """The template lacks something the local stack needs (a table, a handler folder, a route)."""


def load_template(template_path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data (cfn-lint's node subclasses stripped)."""
    # Imported here: cfn-lint takes seconds and tens of MB to import, and processes that only run handlers
    # (through infra.lambda_runtime, whose route types live beside this) never read a template.
    from cfnlint.decode import cfn_yaml  # noqa: PLC0415

    template: dict[str, Any] = _plain(cfn_yaml.load(str(template_path)))
    return template


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def table_properties(template: dict[str, Any]) -> dict[str, Any]:
    """Properties of the template's only DynamoDB table."""
    tables = resources_of_type(template, TABLE_TYPE)
    if len(tables) != 1:
        raise TemplateError(f"expected exactly one {TABLE_TYPE}, found {sorted(tables)}")
    (table,) = tables.values()
    properties: dict[str, Any] = table["Properties"]
    return properties


@dataclass(frozen=True)
class HttpRoute:
    """One ``HttpApi`` event of a function: ``method`` is upper case (or ``ANY``), ``path`` uses ``{name}`` params."""

    function_logical_id: str
    code_uri: str  # e.g. "functions/ingest/"
    method: str
    path: str
    authorized: bool  # False when the event sets ``Auth: {Authorizer: NONE}``

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def http_routes(template: dict[str, Any]) -> list[HttpRoute]:
    """Every ``HttpApi`` event declared by the template's functions, in template order."""
    routes: list[HttpRoute] = []
    for logical_id, function in resources_of_type(template, FUNCTION_TYPE).items():
        properties = function.get("Properties", {})
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            event_properties = event["Properties"]
            authorizer = event_properties.get("Auth", {}).get("Authorizer")
            routes.append(
                HttpRoute(
                    function_logical_id=logical_id,
                    code_uri=properties["CodeUri"],
                    method=event_properties["Method"].upper(),
                    path=event_properties["Path"],
                    authorized=authorizer != "NONE",
                )
            )
    return routes


@dataclass(frozen=True)
class FunctionDefinition:
    """A function's settings with the template's ``Globals.Function`` applied (values may be intrinsics)."""

    logical_id: str
    code_uri: str
    handler: str  # "<module>.<attribute>", e.g. "app.lambda_handler"
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, Any]


def function_definitions(template: dict[str, Any]) -> list[FunctionDefinition]:
    defaults = template.get("Globals", {}).get("Function", {})
    default_environment = defaults.get("Environment", {}).get("Variables", {})
    definitions = []
    for logical_id, function in resources_of_type(template, FUNCTION_TYPE).items():
        properties = function["Properties"]
        environment = {**default_environment, **properties.get("Environment", {}).get("Variables", {})}
        definitions.append(
            FunctionDefinition(
                logical_id=logical_id,
                code_uri=properties["CodeUri"],
                handler=properties.get("Handler", defaults.get("Handler")),
                # Lambda's own defaults apply when neither the function nor Globals set them.
                memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
                timeout_seconds=int(properties.get("Timeout", defaults.get("Timeout", 3))),
                environment=environment,
            )
        )
    return definitions


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    """Each parameter's default as the string CloudFormation would substitute for ``!Ref``."""
    return {
        name: str(parameter["Default"])
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" in parameter
    }


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node
