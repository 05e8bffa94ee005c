"""The API as the command line reaches it: SigV4-signed JSON requests, and downloads of presigned links.

Signing is the SDK's (``transport.HttpTransport``): service ``execute-api``, credentials from botocore's default
chain (environment, shared files, container or instance roles), the region from the argument, else botocore's
configuration, else ``us-east-1``. Requests to an https endpoint and downloads from https links go through the proxy
the environment names (``HTTPS_PROXY``, ``NO_PROXY``); plain-http ones (the local stack) always go directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from agentops_replay._version import SOURCE_SDK_VER

DEFAULT_TIMEOUT_SECONDS = 60.0
_DOWNLOAD_CHUNK = 1024 * 1024


class CommandError(Exception):
    """The command cannot go on; the message says why in one sentence (exit status 2)."""


class ServiceError(CommandError):
    """The service answered with an error body (API.md "Errors"): its status, stable code and message. ``code`` is
    empty for API Gateway's own refusals (a bad signature, a missing IAM grant), which carry only a message."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any]) -> None:
        problems = details.get("errors")
        listed = [
            f"{problem.get('field') or '(body)'}: {problem.get('problem')}"
            for problem in (problems if isinstance(problems, list) else [])[:5]
            if isinstance(problem, dict)
        ]
        named = f"HTTP {status} {code}" if code else f"HTTP {status}"
        super().__init__(f"{named}: {message}" + (f" ({'; '.join(listed)})" if listed else ""))
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details)


class ChecksumError(Exception):
    """Downloaded bytes are not the ones the service published (exit status 1: the evidence did not check out)."""


@dataclass(frozen=True)
class Response:
    status: int
    document: Any


class ServiceClient:
    def __init__(self, endpoint: str, region: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"the endpoint {endpoint!r} is not an http(s) URL")
        self.endpoint = endpoint.rstrip("/")
        self._timeout = timeout
        session = botocore.session.get_session()
        self._region = region or session.get_config_variable("region") or "us-east-1"
        credentials = session.get_credentials()
        if credentials is None:
            raise CommandError(
                "no AWS credentials found (environment, shared credentials file, or a role); "
                "every route but /v1/health needs a SigV4 signature"
            )
        self._credentials = credentials

    def get(self, path: str, query: Mapping[str, str | int] | None = None) -> Response:
        """GET a JSON route; any status but 200 and 202 raises ``ServiceError``."""
        if query:
            path = f"{path}?{urlencode(query, quote_via=quote)}"
        return self._request("GET", path, b"")

    def post(self, path: str, document: Any) -> Response:
        return self._request("POST", path, json.dumps(document).encode())

    def _request(self, method: str, path: str, body: bytes) -> Response:
        url = self.endpoint + path
        headers = {"User-Agent": SOURCE_SDK_VER, "Accept": "application/json"}
        if method == "POST":
            headers["Content-Type"] = "application/json"
        signed = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(signed)
        # The scheme was checked when the client was made: http or https only.
        request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)  # noqa: S310
        for name, value in signed.headers.items():
            request.add_header(name, str(value))
        try:
            with _opener_for(url).open(request, timeout=self._timeout) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError as error:
            raise CommandError(f"cannot reach {self.endpoint}: {_reason(error)}") from None
        document = _json_or_none(raw)
        if status in (200, 201, 202):
            if document is None:
                raise CommandError(f"{method} {path} answered {status} with a body that is not JSON")
            return Response(status, document)
        raise _service_error(status, document)


def download(url: str, destination: Path, expected_sha256: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> int:
    """Stream ``url`` (a presigned link: no signature of ours) into ``destination``, hashing as it is written. The
    file appears only once its SHA-256 equals ``expected_sha256``; otherwise ``ChecksumError`` and no file."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise CommandError(f"the service gave a download link that is not http(s): {url[:40]!r}")
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with _opener_for(url).open(url, timeout=timeout) as answer, partial.open("wb") as out:
            while chunk := answer.read(_DOWNLOAD_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise CommandError(f"the download link answered HTTP {error.code} (it may have expired; run again)") from None
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise CommandError(f"cannot download {destination.name}: {_reason(error)}") from None
    if digest.hexdigest() != expected_sha256:
        partial.unlink()
        raise ChecksumError(
            f"{destination.name}: the downloaded bytes have SHA-256 {digest.hexdigest()}, "
            f"not the {expected_sha256} the service published; nothing was kept"
        )
    os.replace(partial, destination)
    return size


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    if url.startswith("https:"):
        return urllib.request.build_opener()  # proxies from the environment
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _service_error(status: int, document: Any) -> ServiceError:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        return ServiceError(
            status,
            error["code"],
            str(error.get("message", "")),
            details if isinstance(details, dict) else {},
        )
    message = document.get("message") if isinstance(document, dict) else None
    return ServiceError(status, "", str(message or "no error body"), {})


def _reason(error: OSError) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error.strerror or error)
