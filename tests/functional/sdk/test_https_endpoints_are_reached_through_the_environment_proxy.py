"""An https endpoint is reached through the proxy the environment names (HTTPS_PROXY, NO_PROXY) by a CONNECT tunnel,
with TLS and the SigV4 signature end to end; plain-http endpoints (local development) never use a proxy."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agentops_replay import AgentOpsClient
from agentops_replay._proxy import Proxy, https_proxy_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.functional.sdk.connect_proxy import ConnectProxy, running_connect_proxy
from tests.functional.sdk.evidence import assert_verifies
from tests.functional.sdk.fake_ingest import FakeIngest, running_fake_ingest

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def localhost_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost``, trusted by the client through SSL_CERT_FILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    certificate_path, key_path = directory / "localhost.pem", directory / "localhost.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


@pytest.fixture
def https_ingest(
    localhost_certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeIngest, str]]:
    certificate_path, key_path = localhost_certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate_path, key_path)
    with running_fake_ingest(tls=context) as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[tuple[ConnectProxy, str]]:
    with running_connect_proxy() as running:
        yield running


def _record_one_session(endpoint: str) -> str:
    client = AgentOpsClient(endpoint, flush_interval=0.02)
    session = client.start_session("agent")
    session.tool_call("search", args={"q": "flights"})
    session.end()
    assert client.flush(timeout=10)
    client.close(timeout=1)
    assert client.stats()["sent"] == 3
    return session.session_id


def test_an_https_endpoint_is_reached_through_the_environment_proxy_with_tls_end_to_end(
    https_ingest: tuple[FakeIngest, str], proxy: tuple[ConnectProxy, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = https_ingest
    connect_proxy, proxy_url = proxy
    monkeypatch.setenv("HTTPS_PROXY", proxy_url.replace("http://", "http://agent%40corp:s3cret@"))

    session_id = _record_one_session(endpoint)

    assert_verifies(fake, session_id)  # the fake refuses unsigned requests: SigV4 went through the tunnel
    port = endpoint.rsplit(":", 1)[1]
    assert set(connect_proxy.targets()) == {f"localhost:{port}"}
    expected = "Basic " + base64.b64encode(b"agent@corp:s3cret").decode()
    assert {headers.get("Proxy-Authorization") for _, headers in connect_proxy.connects} == {expected}


def test_hosts_named_in_no_proxy_are_reached_directly(
    https_ingest: tuple[FakeIngest, str], proxy: tuple[ConnectProxy, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = https_ingest
    connect_proxy, proxy_url = proxy
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "example.com,localhost")

    assert_verifies(fake, _record_one_session(endpoint))
    assert connect_proxy.targets() == []


def test_a_plain_http_endpoint_never_uses_a_proxy(
    ingest: tuple[FakeIngest, str], proxy: tuple[ConnectProxy, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = ingest  # http://127.0.0.1:<port>, as make dev serves it
    connect_proxy, proxy_url = proxy
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy_url)

    assert_verifies(fake, _record_one_session(endpoint))
    assert connect_proxy.targets() == []


def test_proxy_urls_are_read_as_curl_and_urllib_read_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")  # no scheme: http://
    assert https_proxy_for("api.example.com") == Proxy("proxy.corp", 3128)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp")
    assert https_proxy_for("api.example.com") == Proxy("proxy.corp", 80)
    monkeypatch.setenv("NO_PROXY", ".example.com")
    assert https_proxy_for("api.example.com") is None
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.corp:443")  # TLS to the proxy itself: not supported
    with caplog.at_level(logging.WARNING, logger="agentops_replay"):
        assert https_proxy_for("api.example.com") is None
    assert "not an http:// proxy URL" in caplog.text
