"""The HTTPS proxy the environment names for the ingestion endpoint (``HTTPS_PROXY``/``https_proxy``, ``NO_PROXY``).

Only https endpoints go through a proxy, by an HTTP CONNECT tunnel, so TLS and the SigV4 signature stay end to end
with API Gateway. Plain-http endpoints are local development (``make dev``) and are always reached directly. The
proxy URL must be ``http://`` (``host:port`` alone means that too); a user and password in it are sent as Basic
``Proxy-Authorization`` on the CONNECT request only.
"""

from __future__ import annotations

import base64
import logging
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

logger = logging.getLogger("agentops_replay")


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    connect_headers: dict[str, str] = field(default_factory=dict)


def https_proxy_for(host: str) -> Proxy | None:
    """The proxy for an https request to ``host``, or None to connect directly. Reads the environment now."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https")
    if not url or urllib.request.proxy_bypass(host):  # NO_PROXY (and on macOS and Windows, system settings)
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        logger.warning("agentops: HTTPS_PROXY %r is not an http:// proxy URL; connecting directly", url)
        return None
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Proxy(parts.hostname, parts.port or 80, headers)
