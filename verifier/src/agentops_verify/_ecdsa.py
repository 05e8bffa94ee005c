"""ECDSA P-256 / SHA-256 signature verification and public key parsing, standard library only (ELS section 5).

The sealer signs with AWS KMS (key spec ECC_NIST_P256, algorithm ECDSA_SHA_256, message type RAW), so a seal's
signature is the DER ``SEQUENCE { INTEGER r, INTEGER s }`` over SHA-256 of the signed bytes, and its key is
published as a DER SubjectPublicKeyInfo (RFC 5480) in PEM form (RFC 7468).

Verify only: everything handled here is public, so nothing needs to be constant time. Parsing is strict DER
(ITU-T X.690 section 10): a key or signature has exactly one accepted encoding, because the key id is a hash of the
key's bytes and an auditor must never be shown two "different" encodings of the same thing. Bad keys raise
``KeyFormatError``; a bad or wrong signature makes ``verify_signature`` return False. No I/O: bytes in, results out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from ._errors import VerifierError


class KeyFormatError(VerifierError, ValueError):
    """A public key or key file is not a well-formed P-256 key in a form the verifier accepts."""


# --- Curve P-256 (FIPS 186-4 appendix D.1.2.3; SEC 2 v2 section 2.4.2 "secp256r1") ---------------------------------

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
COORDINATE_BYTES = 32

# RFC 5480 section 2.1.1: id-ecPublicKey 1.2.840.10045.2.1 and section 2.1.1.1: secp256r1 1.2.840.10045.3.1.7, as
# complete DER TLVs. The AlgorithmIdentifier of a P-256 key is exactly these two, with no parameters beyond them.
_OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
_OID_PRIME256V1 = bytes.fromhex("06082a8648ce3d030107")

_TAG_INTEGER = 0x02
_TAG_BIT_STRING = 0x03
_TAG_SEQUENCE = 0x30

# Jacobian coordinates (X, Y, Z) stand for the affine point (X/Z^2, Y/Z^3); Z = 0 is the point at infinity.
_Jacobian = tuple[int, int, int]
_Affine = tuple[int, int]
_INFINITY: _Jacobian = (1, 1, 0)


class _DERError(ValueError):
    """Internal: input is not the strict DER expected. Turned into KeyFormatError or a False verification."""


@dataclass(frozen=True)
class PublicKey:
    """A validated P-256 public key: the affine point (x, y) and the DER SubjectPublicKeyInfo it was read from."""

    x: int
    y: int
    spki_der: bytes

    def __post_init__(self) -> None:
        # SEC 1 v2 section 3.2.2.1: coordinates in [0, p-1] and on the curve. P-256 has cofactor 1, so that is
        # enough for the point to be in the prime-order group. Checked here so that no PublicKey is ever invalid.
        if not (0 <= self.x < P and 0 <= self.y < P and _on_curve(self.x, self.y)):
            raise KeyFormatError("public key point is not on the P-256 curve")

    @property
    def key_id(self) -> str:
        """ELS section 5: ``"sha256:" + hex(SHA-256(DER SubjectPublicKeyInfo))``."""
        return "sha256:" + hashlib.sha256(self.spki_der).hexdigest()

    @property
    def pem(self) -> str:
        """RFC 7468 section 13 ``PUBLIC KEY`` text: base64 in lines of 64 characters."""
        body = base64.b64encode(self.spki_der).decode("ascii")
        lines = [body[start : start + 64] for start in range(0, len(body), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


# --- Keys --------------------------------------------------------------------------------------------------------

# RFC 7468 section 3: a PEM block is "-----BEGIN <label>-----", base64 lines, "-----END <label>-----".
_PEM_BEGIN = "-----BEGIN "
_PEM_BLOCK = re.compile(r"-----BEGIN ([^\r\n-]*)-----(.*?)-----END ([^\r\n-]*)-----", re.DOTALL)
_PEM_BODY_WHITESPACE = re.compile(r"[ \t\r\n]+")


def load_pem_public_keys(data: bytes | str) -> list[PublicKey]:
    """Every ``PUBLIC KEY`` block in PEM text (RFC 7468 section 13), in order.

    Text outside the blocks is ignored (RFC 7468 section 5.2 allows explanatory text); a block with another label
    (a certificate, a private key) or an unreadable body is an error, as is text with no block at all.
    """
    text = _pem_text(data)
    keys: list[PublicKey] = []
    blocks = list(_PEM_BLOCK.finditer(text))
    if len(blocks) != text.count(_PEM_BEGIN):
        raise KeyFormatError("PEM text has a BEGIN line without its END line")
    for block in blocks:
        label, body, end_label = block.groups()
        if end_label != label:
            raise KeyFormatError(f"PEM block BEGIN {label} ends with END {end_label}")
        if label != "PUBLIC KEY":
            raise KeyFormatError(f"expected a PEM PUBLIC KEY block, found {label}")
        body = _PEM_BODY_WHITESPACE.sub("", body)
        try:
            der = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise KeyFormatError(f"PEM PUBLIC KEY block is not valid base64: {error}") from None
        keys.append(load_spki_der(der))
    if not keys:
        raise KeyFormatError("no PEM PUBLIC KEY block found")
    return keys


def load_pem_public_key(data: bytes | str) -> PublicKey:
    """The one P-256 key of a PEM ``-----BEGIN PUBLIC KEY-----`` (SubjectPublicKeyInfo) text."""
    keys = load_pem_public_keys(data)
    if len(keys) != 1:
        raise KeyFormatError(f"expected one PEM PUBLIC KEY block, found {len(keys)}")
    return keys[0]


def load_spki_der(der: bytes) -> PublicKey:
    """Parse a DER SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7, RFC 5480 section 2) holding a P-256 key.

    ``SEQUENCE { SEQUENCE { id-ecPublicKey, secp256r1 }, BIT STRING { SEC1 point } }`` with nothing after it. The
    point itself is validated when the ``PublicKey`` is made (SEC 1 v2 section 3.2.2.1).
    """
    try:
        spki, rest = _read_tlv(der, _TAG_SEQUENCE)
        if rest:
            raise _DERError("trailing bytes after the SubjectPublicKeyInfo")
        algorithm, rest = _read_tlv(spki, _TAG_SEQUENCE)
        bit_string, rest = _read_tlv(rest, _TAG_BIT_STRING)
        if rest:
            raise _DERError("trailing bytes inside the SubjectPublicKeyInfo")
    except _DERError as error:
        raise KeyFormatError(f"public key is not a DER SubjectPublicKeyInfo: {error}") from None
    if not algorithm.startswith(_OID_EC_PUBLIC_KEY):
        raise KeyFormatError("public key algorithm is not id-ecPublicKey (1.2.840.10045.2.1)")
    if algorithm[len(_OID_EC_PUBLIC_KEY) :] != _OID_PRIME256V1:
        raise KeyFormatError("public key curve is not P-256 (namedCurve prime256v1, 1.2.840.10045.3.1.7)")
    # X.690 section 8.6.2: the first content octet counts the unused bits of the last octet; a point has none.
    if not bit_string or bit_string[0] != 0:
        raise KeyFormatError("public key BIT STRING has unused bits")
    x, y = _decode_point(bit_string[1:])
    return PublicKey(x=x, y=y, spki_der=bytes(der))


def _pem_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFormatError("PEM text is not ASCII") from None


def _decode_point(encoded: bytes) -> _Affine:
    """SEC 1 v2 section 2.3.4, uncompressed form only (04||X||Y): ELS section 5 (rev 2) refuses the compressed form,
    whose SubjectPublicKeyInfo bytes, and so key id, differ for the same key."""
    if len(encoded) == 1 + 2 * COORDINATE_BYTES and encoded[0] == 0x04:
        x = int.from_bytes(encoded[1 : 1 + COORDINATE_BYTES], "big")
        y = int.from_bytes(encoded[1 + COORDINATE_BYTES :], "big")
        return x, y
    if len(encoded) == 1 + COORDINATE_BYTES and encoded[0] in (0x02, 0x03):
        raise KeyFormatError(
            "public key is a compressed P-256 point; only the SEC 1 uncompressed form (65 octets, 0x04) is accepted"
        )
    raise KeyFormatError("public key is not a P-256 point in SEC 1 uncompressed form (65 octets, 0x04)")


def _on_curve(x: int, y: int) -> bool:
    return (y * y - (x * x * x + A * x + B)) % P == 0


# --- Signatures --------------------------------------------------------------------------------------------------


HALF_N = N // 2


def verify_signature(key: PublicKey, message: bytes, signature_der: bytes) -> bool:
    """ECDSA verification over SHA-256 (FIPS 186-4 section 6.4, SEC 1 v2 section 4.1.4). Never raises.

    ELS section 5 (rev 2): only the low-s form verifies. ECDSA accepts both (r, s) and (r, n - s); allowing both
    would give one seal two valid encodings and two replay fingerprints. The encoding must be the strict DER form.
    """
    try:
        r, s = _unique_form_values(signature_der)
    except _DERError:
        return False
    # Steps 2-5: e is the SHA-256 digest as an integer; P-256's n has 256 bits, so no truncation applies.
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    # Step 4 (FIPS 186-4 6.4.2 steps 4-5): w = s^-1 mod n, u1 = e*w mod n, u2 = r*w mod n.
    w = pow(s, -1, N)
    u1 = e * w % N
    u2 = r * w % N
    # Step 5: R = u1*G + u2*Q; if R is the point at infinity, reject.
    point = _double_scalar_multiply(u1, u2, (key.x, key.y))
    if point[2] == 0:
        return False
    # Steps 6-8: v = x_R mod n; the signature is valid when v == r.
    z_inverse = pow(point[2], -1, P)
    x_affine = point[0] * z_inverse * z_inverse % P
    return x_affine % N == r


def signature_form_problem(signature_der: bytes) -> str | None:
    """Why ``signature_der`` is not in the one form ELS section 5 accepts (strict DER, r in [1, n-1], s in [1, n/2]),
    or None. A signature with such a problem verifies under no key, so it is refused without one."""
    try:
        _unique_form_values(signature_der)
    except _DERError as error:
        return str(error)
    return None


def _unique_form_values(signature_der: bytes) -> tuple[int, int]:
    r, s = _parse_signature(signature_der)
    # SEC 1 v2 section 4.1.4 step 1: r and s must be integers in [1, n-1]; ELS rev 2 narrows s to [1, n/2].
    if not (1 <= r < N and 1 <= s < N):
        raise _DERError("r or s is outside [1, n-1]")
    if s > HALF_N:
        raise _DERError("in its high-s form (s above n/2)")
    return r, s


def low_s_signature(signature_der: bytes) -> bytes:
    """ELS section 5 (rev 2): the unique low-s form of a DER signature, ``(r, n - s)`` when ``s > n/2``.

    Signers (KMS among them) may return either form; whoever stores a signature normalizes it with this first.
    Raises ``ValueError`` for a signature that is not strict DER with r and s in [1, n-1].
    """
    try:
        r, s = _parse_signature(signature_der)
    except _DERError as error:
        raise ValueError(f"not a strict DER ECDSA signature: {error}") from None
    if not (1 <= r < N and 1 <= s < N):
        raise ValueError("ECDSA signature r or s out of range")
    if s <= HALF_N:
        return signature_der
    return _encode_signature(r, N - s)


def _encode_signature(r: int, s: int) -> bytes:
    """ECDSA-Sig-Value in strict DER (X.690 8.3: the fewest octets, a leading zero only before a high bit)."""
    body = _encode_integer(r) + _encode_integer(s)
    return bytes([_TAG_SEQUENCE]) + _encode_length(len(body)) + body


def _encode_integer(value: int) -> bytes:
    contents = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([_TAG_INTEGER]) + _encode_length(len(contents)) + contents


def _encode_length(length: int) -> bytes:
    # Two P-256 integers of at most 33 octets each fit the short form (below 128).
    return bytes([length])


def _parse_signature(der: bytes) -> tuple[int, int]:
    """ECDSA-Sig-Value (RFC 3279 section 2.2.3): ``SEQUENCE { INTEGER r, INTEGER s }``, strict DER, nothing after."""
    body, rest = _read_tlv(der, _TAG_SEQUENCE)
    if rest:
        raise _DERError("trailing bytes after the signature")
    r, rest = _read_integer(body)
    s, rest = _read_integer(rest)
    if rest:
        raise _DERError("trailing bytes inside the signature")
    return r, s


# --- Strict DER (ITU-T X.690) ------------------------------------------------------------------------------------


def _read_tlv(data: bytes, expected_tag: int) -> tuple[bytes, bytes]:
    """Read one tag-length-value with ``expected_tag``; return its contents and the bytes after it.

    X.690 section 10.1: definite lengths only, in the fewest octets (short form below 128, no leading zero octet in
    the long form). Four length octets are far more than any key or signature needs.
    """
    if len(data) < 2:
        raise _DERError("truncated")
    if data[0] != expected_tag:
        raise _DERError(f"expected tag 0x{expected_tag:02x}, found 0x{data[0]:02x}")
    first = data[1]
    offset = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise _DERError("indefinite or oversized length")
        if len(data) < offset + count:
            raise _DERError("truncated length")
        length_octets = data[offset : offset + count]
        if length_octets[0] == 0:
            raise _DERError("length has a leading zero octet")
        length = int.from_bytes(length_octets, "big")
        if length < 0x80:
            raise _DERError("long-form length for a short value")
        offset += count
    end = offset + length
    if len(data) < end:
        raise _DERError("truncated contents")
    return data[offset:end], data[end:]


def _read_integer(data: bytes) -> tuple[int, bytes]:
    """X.690 section 8.3: a non-negative INTEGER in minimal two's complement (a leading 0x00 only before a set bit)."""
    contents, rest = _read_tlv(data, _TAG_INTEGER)
    if not contents:
        raise _DERError("empty INTEGER")
    if contents[0] & 0x80:
        raise _DERError("negative INTEGER")
    if len(contents) > 1 and contents[0] == 0 and not contents[1] & 0x80:
        raise _DERError("INTEGER is not minimally encoded")
    return int.from_bytes(contents, "big"), rest


# --- Point arithmetic in Jacobian coordinates (Guide to Elliptic Curve Cryptography, Hankerson et al., 3.2.2) ---


def _double(point: _Jacobian) -> _Jacobian:
    """2P for a = -3 ("dbl-2001-b", Bernstein-Lange Explicit-Formulas Database)."""
    x1, y1, z1 = point
    if z1 == 0 or y1 == 0:
        return _INFINITY
    delta = z1 * z1 % P
    gamma = y1 * y1 % P
    beta = x1 * gamma % P
    alpha = 3 * (x1 - delta) * (x1 + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y1 + z1) * (y1 + z1) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def _add_affine(point: _Jacobian, other: _Affine) -> _Jacobian:
    """P + Q with Q affine ("madd-2007-bl"), handling Q = P (doubling) and Q = -P (infinity)."""
    x1, y1, z1 = point
    x2, y2 = other
    if z1 == 0:
        return x2, y2, 1
    z1z1 = z1 * z1 % P
    u2 = x2 * z1z1 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = 2 * (s2 - y1) % P
    if h == 0:
        return _double(point) if r == 0 else _INFINITY
    hh = h * h % P
    i = 4 * hh % P
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def _to_affine(point: _Jacobian) -> _Affine | None:
    x, y, z = point
    if z == 0:
        return None
    z_inverse = pow(z, -1, P)
    z_inverse_squared = z_inverse * z_inverse % P
    return x * z_inverse_squared % P, y * z_inverse_squared * z_inverse % P


def _double_scalar_multiply(u1: int, u2: int, q: _Affine) -> _Jacobian:
    """u1*G + u2*Q by Shamir's trick (simultaneous double-and-add, Hankerson et al. algorithm 3.48 with w = 1):
    one shared doubling per bit, and one mixed addition of G, Q or G+Q where the bits ask for it."""
    g: _Affine = (GX, GY)
    g_plus_q = _to_affine(_add_affine((GX, GY, 1), q))
    result = _INFINITY
    for bit in range(max(u1.bit_length(), u2.bit_length()) - 1, -1, -1):
        result = _double(result)
        pick = ((u1 >> bit) & 1) | (((u2 >> bit) & 1) << 1)
        if pick == 1:
            result = _add_affine(result, g)
        elif pick == 2:
            result = _add_affine(result, q)
        elif pick == 3:
            if g_plus_q is None:  # Q = -G: G + Q is the point at infinity, adding it changes nothing
                continue
            result = _add_affine(result, g_plus_q)
    return result
