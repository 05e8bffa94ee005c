"""The local stack (API.md "Local stack"): moto plays AWS, the real handlers serve the HTTP API on 127.0.0.1.

``python -m infra.local_stack`` (``make dev``):

1. starts a moto server on a free port and points boto3 at it (``AWS_ENDPOINT_URL``, dummy credentials, us-east-1)
   before any handler is imported, so presigned URLs the functions produce point at moto too;
2. creates the table (schema read from ``template.yaml``), the Object Lock archive bucket and the P-256 seal key;
3. sets each function's environment variables from the template (``!Ref`` resolved to the local resources and to
   parameter defaults; a parameter-backed variable already set in the environment, e.g. ``SEAL_IDLE_SECONDS``, wins);
4. serves the template's ``HttpApi`` routes on 127.0.0.1:``PORT`` (default 3000, 0 picks a free port), turning each
   request into the API Gateway HTTP API payload 2.0 event and calling the same ``lambda_handler`` as Lambda;
5. runs the sealer every ``SEAL_INTERVAL_SECONDS`` (default 60) as the template's ``SealSchedule`` does, with its
   retry and dead-letter path (``infra.scheduler``: a failed run leaves a message in the local dead-letter queue),
   and on ``POST /_local/seal``;
6. serves the local console (``infra.console``) at ``/_local/console``: the session list, each session in the viewer;
7. serves Lambda's ``Invoke`` call with ``InvocationType=Event`` (the functions' ``AWS_ENDPOINT_URL_LAMBDA``), so an
   export job runs in a new invocation of the export function as on AWS, and ``POST /_local/parameters``, a stack
   update with new parameter values (a key rotation sets ``SealKeyArn``).
8. writes the functions' structured log lines (the Powertools JSON lines Lambda sends to CloudWatch) to
   ``FUNCTION_LOG_FILE`` (default ``.local/logs/functions.log``, appended) and prints where they go.

SIGTERM or SIGINT stops the HTTP server, the sealing loop and moto, and the process exits 0.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3

from infra.apigw import LOCAL_ACCOUNT_ID, RouteTable, build_http_event
from infra.console import Page, console_page, is_console_path, route_caller
from infra.lambda_runtime import FunctionPool, FunctionSpec, HandlerNotInstalledError, write_function_logs_to
from infra.moto_server import SerializedMotoServer
from infra.resources import create_archive_bucket, create_seal_key, create_table
from infra.scheduler import LocalScheduler, ScheduleDefinition, create_dead_letter_queue
from infra.template import (
    TEMPLATE_PATH,
    FunctionDefinition,
    TemplateError,
    function_definitions,
    http_routes,
    load_template,
    parameter_defaults,
)

READY_MESSAGE = "AgentOps Replay local stack ready at http://127.0.0.1:{port}"
LOGS_MESSAGE = "Function logs (structured JSON lines, as in CloudWatch): {path}"
DEFAULT_FUNCTION_LOG_FILE = TEMPLATE_PATH.parent / ".local" / "logs" / "functions.log"
REGION = "us-east-1"
ARCHIVE_BUCKET_NAME = "agentops-replay-archive"
SEAL_FUNCTION = "SealFunction"
DEFAULT_PORT = 3000
DEFAULT_SEAL_INTERVAL_SECONDS = 60.0
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit; the handler enforces the API's own 1 MiB
# Lambda's Invoke API (the functions' boto3 Lambda client is pointed here, AWS_ENDPOINT_URL_LAMBDA).
LAMBDA_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


@dataclass(frozen=True)
class LocalResources:
    aws_endpoint: str
    table: str
    archive_bucket: str
    kms_key_id: str
    kms_key_arn: str
    seal_dead_letter_queue_url: str

    def info(self) -> dict[str, str]:
        return {
            "aws_endpoint": self.aws_endpoint,
            "region": REGION,
            "table": self.table,
            "archive_bucket": self.archive_bucket,
            "kms_key_id": self.kms_key_id,
            "seal_dead_letter_queue_url": self.seal_dead_letter_queue_url,
        }


def point_boto3_at(endpoint: str) -> None:
    """Route every boto3 client in this process to moto, with credentials that can never reach a real account."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(variable, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local-stack",
            "AWS_SECRET_ACCESS_KEY": "local-stack",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )


def create_resources(endpoint: str, template_path: Path, retention_days: int) -> LocalResources:
    table = create_table(boto3.client("dynamodb"), template_path)
    create_archive_bucket(boto3.client("s3"), ARCHIVE_BUCKET_NAME, retention_days)
    kms = boto3.client("kms")
    key_id = create_seal_key(kms)
    key_arn: str = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    template = load_template(template_path)
    queue_url = create_dead_letter_queue(boto3.client("sqs"), template, ScheduleDefinition.from_template(template))
    return LocalResources(endpoint, table, ARCHIVE_BUCKET_NAME, key_id, key_arn, queue_url)


def resolve_environment(
    functions: list[FunctionDefinition],
    parameters: dict[str, str],
    resources: LocalResources,
    conditions: dict[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The union of the functions' environment variables with intrinsics resolved against the local resources and the
    template's ``conditions``. A variable that is a plain ``!Ref`` of a parameter takes its value from ``overrides``
    (the launching environment, e.g. ``SEAL_IDLE_SECONDS``) when set there."""
    overrides = os.environ if overrides is None else overrides
    references = {
        "ChainTable": resources.table,
        "ArchiveBucket": resources.archive_bucket,
        "SealKey": resources.kms_key_id,
    }
    attributes = {("SealKey", "Arn"): resources.kms_key_arn, ("SealKey", "KeyId"): resources.kms_key_id}

    def resolve(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        if set(value) == {"Ref"} and value["Ref"] in references:
            return references[value["Ref"]]
        if set(value) == {"Fn::GetAtt"} and tuple(_get_att(value["Fn::GetAtt"])) in attributes:
            return attributes[tuple(_get_att(value["Fn::GetAtt"]))]  # type: ignore[index]
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return resolve(when_true if condition_holds(condition, conditions or {}, parameters) else when_false)
        return None

    environment: dict[str, str] = {}
    for function in functions:
        for name, value in function.environment.items():
            if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters and name in overrides:
                environment[name] = overrides[name]
                continue
            resolved = resolve(value)
            if resolved is None:
                raise TemplateError(f"{function.logical_id}: the local stack cannot resolve {name}={value!r}")
            environment[name] = resolved
    return environment


def condition_holds(name: str, conditions: dict[str, Any], parameters: dict[str, str]) -> bool:
    """A template condition built from ``Fn::Equals``, ``Fn::Not`` and parameter ``Ref``s, as CloudFormation decides
    it for these parameter values."""

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Fn::Equals"}:
            left, right = (evaluate(side) for side in node["Fn::Equals"])
            return left == right
        if isinstance(node, dict) and set(node) == {"Fn::Not"}:
            return not evaluate(node["Fn::Not"][0])
        if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]]
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return evaluate(conditions[node["Condition"]])
        if isinstance(node, str):
            return node
        raise TemplateError(f"the local stack cannot evaluate the condition {name}: {node!r}")

    return bool(evaluate(conditions[name]))


def _get_att(value: str | list[str]) -> list[str]:
    return value.split(".", 1) if isinstance(value, str) else value


class SealRunner:
    """Runs the sealer (``functions/seal/app.py``) once at a time, on demand and on a timer."""

    def __init__(
        self,
        pool: FunctionPool | None,
        interval_seconds: float,
        schedule: ScheduleDefinition | None = None,
        dead_letter_queue_url: str | None = None,
    ) -> None:
        self._pool = pool
        self._interval = interval_seconds
        self._schedule = (
            None
            if schedule is None or dead_letter_queue_url is None
            else LocalScheduler(schedule, self._scheduled_run, boto3.client("sqs"), dead_letter_queue_url, REGION)
        )
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="seal-loop", daemon=True)

    @property
    def installed(self) -> bool:
        return self._pool is not None and self._pool.spec.installed

    def seal_now(self) -> list[str]:
        if self._pool is None:
            raise HandlerNotInstalledError("the template declares no SealFunction")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": LOCAL_ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{LOCAL_ACCOUNT_ID}:rule/local-seal-schedule"],
            "detail": {},
        }
        result = self.invoke(event)
        return [str(session_id) for session_id in result["sealed"]]

    def replace_pool(self, pool: FunctionPool) -> None:
        """Serve later runs from new execution environments (after a configuration change)."""
        with self._lock:
            self._pool = pool

    def invoke(self, event: dict[str, Any]) -> Any:
        if self._pool is None:
            raise HandlerNotInstalledError("the template declares no SealFunction")
        with self._lock:
            return self._pool.invoke(event)

    def run_scheduled(self) -> Any:
        """One tick of the schedule, with its retries and dead-letter queue: the run's result, None if dead-lettered."""
        if self._schedule is None:
            raise HandlerNotInstalledError("the local stack was started without the template's SealSchedule")
        return self._schedule.fire()

    def _scheduled_run(self, event: dict[str, Any]) -> Any:
        try:
            return self.invoke(event)
        except Exception:
            traceback.print_exc()  # the developer sees why; the scheduler dead-letters the run
            raise

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self.installed:
                continue
            if self._schedule is not None:
                self.run_scheduled()  # a failed run is dead-lettered, and the next tick is its retry
                continue
            try:
                self.seal_now()
            except Exception:
                # A failing run is logged and retried on the next tick, like a failed scheduled invocation.
                traceback.print_exc()


@dataclass(frozen=True)
class StackConfiguration:
    """What a CloudFormation update can change: the parameter values, and the template they are applied to."""

    functions: list[FunctionDefinition]
    parameters: dict[str, str]
    conditions: dict[str, Any]
    overrides: dict[str, str]  # the launching environment's values of parameter-backed variables

    def environment(self, resources: LocalResources) -> dict[str, str]:
        return resolve_environment(self.functions, self.parameters, resources, self.conditions, self.overrides)


class LocalStack:
    def __init__(
        self,
        resources: LocalResources,
        routes: RouteTable,
        pools: dict[str, FunctionPool],
        sealer: SealRunner,
        configuration: StackConfiguration | None = None,
    ):
        self.resources = resources
        self.routes = routes
        self.pools = pools
        self.sealer = sealer
        self.configuration = configuration
        self._configuring = threading.Lock()

    def update_parameters(self, changes: dict[str, str]) -> list[str]:
        """What a stack update with new parameter values does (``POST /_local/parameters``): each function whose
        resolved environment changes gets new execution environments, which read it at their cold start. Returns
        the logical ids of those functions."""
        if self.configuration is None:
            raise TemplateError("this stack was started without its template's configuration")
        with self._configuring:
            unknown = sorted(set(changes) - set(self.configuration.parameters))
            if unknown:
                raise TemplateError(f"no such template parameters: {unknown}")
            before = self.configuration
            # A parameter set by the update wins over the launching environment's value of its variable.
            overridden = {
                name
                for function in before.functions
                for name, value in function.environment.items()
                if isinstance(value, dict) and value.get("Ref") in changes
            }
            after = dataclasses.replace(
                before,
                parameters={**before.parameters, **changes},
                overrides={name: value for name, value in before.overrides.items() if name not in overridden},
            )
            environment = after.environment(self.resources)  # raises before anything changes
            old_environment = before.environment(self.resources)
            changed = sorted({name for name in environment if environment[name] != old_environment.get(name)})
            os.environ.update(environment)
            self.configuration = after
            restarted = [
                function.logical_id
                for function in after.functions
                if any(name in function.environment for name in changed) and function.logical_id in self.pools
            ]
            for logical_id in restarted:
                self.pools[logical_id] = FunctionPool(self.pools[logical_id].spec)
                if logical_id == SEAL_FUNCTION:
                    self.sealer.replace_pool(self.pools[logical_id])
            return restarted

    def invoke_asynchronously(self, function_name: str, event: Any) -> bool:
        """Lambda's ``Invoke`` with ``InvocationType=Event``: queued, run on its own thread; False for an unknown
        function. ``function_name`` is a logical id (the local context's function name) or an ARN ending in one."""
        logical_id = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        pool = self.pools.get(logical_id)
        if pool is None:
            return False

        def run() -> None:
            try:
                pool.invoke(event)
            except Exception:
                # Lambda logs an asynchronous invocation's failure; nobody waits for its answer.
                traceback.print_exc()

        threading.Thread(target=run, name=f"async-{logical_id}", daemon=True).start()
        return True


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, stack: LocalStack) -> None:
        super().__init__(("127.0.0.1", port), LocalApiRequestHandler)
        self.stack = stack

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class LocalApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
    server: LocalApiServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a test run sends thousands of requests."""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BodyTooLargeError:
            self._send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", "request body too large")
            self.close_connection = True
            return
        stack = self.server.stack
        url = urlsplit(self.path)
        if url.path == "/_local/info" and self.command == "GET":
            self._send_json(HTTPStatus.OK, stack.resources.info())
            return
        if url.path == "/_local/seal" and self.command == "POST":
            self._seal_now(stack.sealer)
            return
        if url.path == "/_local/parameters" and self.command == "POST":
            self._update_parameters(stack, body)
            return
        invocation = LAMBDA_INVOKE_PATH.match(url.path)
        if invocation is not None and self.command == "POST":
            self._invoke(stack, unquote(invocation.group(1)), body)
            return
        if is_console_path(url.path) and self.command == "GET":
            self._send_page(console_page(route_caller(stack.routes, stack.pools), url.path, url.query))
            return
        match = stack.routes.match(self.command, url.path)
        if match is None:
            self._send_error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route for {self.command} {url.path}")
            return
        event = build_http_event(
            method=self.command,
            raw_path=url.path,
            raw_query=url.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            match=match,
            request_id=str(uuid.uuid4()),
            domain_name=self.headers.get("host", f"127.0.0.1:{self.server.port}"),
        )
        try:
            result = stack.pools[match.route.function_logical_id].invoke(event)
        except HandlerNotInstalledError as error:
            self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, "HANDLER_NOT_INSTALLED", str(error))
            return
        except Exception:
            # What API Gateway does when the Lambda fails: a 500 (here in the API's error shape).
            traceback.print_exc()
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the function failed")
            return
        self._send_lambda_result(result)

    def _update_parameters(self, stack: LocalStack, body: bytes) -> None:
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict) or not all(isinstance(value, str) for value in changes.values()):
                raise TemplateError("the body is an object of parameter names and string values")
            restarted = stack.update_parameters(changes)
        except (ValueError, TemplateError) as error:
            self._send_error(HTTPStatus.BAD_REQUEST, "VALIDATION_ERROR", str(error))
            return
        self._send_json(HTTPStatus.OK, {"restarted": restarted})

    def _invoke(self, stack: LocalStack, function_name: str, body: bytes) -> None:
        if self.headers.get("x-amz-invocation-type") != "Event":
            self._send_error(HTTPStatus.BAD_REQUEST, "InvalidParameterValueException", "only Event invocations")
            return
        if not stack.invoke_asynchronously(function_name, json.loads(body or b"{}")):
            self._send_error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no function {function_name}")
            return
        self.send_response(HTTPStatus.ACCEPTED)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _seal_now(self, sealer: SealRunner) -> None:
        if not sealer.installed:
            self._send_error(
                HTTPStatus.SERVICE_UNAVAILABLE, "SEALER_NOT_INSTALLED", "functions/seal/app.py is not installed"
            )
            return
        try:
            sealed = sealer.seal_now()
        except Exception:
            traceback.print_exc()
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "the sealer failed")
            return
        self._send_json(HTTPStatus.OK, {"sealed": sealed})

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked_body()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise _BodyTooLargeError
        return self.rfile.read(length) if length else b""

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLargeError
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send_lambda_result(self, result: Any) -> None:
        # Payload format 2.0: a dict with statusCode is a full response; anything else is a 200 JSON body.
        if not (isinstance(result, dict) and "statusCode" in result):
            self._send_json(HTTPStatus.OK, result)
            return
        body = result.get("body") or ""
        payload = _decode_body(body, bool(result.get("isBase64Encoded")))
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(values)
        self.send_response(int(result["statusCode"]))
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, str(value))
        for cookie in result.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._write_body(payload)

    def _send_json(self, status: HTTPStatus, document: Any) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._write_body(payload)

    def _send_page(self, page: Page) -> None:
        self.send_response(page.status)
        self.send_header("Content-Type", page.content_type)
        if page.content_security_policy:
            self.send_header("Content-Security-Policy", page.content_security_policy)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        self._write_body(page.body)

    def _write_body(self, payload: bytes) -> None:
        if self.command != "HEAD":  # a HEAD response announces the length but carries no body
            self.wfile.write(payload)

    def _send_error(self, status: HTTPStatus, code: str, message: str) -> None:
        self._send_json(status, {"error": {"code": code, "message": message, "details": {}}})


class _BodyTooLargeError(Exception):
    pass


def _decode_body(body: str, is_base64: bool) -> bytes:
    return base64.b64decode(body) if is_base64 else body.encode("utf-8")


def _parameter_overrides(functions: list[FunctionDefinition], parameters: dict[str, str]) -> dict[str, str]:
    """The launching environment's values of the variables that are a parameter's ``!Ref`` (``make dev`` passes
    e.g. ``SEAL_IDLE_SECONDS`` or ``EXPORT_ASYNC_MIN_EVENTS`` through this way)."""
    return {
        name: os.environ[name]
        for function in functions
        for name, value in function.environment.items()
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters and name in os.environ
    }


def build_function_pools(functions: list[FunctionDefinition], repo_root: Path) -> dict[str, FunctionPool]:
    pools = {}
    for function in functions:
        module, _, attribute = function.handler.rpartition(".")
        spec = FunctionSpec(
            logical_id=function.logical_id,
            handler_file=repo_root / function.code_uri / f"{module}.py",
            handler_name=attribute,
            memory_mb=function.memory_mb,
            timeout_seconds=function.timeout_seconds,
        )
        pools[function.logical_id] = FunctionPool(spec)
    return pools


def main() -> int:
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    seal_interval = float(os.environ.get("SEAL_INTERVAL_SECONDS", DEFAULT_SEAL_INTERVAL_SECONDS))
    template_path = TEMPLATE_PATH
    template = load_template(template_path)
    parameters = parameter_defaults(template)
    functions = function_definitions(template)

    moto = SerializedMotoServer()
    moto.start()
    point_boto3_at(moto.endpoint)
    retention_days = int(os.environ.get("ARCHIVE_RETENTION_DAYS", parameters["ArchiveRetentionDays"]))
    resources = create_resources(moto.endpoint, template_path, retention_days)
    configuration = StackConfiguration(
        functions, parameters, template.get("Conditions", {}), overrides=_parameter_overrides(functions, parameters)
    )
    os.environ.update(configuration.environment(resources))
    function_log = Path(os.environ.get("FUNCTION_LOG_FILE", DEFAULT_FUNCTION_LOG_FILE)).resolve()
    write_function_logs_to(function_log)
    print(LOGS_MESSAGE.format(path=function_log), flush=True)

    pools = build_function_pools(functions, template_path.parent)
    sealer = SealRunner(
        pools.get(SEAL_FUNCTION),
        seal_interval,
        ScheduleDefinition.from_template(template),
        resources.seal_dead_letter_queue_url,
    )
    stack = LocalStack(resources, RouteTable(http_routes(template)), pools, sealer, configuration)
    try:
        server = LocalApiServer(port, stack)
    except OSError as error:
        moto.stop()
        print(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); set PORT to a free port, or 0", file=sys.stderr)
        return 1
    # The functions' Lambda client (an export starting its job) calls this server's Invoke route; set before any
    # handler builds its clients.
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://127.0.0.1:{server.port}"
    for pool in pools.values():
        if pool.spec.installed:
            try:
                pool.warm_up()
            except Exception:
                # As on Lambda, a function whose init fails answers 500 on its own routes; the others keep serving.
                print(f"{pool.spec.logical_id} failed to start:", file=sys.stderr, flush=True)
                traceback.print_exc()

    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    sealer.start()
    # The socket is bound and listening since LocalApiServer() returned: requests are accepted from here on.
    print(READY_MESSAGE.format(port=server.port), flush=True)

    stop.wait()
    server.shutdown()
    server.server_close()
    sealer.stop()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
