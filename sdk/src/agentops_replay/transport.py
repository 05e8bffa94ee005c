"""Where batches go: the HTTP API (SigV4-signed) or, in local authority mode, a JSONL chain on disk.

A transport never raises: it classifies each attempt into a ``SendResult`` and the sender decides what to do. The
classification follows API.md: 2xx is stored; network errors, 429 and 5xx are retried with the same bytes; a 409
SEQUENCE_CONFLICT whose head already lies past the batch means an earlier attempt was stored (its response was lost);
a refusal of single events (400 INVALID_JSON or VALIDATION_ERROR, 413 PAYLOAD_TOO_LARGE) costs only those events
(``_sender``); any other 4xx (403, SESSION_ENDED, SESSION_SEALED, ...) is final for the session: the sender logs it,
counts the session's remaining events as rejected and stops sending for it.
"""

from __future__ import annotations

import enum
import http.client
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import botocore.session
from agentops_verify import PRODUCER_FIELDS, build_seal_event, canonicalize, chain_event
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from ._batch import Batch, rfc3339
from ._proxy import https_proxy_for
from ._version import SOURCE_SDK_VER

logger = logging.getLogger("agentops_replay")


class Outcome(enum.Enum):
    STORED = "stored"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    code: str = ""
    status: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # the error body's ``details`` (API.md "Errors")
    answer: bytes = b""  # a 2xx answer's body as received: the acknowledgements a receipts file keeps


class Transport(Protocol):
    def send(self, batch: Batch, timeout: float) -> SendResult: ...

    def close(self) -> None: ...


def classify_response(batch: Batch, status: int, body: bytes) -> SendResult:
    if 200 <= status < 300:
        return SendResult(Outcome.STORED, answer=body)
    if status == 429 or status >= 500:
        return SendResult(Outcome.RETRY, f"HTTP {status}")
    error = _error_of(body)
    code = str(error.get("code", ""))
    if status == 409 and code == "SEQUENCE_CONFLICT":
        head = error.get("details", {}).get("head", {}) if isinstance(error.get("details"), dict) else {}
        stored_up_to = head.get("next_sequence_number") if isinstance(head, dict) else None
        if isinstance(stored_up_to, int) and stored_up_to >= batch.next_sequence:
            return SendResult(Outcome.STORED, "already stored")
    if status == 403:
        code = code or "FORBIDDEN"
    details = error.get("details")
    return SendResult(
        Outcome.REJECTED,
        f"HTTP {status} {code or '(no code)'}: {error.get('message', '')}",
        code,
        status,
        details if isinstance(details, dict) else {},
    )


def _error_of(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


class HttpTransport:
    """POSTs batches over one keep-alive connection, each request signed with SigV4 (service ``execute-api``).

    Credentials come from botocore's default chain, resolved when the client is created; refreshable credentials are
    refreshed by botocore on the sender thread.
    """

    def __init__(self, endpoint: str, region: str | None) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint {endpoint!r} is not an http(s) URL")
        self._endpoint = endpoint.rstrip("/")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._proxy = https_proxy_for(parts.hostname) if parts.scheme == "https" else None
        self._base_path = parts.path.rstrip("/")
        # Everything CPU-heavy and one-off happens here, on the thread that creates the client: building the botocore
        # session, resolving credentials from the default chain, and a first signature (which loads the signing
        # code). Done on the sender thread, the same work would hold the GIL for milliseconds while the agent is
        # calling record().
        self._botocore = botocore.session.get_session()
        self._region = region or self._botocore.get_config_variable("region") or "us-east-1"
        self._credentials = self._botocore.get_credentials()
        if self._credentials is None:
            logger.warning("agentops: no AWS credentials found; requests are sent unsigned and will be refused")
        self._signed_headers(f"{self._endpoint}/v1/health", b"")
        self._connection: http.client.HTTPConnection | None = None

    def _signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": SOURCE_SDK_VER}
        if self._credentials is None:
            return headers
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        return {key: str(value) for key, value in request.headers.items()}

    def send(self, batch: Batch, timeout: float) -> SendResult:
        path = f"{self._base_path}/v1/sessions/{batch.session_id}/events"
        try:
            headers = self._signed_headers(f"{self._endpoint}/v1/sessions/{batch.session_id}/events", batch.body)
            time.sleep(0)  # signing held the GIL for a while: let the agent's threads run before going on
            connection = self._connect(timeout)
            connection.request("POST", path, body=batch.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except Exception as exc:
            # Network errors and timeouts (OSError, http.client.HTTPException), but also e.g. botocore failing to
            # refresh credentials: all retried with backoff, on a fresh connection.
            self.close()
            return SendResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        return classify_response(batch, response.status, body)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._proxy is not None:
                self._connection = http.client.HTTPSConnection(self._proxy.host, self._proxy.port, timeout=timeout)
                self._connection.set_tunnel(self._host, self._port, headers=self._proxy.connect_headers)
            elif self._scheme == "https":
                self._connection = http.client.HTTPSConnection(self._netloc, timeout=timeout)
            else:
                self._connection = http.client.HTTPConnection(self._netloc, timeout=timeout)
        else:
            self._connection.timeout = timeout
            if self._connection.sock is not None:
                self._connection.sock.settimeout(timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class LocalChainWriter:
    """Local authority mode (ELS section 4): the SDK chains its own events into ``<directory>/<session_id>.jsonl``
    with ``chain_authority: "sdk"`` and appends an unsigned CHAIN_SEAL after SESSION_END. Hashes come from
    ``agentops_verify.chain_event``; lines are ``agentops_verify.canonicalize`` output. Such a file is at most
    NON_AUTHORITATIVE_EVIDENCE: it is for tests and offline development.
    """

    def __init__(self, directory: str | os.PathLike[str], authority_id: str = "agentops-replay-python-local") -> None:
        self.directory = Path(directory)
        self.authority_id = authority_id
        self._last_hash: dict[str, str] = {}

    def path_of(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.jsonl"

    def send(self, batch: Batch, timeout: float) -> SendResult:
        previous = self._last_hash.get(batch.session_id)
        lines: list[bytes] = []
        for event in batch.events:
            chained = chain_event(
                **{key: event[key] for key in PRODUCER_FIELDS},
                prev_event_hash=previous,
                chain_authority="sdk",
                authority_id=self.authority_id,
            )
            lines.append(canonicalize(chained))
            previous = chained["event_hash"]
        if batch.has_end and previous is not None:
            lines.append(canonicalize(self._seal(batch, previous)))
        path = self.path_of(batch.session_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as chain_file:
                start = chain_file.tell()
                try:
                    chain_file.write(b"".join(line + b"\n" for line in lines))
                    chain_file.flush()
                except OSError:
                    chain_file.truncate(start)  # a retry must find the file as it was
                    raise
        except OSError as exc:
            return SendResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        if batch.has_end:
            self._last_hash.pop(batch.session_id, None)
        elif previous is not None:
            self._last_hash[batch.session_id] = previous
        return SendResult(Outcome.STORED)

    def _seal(self, batch: Batch, final_event_hash: str) -> dict[str, Any]:
        # ELS section 5: an unsigned (legacy-form) seal; it claims nothing about who wrote the chain.
        return build_seal_event(
            session_id=batch.session_id,
            seal_event_id=str(uuid.uuid4()),
            event_count=batch.next_sequence,
            final_event_hash=final_event_hash,
            seal_timestamp=rfc3339(time.time_ns()),
            ingestion_service_id=self.authority_id,
            chain_authority="sdk",
            source_sdk_ver=SOURCE_SDK_VER,
            authority_id=self.authority_id,
        )

    def close(self) -> None:
        return None
