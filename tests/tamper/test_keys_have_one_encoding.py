"""ELS section 5, revision 2: a public key has one accepted encoding, the uncompressed P-256 SubjectPublicKeyInfo, so
one key has one ``signer_key_id``. Any other encoding is refused where it is loaded: exit status 2 for a
``--trusted-key`` file, INVALID_FIELD for an entry of an export document's ``public_keys``."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from agentops_verify import INVALID_FIELD, KeyFormatError, load_spki_der
from agentops_verify._cli import main
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.chains import build_chain, to_jsonl
from tests.support.keys import TestSigner, default_signer
from tests.tamper.support import first_violation
from tests.tamper.test_export_claims_are_recomputed import export_document, verify_document_bytes

_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey
_PRIME256V1 = bytes.fromhex("06082a8648ce3d030107")
# ECParameters (RFC 3279) instead of the named curve: an explicit, here abridged, description of a curve.
_EXPLICIT_PARAMETERS = bytes.fromhex("3003020101")


def _der(tag: int, contents: bytes) -> bytes:
    assert len(contents) < 128
    return bytes([tag, len(contents)]) + contents


def _spki(parameters: bytes, point: bytes) -> bytes:
    return _der(0x30, _der(0x30, _EC_PUBLIC_KEY + parameters) + _der(0x03, b"\x00" + point))


def _pem(der: bytes) -> str:
    return "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode("ascii") + "\n-----END PUBLIC KEY-----\n"


def _compressed(signer: TestSigner) -> bytes:
    return signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def _uncompressed(signer: TestSigner) -> bytes:
    return signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _entry(der: bytes) -> dict[str, str]:
    return {
        "signer_key_id": "sha256:" + hashlib.sha256(der).hexdigest(),
        "algorithm": "ECDSA_P256_SHA256",
        "public_key_pem": _pem(der),
    }


def test_compressed_point_key_is_refused() -> None:
    signer = default_signer()
    compressed = _spki(_PRIME256V1, _compressed(signer))
    # The same key in other bytes: it would have had a second signer_key_id.
    assert "sha256:" + hashlib.sha256(compressed).hexdigest() != signer.key_id
    with pytest.raises(KeyFormatError, match="compressed"):
        load_spki_der(compressed)
    assert load_spki_der(_spki(_PRIME256V1, _uncompressed(signer))).key_id == signer.key_id


def test_key_with_explicit_curve_parameters_is_refused() -> None:
    with pytest.raises(KeyFormatError, match="not P-256"):
        load_spki_der(_spki(_EXPLICIT_PARAMETERS, _uncompressed(default_signer())))


@pytest.mark.parametrize("form", ["pem", "key_set"])
def test_compressed_point_key_given_as_trusted_key_exits_2(
    tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _entry(_spki(_PRIME256V1, _compressed(default_signer())))
    key = tmp_path / "key"
    key.write_text(entry["public_key_pem"] if form == "pem" else json.dumps({"keys": [entry]}))
    chain = tmp_path / "session.jsonl"
    chain.write_bytes(to_jsonl(build_chain(5)))
    assert main(["--trusted-key", str(key), str(chain)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"bad key file {key}" in captured.err
    assert "compressed" in captured.err


def test_key_on_another_curve_given_as_trusted_key_exits_2(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256K1()).public_key()
    key = tmp_path / "secp256k1.pem"
    key.write_bytes(other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    chain = tmp_path / "session.jsonl"
    chain.write_bytes(to_jsonl(build_chain(5)))
    assert main(["--trusted-key", str(key), str(chain)]) == 2


def test_export_listing_a_compressed_point_key_is_invalid_field() -> None:
    document = export_document(build_chain(5))
    document["public_keys"] = [_entry(_spki(_PRIME256V1, _compressed(default_signer())))]
    report = verify_document_bytes(document)
    assert first_violation(report) == (INVALID_FIELD, None)
    assert "compressed" in report.violations[0].message
