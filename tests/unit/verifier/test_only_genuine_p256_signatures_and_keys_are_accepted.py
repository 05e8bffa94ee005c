"""ECDSA P-256 verification and SubjectPublicKeyInfo parsing in the standard library (ELS section 5).

``cryptography`` (a test-only dependency) is the independent reference: it makes the keys and signatures, and every
forgery below is something an attacker can hand the verifier.
"""

from __future__ import annotations

import hashlib

import pytest
from agentops_verify._ecdsa import (
    GX,
    GY,
    KeyFormatError,
    N,
    P,
    PublicKey,
    load_pem_public_key,
    load_pem_public_keys,
    load_spki_der,
    low_s_signature,
    verify_signature,
)
from agentops_verify._errors import VerifierError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.keys import TestSigner, make_signer

MESSAGE = b'{"event_count":4,"spec_version":"v0.6"}'
# DER prefix of a P-256 SubjectPublicKeyInfo with a compressed point (RFC 5480): SEQUENCE, AlgorithmIdentifier,
# BIT STRING of 34 octets (unused-bits octet, 0x02/0x03, X).
COMPRESSED_SPKI_PREFIX = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")
UNCOMPRESSED_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return make_signer()


@pytest.fixture(scope="module")
def key(signer: TestSigner) -> PublicKey:
    return load_pem_public_key(signer.public_key_pem)


def der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([0x02, len(body)]) + body


def der_sequence(body: bytes) -> bytes:
    return bytes([0x30, len(body)]) + body


def uncompressed_spki(x: int, y: int) -> bytes:
    return UNCOMPRESSED_SPKI_PREFIX + b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# --- Signatures that must verify ------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [b"", MESSAGE, b"\x00" * 1000, bytes(range(256)) * 40])
def test_signature_made_by_cryptography_verifies(signer: TestSigner, key: PublicKey, message: bytes) -> None:
    assert verify_signature(key, message, signer.sign(message))


def test_rfc6979_p256_sha256_sample_vector_verifies_in_its_low_s_form() -> None:
    # RFC 6979 appendix A.2.5, curve P-256, SHA-256, message "sample": an answer computed outside this project.
    # Its s is above n/2, so ELS rev 2 accepts only its normalized twin (r, n - s).
    rfc_key = load_spki_der(
        uncompressed_spki(
            0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6,
            0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299,
        )
    )
    r = 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
    s = 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8
    high = encode_dss_signature(r, s)
    assert low_s_signature(high) == encode_dss_signature(r, N - s)
    assert verify_signature(rfc_key, b"sample", low_s_signature(high))
    assert not verify_signature(rfc_key, b"samplf", low_s_signature(high))
    assert not verify_signature(rfc_key, b"sample", high)


def test_high_s_twin_signature_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    # ELS rev 2: (r, n - s) is a second valid ECDSA encoding of one seal; only the low-s form may verify, so a seal
    # has one valid sealed form and one replay fingerprint.
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert s <= N // 2
    assert verify_signature(key, MESSAGE, encode_dss_signature(r, s))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r, N - s))


@pytest.mark.parametrize("attempt", range(16))
def test_low_s_normalization_keeps_the_signature_valid_and_is_idempotent(
    signer: TestSigner, key: PublicKey, attempt: int
) -> None:
    message = MESSAGE + bytes([attempt])
    raw = signer.sign_like_kms(message)
    normalized = low_s_signature(raw)
    assert low_s_signature(normalized) == normalized
    assert verify_signature(key, message, normalized)
    assert signer.verifies(message, normalized)
    r, s = decode_dss_signature(raw)
    assert decode_dss_signature(normalized) == (r, min(s, N - s))


def test_low_s_normalization_refuses_what_is_not_a_signature() -> None:
    with pytest.raises(ValueError, match="strict DER"):
        low_s_signature(b"\x30\x00")
    with pytest.raises(ValueError, match="out of range"):
        low_s_signature(encode_dss_signature(1, N))


@pytest.mark.parametrize("private_value", [1, 2, N - 1], ids=["key_is_G", "key_is_2G", "key_is_minus_G"])
def test_keys_that_meet_the_generator_in_point_arithmetic_still_verify(private_value: int) -> None:
    # Q = G, 2G or -G sends Shamir's trick through its doubling and point-at-infinity branches.
    private_key = ec.derive_private_key(private_value, ec.SECP256R1())
    special = TestSigner(private_key)
    special_key = load_pem_public_key(special.public_key_pem)
    for index in range(8):
        message = MESSAGE + bytes([index])
        assert verify_signature(special_key, message, special.sign(message))
        assert not verify_signature(special_key, message + b"!", special.sign(message))


# --- Forged or altered signatures -----------------------------------------------------------------------------


def test_altered_message_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    assert not verify_signature(key, MESSAGE.replace(b"4", b"5"), signature)
    assert not verify_signature(key, MESSAGE + b"\n", signature)


def test_altered_r_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r ^ 1, s))
    assert not verify_signature(key, MESSAGE, encode_dss_signature((r + 1) % N, s))


def test_altered_s_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r, s ^ 1))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r, (s + 1) % N))


def test_swapped_r_and_s_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(s, r))


def test_negated_r_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    # Unlike s, r is the x coordinate of a point: n - r names a different point and must fail.
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(N - r, s))


def test_signature_by_another_key_is_rejected(key: PublicKey) -> None:
    assert not verify_signature(key, MESSAGE, make_signer().sign(MESSAGE))


def test_signature_checked_under_another_key_is_rejected(signer: TestSigner) -> None:
    other_key = load_pem_public_key(make_signer().public_key_pem)
    assert not verify_signature(other_key, MESSAGE, signer.sign(MESSAGE))


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, 1), (1, 0), (0, 0), (N, 1), (1, N), (N + 1, 1), (1, N + 1), (2**256 - 1, 1), (1, 2**256 - 1)],
    ids=["r_zero", "s_zero", "both_zero", "r_n", "s_n", "r_above_n", "s_above_n", "r_max", "s_max"],
)
def test_r_or_s_outside_one_to_n_minus_one_is_rejected(key: PublicKey, r: int, s: int) -> None:
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r, s))


def test_r_plus_n_aliasing_the_same_x_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    # x_R mod n == r; r + n would match the same x only if the range check were skipped.
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, encode_dss_signature(r + N, s))


def test_every_single_byte_corruption_is_rejected_without_raising(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    for position in range(len(signature)):
        corrupted = bytearray(signature)
        corrupted[position] ^= 0x01
        assert not verify_signature(key, MESSAGE, bytes(corrupted)), position


def test_every_truncation_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    for length in range(len(signature)):
        assert not verify_signature(key, MESSAGE, signature[:length])


# --- Encodings that are not strict DER ------------------------------------------------------------------------


def split_signature(signature: bytes) -> tuple[bytes, bytes]:
    """The two complete INTEGER TLVs of a short-form DER signature."""
    body = signature[2:]
    r_tlv = body[: 2 + body[1]]
    return r_tlv, body[len(r_tlv) :]


def test_integer_with_extra_leading_zero_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    r_tlv, s_tlv = split_signature(signer.sign(MESSAGE))
    padded_r = bytes([0x02, r_tlv[1] + 1, 0x00]) + r_tlv[2:]
    assert not verify_signature(key, MESSAGE, der_sequence(padded_r + s_tlv))
    padded_s = bytes([0x02, s_tlv[1] + 1, 0x00]) + s_tlv[2:]
    assert not verify_signature(key, MESSAGE, der_sequence(r_tlv + padded_s))


def test_integer_without_its_sign_octet_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    # A high first bit without a leading 0x00 is a negative INTEGER in DER.
    for attempt in range(64):
        signature = signer.sign(MESSAGE + bytes([attempt]))
        r, _ = decode_dss_signature(signature)
        if r >> 255:
            break
    else:
        pytest.fail("no signature with a 256-bit r in 64 attempts")
    r_tlv, s_tlv = split_signature(signature)
    assert r_tlv[2] == 0x00
    unsigned_r = bytes([0x02, 32]) + r.to_bytes(32, "big")
    assert not verify_signature(key, MESSAGE + bytes([attempt]), der_sequence(unsigned_r + s_tlv))


def test_long_form_length_for_a_short_value_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    assert signature[1] < 0x80
    assert not verify_signature(key, MESSAGE, bytes([0x30, 0x81, signature[1]]) + signature[2:])
    r_tlv, s_tlv = split_signature(signature)
    long_r = bytes([0x02, 0x81, r_tlv[1]]) + r_tlv[2:]
    body = long_r + s_tlv
    assert not verify_signature(key, MESSAGE, bytes([0x30, len(body)]) + body)


def test_indefinite_length_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    assert not verify_signature(key, MESSAGE, bytes([0x30, 0x80]) + signature[2:] + b"\x00\x00")


def test_trailing_bytes_after_the_signature_are_rejected(signer: TestSigner, key: PublicKey) -> None:
    signature = signer.sign(MESSAGE)
    assert not verify_signature(key, MESSAGE, signature + b"\x00")
    assert not verify_signature(key, MESSAGE, signature + signature)


def test_extra_element_inside_the_sequence_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    r_tlv, s_tlv = split_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, der_sequence(r_tlv + s_tlv + der_integer(1)))
    assert not verify_signature(key, MESSAGE, der_sequence(r_tlv + s_tlv + b"\x05\x00"))


@pytest.mark.parametrize("outer_tag", [0x31, 0x10, 0x04, 0xA0])
def test_wrong_outer_tag_is_rejected(signer: TestSigner, key: PublicKey, outer_tag: int) -> None:
    signature = signer.sign(MESSAGE)
    assert not verify_signature(key, MESSAGE, bytes([outer_tag]) + signature[1:])


@pytest.mark.parametrize("integer_tag", [0x03, 0x04, 0x0A, 0x22])
def test_wrong_integer_tag_is_rejected(signer: TestSigner, key: PublicKey, integer_tag: int) -> None:
    r_tlv, s_tlv = split_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, der_sequence(bytes([integer_tag]) + r_tlv[1:] + s_tlv))
    assert not verify_signature(key, MESSAGE, der_sequence(r_tlv + bytes([integer_tag]) + s_tlv[1:]))


def test_raw_r_s_concatenation_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    # The IEEE P1363 form (32-byte r || 32-byte s) is not what KMS returns and is not accepted.
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_empty_integer_is_rejected(signer: TestSigner, key: PublicKey) -> None:
    _, s_tlv = split_signature(signer.sign(MESSAGE))
    assert not verify_signature(key, MESSAGE, der_sequence(b"\x02\x00" + s_tlv))


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(key: PublicKey, garbage: bytes) -> None:
    assert verify_signature(key, MESSAGE, garbage) is False


@settings(max_examples=50, deadline=None)
@given(r=st.integers(min_value=0, max_value=2**264), s=st.integers(min_value=0, max_value=2**264))
def test_arbitrary_integers_never_verify_or_raise(key: PublicKey, r: int, s: int) -> None:
    assert verify_signature(key, MESSAGE, encode_dss_signature(r, s)) is False


# --- Public keys ----------------------------------------------------------------------------------------------


def test_key_id_is_sha256_of_cryptographys_der_spki(signer: TestSigner, key: PublicKey) -> None:
    der = signer.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.key_id == "sha256:" + hashlib.sha256(der).hexdigest() == signer.key_id
    assert key.spki_der == der


def test_loaded_point_matches_cryptographys(signer: TestSigner, key: PublicKey) -> None:
    numbers = signer.public_key.public_numbers()
    assert (key.x, key.y) == (numbers.x, numbers.y)


def test_pem_round_trips_to_the_same_text(signer: TestSigner, key: PublicKey) -> None:
    assert key.pem == signer.public_key_pem
    assert load_pem_public_key(key.pem) == key


def test_pem_is_read_from_bytes_or_text_and_ignores_surrounding_text(signer: TestSigner, key: PublicKey) -> None:
    assert load_pem_public_key(signer.public_key_pem.encode("ascii")) == key
    commented = "Seal key of prod, published 2026-01-01\r\n" + signer.public_key_pem.replace("\n", "\r\n") + "\n\n"
    assert load_pem_public_key(commented) == key


def test_compressed_point_key_is_refused(signer: TestSigner, key: PublicKey) -> None:
    # ELS section 5 (rev 2): the compressed form names the same point in other bytes, so it would get a second key
    # id for one key; only the uncompressed form is a key.
    compressed = signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    der = COMPRESSED_SPKI_PREFIX + compressed
    reference = serialization.load_der_public_key(der)  # a valid key to other tools, with another fingerprint
    assert isinstance(reference, ec.EllipticCurvePublicKey)
    assert reference.public_numbers().y == key.y
    assert "sha256:" + hashlib.sha256(der).hexdigest() != key.key_id
    with pytest.raises(KeyFormatError, match="compressed"):
        load_spki_der(der)


def test_compressed_x_with_no_curve_point_is_refused_as_compressed() -> None:
    x = next(value for value in range(1, 100) if not _has_curve_point(value))
    with pytest.raises(KeyFormatError, match="compressed"):
        load_spki_der(COMPRESSED_SPKI_PREFIX + b"\x02" + x.to_bytes(32, "big"))


def test_point_not_on_the_curve_is_rejected(key: PublicKey) -> None:
    with pytest.raises(KeyFormatError, match="not on the P-256 curve"):
        load_spki_der(uncompressed_spki(key.x, (key.y + 1) % P))


def test_coordinate_not_reduced_modulo_p_is_rejected() -> None:
    # x + p names the same point modulo p, a second encoding of one key; SEC 1 3.2.2.1 requires x < p.
    x = next(value for value in range(1, 100) if _has_curve_point(value))
    y = pow((x**3 - 3 * x + 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B) % P, (P + 1) // 4, P)
    assert load_spki_der(uncompressed_spki(x, y)).x == x
    with pytest.raises(KeyFormatError):
        load_spki_der(uncompressed_spki(x + P, y))


def test_point_at_infinity_encoding_is_rejected() -> None:
    der = bytes.fromhex("3019301306072a8648ce3d020106082a8648ce3d030107030200") + b"\x00"
    with pytest.raises(KeyFormatError, match="SEC 1"):
        load_spki_der(der)


def test_hybrid_point_encoding_is_rejected(key: PublicKey) -> None:
    hybrid = bytearray(uncompressed_spki(key.x, key.y))
    hybrid[len(UNCOMPRESSED_SPKI_PREFIX)] = 0x06 | (key.y & 1)
    with pytest.raises(KeyFormatError, match="SEC 1"):
        load_spki_der(bytes(hybrid))


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1(), ec.SECP521R1()], ids=lambda curve: curve.name)
def test_key_on_another_curve_is_rejected(curve: ec.EllipticCurve) -> None:
    other = ec.generate_private_key(curve).public_key()
    pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFormatError, match=r"not P-256 \(namedCurve prime256v1"):
        load_pem_public_key(pem)


def test_p256_point_under_secp256k1_oid_is_rejected(key: PublicKey) -> None:
    # Same 65-byte point, curve OID swapped to secp256k1 (1.3.132.0.10): the OID decides, not the point size.
    der = key.spki_der.replace(bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06052b8104000a"))
    der = bytes([0x30, len(der) - 2, 0x30, 0x10]) + der[4:]
    with pytest.raises(KeyFormatError, match="not P-256"):
        load_spki_der(der)


def test_rsa_key_is_rejected() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = rsa_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFormatError, match="not id-ecPublicKey"):
        load_pem_public_key(pem)


def test_trailing_bytes_after_the_key_are_rejected(key: PublicKey) -> None:
    with pytest.raises(KeyFormatError, match="trailing bytes"):
        load_spki_der(key.spki_der + b"\x00")


def test_non_minimal_length_in_the_key_is_rejected(key: PublicKey) -> None:
    assert key.spki_der[:2] == b"\x30\x59"
    with pytest.raises(KeyFormatError, match="long-form length"):
        load_spki_der(b"\x30\x81\x59" + key.spki_der[2:])


def test_unused_bits_in_the_key_bit_string_are_rejected(key: PublicKey) -> None:
    der = bytearray(key.spki_der)
    der[len(UNCOMPRESSED_SPKI_PREFIX) - 1] = 0x01
    with pytest.raises(KeyFormatError, match="unused bits"):
        load_spki_der(bytes(der))


def test_extra_algorithm_parameters_are_rejected(key: PublicKey) -> None:
    der = key.spki_der.replace(bytes.fromhex("3013"), bytes.fromhex("3015"), 1)
    der = der.replace(bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06082a8648ce3d0301070500"), 1)
    der = bytes([0x30, len(der) - 2]) + der[2:]
    with pytest.raises(KeyFormatError, match="not P-256"):
        load_spki_der(der)


def test_truncated_key_is_rejected(key: PublicKey) -> None:
    for length in range(len(key.spki_der)):
        with pytest.raises(KeyFormatError):
            load_spki_der(key.spki_der[:length])


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=100))
def test_arbitrary_key_bytes_raise_only_key_format_error(garbage: bytes) -> None:
    try:
        load_spki_der(garbage)
    except KeyFormatError:
        return


def test_private_key_pem_is_rejected(signer: TestSigner) -> None:
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match="found PRIVATE KEY"):
        load_pem_public_key(pem)


def test_pem_with_invalid_base64_is_rejected(signer: TestSigner) -> None:
    lines = signer.public_key_pem.splitlines()
    lines[1] = lines[1][:10] + "!" + lines[1][11:]
    with pytest.raises(KeyFormatError, match="base64"):
        load_pem_public_key("\n".join(lines))


def test_pem_without_end_line_is_rejected(signer: TestSigner) -> None:
    truncated = signer.public_key_pem.rsplit("-----END", 1)[0]
    with pytest.raises(KeyFormatError, match="without its END"):
        load_pem_public_key(signer.public_key_pem + truncated)


def test_pem_with_mismatched_end_label_is_rejected(signer: TestSigner) -> None:
    with pytest.raises(KeyFormatError, match="ends with END"):
        load_pem_public_key(signer.public_key_pem.replace("END PUBLIC KEY", "END PRIVATE KEY"))


def test_text_without_pem_block_is_rejected() -> None:
    with pytest.raises(KeyFormatError, match="no PEM PUBLIC KEY block"):
        load_pem_public_key("sha256:" + "0" * 64)


def test_non_ascii_pem_bytes_are_rejected(signer: TestSigner) -> None:
    with pytest.raises(KeyFormatError, match="not ASCII"):
        load_pem_public_key("é".encode() + signer.public_key_pem.encode())


def test_several_pem_blocks_load_in_order_but_not_as_one_key(signer: TestSigner) -> None:
    other = make_signer()
    text = signer.public_key_pem + other.public_key_pem
    assert [loaded.key_id for loaded in load_pem_public_keys(text)] == [signer.key_id, other.key_id]
    with pytest.raises(KeyFormatError, match="expected one"):
        load_pem_public_key(text)


def test_key_format_error_is_a_verifier_value_error() -> None:
    assert issubclass(KeyFormatError, VerifierError)
    assert issubclass(KeyFormatError, ValueError)


def test_generator_constants_match_cryptography() -> None:
    generator = ec.derive_private_key(1, ec.SECP256R1()).public_key().public_numbers()
    assert (generator.x, generator.y) == (GX, GY)
    # n*G is the point at infinity: a key with private value n is refused by cryptography.
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's message is not ours to pin
        ec.derive_private_key(N, ec.SECP256R1())


def test_cryptography_agrees_the_twin_signature_is_valid(signer: TestSigner) -> None:
    r, s = decode_dss_signature(signer.sign(MESSAGE))
    signer.public_key.verify(encode_dss_signature(r, N - s), MESSAGE, ec.ECDSA(hashes.SHA256()))


def _has_curve_point(x: int) -> bool:
    alpha = (x**3 - 3 * x + 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B) % P
    return pow(alpha, (P - 1) // 2, P) == 1


def test_public_key_built_directly_from_an_off_curve_point_is_refused(key: PublicKey) -> None:
    with pytest.raises(KeyFormatError, match="not on the P-256 curve"):
        PublicKey(x=key.x, y=(key.y + 1) % P, spki_der=key.spki_der)
    with pytest.raises(KeyFormatError, match="not on the P-256 curve"):
        PublicKey(x=key.x + P, y=key.y, spki_der=key.spki_der)
