"""A small HTTP client for the API that signs requests with SigV4 (service ``execute-api``), like the SDK does.

Used by ``make demo`` and the integration tests.

The local stack takes the caller's identity from the access key id in the signature's credential scope, so two
clients with different ``access_key_id`` values are two different principals.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        document = self.json()
        return document.get("error", {}).get("code") if isinstance(document, dict) else None


@dataclass
class ApiClient:
    base_url: str
    access_key_id: str | None = "AKIDAGENTLOCAL000001"  # None sends unsigned requests (no caller identity)
    secret_access_key: str = "local-secret"  # noqa: S105 - the local stack checks no signature
    timeout_seconds: float = 30.0
    default_headers: dict[str, str] = field(default_factory=dict)

    def as_principal(self, access_key_id: str | None) -> ApiClient:
        return ApiClient(self.base_url, access_key_id, self.secret_access_key, self.timeout_seconds)

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, document: Any = None, **kwargs: Any) -> ApiResponse:
        if document is not None:
            kwargs.setdefault("body", json.dumps(document).encode())
            kwargs.setdefault("content_type", "application/json")
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        url = self.base_url.rstrip("/") + path
        all_headers = {**self.default_headers, **(headers or {})}
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        if self.access_key_id is not None:
            signed = AWSRequest(method=method, url=url, data=body, headers=all_headers)
            credentials = Credentials(self.access_key_id, self.secret_access_key)
            SigV4Auth(credentials, "execute-api", REGION).add_auth(signed)
            all_headers = dict(signed.headers.items())
        outgoing = urllib.request.Request(url, data=body if body or method != "GET" else None, method=method)
        for name, value in all_headers.items():
            outgoing.add_header(name, value)
        try:
            with urllib.request.urlopen(outgoing, timeout=self.timeout_seconds) as response:
                return ApiResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return ApiResponse(error.code, dict(error.headers.items()), error.read())
