"""Run the functions' handlers in-process the way Lambda runs them.

Each function gets a pool of execution environments. An environment is a fresh import of the handler file (its own
module-level resolver and clients, exactly as a cold start builds them) that serves one invocation at a time, as a
Lambda environment does; concurrent requests get more environments. This keeps per-invocation state of a handler
(for example the Powertools resolver's current event) from leaking between concurrent requests.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_lambda_powertools import Logger

from infra.apigw import LOCAL_ACCOUNT_ID


def write_function_logs_to(path: Path) -> None:
    """Send the functions' structured log lines (Powertools JSON, one object per line, as CloudWatch receives them)
    to ``path``, appended. Every handler logs through a Powertools ``Logger()`` of the service in
    ``POWERTOOLS_SERVICE_NAME``; Powertools configures that logger once per process and later ``Logger()`` calls reuse
    it, so configuring it here first, with the environment's settings and this file as its stream, sends every
    function's lines there, and the library's loggers the seal and log functions copy that configuration to. Lines
    logged inside an invocation carry its ``function_name`` (the template's logical id) and ``function_request_id``.
    Call it before any handler is imported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Open for the life of the process: the logger writes to it until the stack exits. Line-buffered, so each line is
    # in the file as soon as it is logged.
    Logger(stream=path.open("a", encoding="utf-8", buffering=1))


class HandlerNotInstalledError(Exception):
    """The template declares the function but its handler file does not exist in this checkout."""


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler_file: Path  # e.g. functions/ingest/app.py
    handler_name: str  # e.g. lambda_handler
    memory_mb: int
    timeout_seconds: int

    @property
    def installed(self) -> bool:
        return self.handler_file.is_file()


class FunctionPool:
    """Execution environments of one function; ``invoke`` borrows an idle one or cold-starts another."""

    _module_numbers = itertools.count()

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Cold-start one environment now, so import errors surface at startup rather than on a request."""
        handler = self._cold_start()
        with self._lock:
            self._idle.append(handler)

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            handler = self._idle.pop() if self._idle else None
        if handler is None:
            handler = self._cold_start()
        try:
            context = LocalLambdaContext(self.spec.logical_id, self.spec.memory_mb, self.spec.timeout_seconds)
            return handler(event, context)
        finally:
            with self._lock:
                self._idle.append(handler)

    def _cold_start(self) -> Any:
        if not self.spec.installed:
            raise HandlerNotInstalledError(f"{self.spec.logical_id}: no handler file {self.spec.handler_file}")
        module_name = f"_agentops_local_{self.spec.logical_id}_{next(self._module_numbers)}"
        module = _import_file(module_name, self.spec.handler_file)
        return getattr(module, self.spec.handler_name)


def _import_file(module_name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise HandlerNotInstalledError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and typing resolve names through sys.modules
    spec.loader.exec_module(module)
    return module
