"""PII and secret scan over event payloads, for the export document (issue 5).

Findings say *where* (sequence number, JSON Pointer) and *what kind*, never the matched text: an export must not copy
a secret into yet another place. Their form is the ``pii_findings`` entry of ELS section 9,
``{sequence_number, kind, pointer}``. Detectors favour precision over recall (checksums for card numbers and
IBANs, shape exclusions for national ids) because every finding is shown to an auditor; this is a review aid, not a
guarantee that a payload is free of personal data.

A member name can itself be sensitive (an object keyed by e-mail address), and it would leak through every pointer
that passes it. Such a name is written in pointers as ``[masked key #N]``, N being the member's position in its
object (canonical key order for events read from the chain), so the finding still locates the value.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from agentops_verify import CHAIN_SEAL, has_redaction_hash, is_redacted, pointer_token

from agentops_server.json_pointer import Node, walk

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
PAYMENT_CARD = "PAYMENT_CARD_NUMBER"
IBAN = "IBAN"
NATIONAL_ID = "NATIONAL_ID"
IP_ADDRESS = "IP_ADDRESS"
API_KEY_LIKE = "API_KEY_LIKE"
REDACTION_WITHOUT_HASH = "REDACTION_WITHOUT_HASH"
# Kinds that are errors of the record itself (ELS section 3: a redaction error) rather than a warning about content.
ERROR_KINDS = frozenset({REDACTION_WITHOUT_HASH})

# The seal is written by the sealer from a fixed schema and holds no agent data; its base64 signature would only
# show up as a false "API key".
UNSCANNED_EVENT_TYPES = frozenset({CHAIN_SEAL})

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# International (E.164, leading '+') or North American with separators; bare digit runs are too ambiguous.
_PHONE = re.compile(r"(?<![\w+])(?:\+[1-9](?:[ .-]?\(?\d\)?){6,14}|\(?\b[2-9]\d{2}\)?[ .-]\d{3}[ .-]\d{4})(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d+(?:[ -]\d+)*(?![\d-])")
_CARD_MIN_DIGITS = 13
_CARD_MAX_DIGITS = 19
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")
_AWS_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_API_KEY = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
# Shannon entropy per character above which a long mixed-case alphanumeric token looks generated (a key), not written.
_TOKEN_MIN_ENTROPY = 4.0

# IBAN lengths per country would be stricter; the ISO 13616 mod-97 check already rejects almost every random string.
_IBAN_MIN_LENGTH = 15
_IBAN_MAX_LENGTH = 34


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_card_number(text: str) -> bool:
    # Digit groups joined by single spaces or hyphens; any run of consecutive groups holding 13..19 digits is a
    # candidate, so "4111 1111 1111 1111 0" still finds the card inside.
    for match in _CARD.finditer(text):
        groups = re.split(r"[ -]", match.group())
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) > _CARD_MAX_DIGITS:
                    break
                if len(digits) >= _CARD_MIN_DIGITS and len(set(digits)) > 1 and _luhn_valid(digits):
                    return True
    return False


def _iban_valid(compact: str) -> bool:
    # ISO 13616: move the first four characters to the end, letters become 10..35, the number mod 97 must be 1.
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _has_iban(text: str) -> bool:
    # The match may run on into the text after the IBAN ("... 3000 0"): try it cut at each space, longest first.
    for match in _IBAN.finditer(text):
        groups = match.group().split(" ")
        for count in range(len(groups), 0, -1):
            compact = "".join(groups[:count])
            if _IBAN_MIN_LENGTH <= len(compact) <= _IBAN_MAX_LENGTH and _iban_valid(compact):
                return True
    return False


def _has_national_id(text: str) -> bool:
    # US SSN shape; numbers the SSA never issues are excluded (area 000, 666, 900-999; group 00; serial 0000).
    for match in _SSN.finditer(text):
        area, group, serial = match.groups()
        if area not in {"000", "666"} and not area.startswith("9") and group != "00" and serial != "0000":
            return True
    return False


def _has_ip_address(text: str) -> bool:
    for match in _IPV4.finditer(text):
        if all(int(octet) <= 255 and (octet == "0" or not octet.startswith("0")) for octet in match.group().split(".")):
            return True
    for match in _IPV6_CANDIDATE.finditer(text):
        candidate = match.group()
        if sum(char.isalnum() for char in candidate) < 2:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        return True
    return False


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(count / len(token) * math.log2(count / len(token)) for count in counts.values())


def _looks_generated(token: str) -> bool:
    # Hex digests and UUIDs (lowercase, no capitals) are everywhere in our own envelopes and are not secrets.
    classes = (any(c.islower() for c in token), any(c.isupper() for c in token), any(c.isdigit() for c in token))
    return all(classes) and _entropy(token) >= _TOKEN_MIN_ENTROPY


def _has_key_material(text: str) -> bool:
    if _AWS_ACCESS_KEY.search(text) or _API_KEY.search(text) or _PRIVATE_KEY.search(text):
        return True
    return any(_looks_generated(match.group()) for match in _TOKEN.finditer(text))


def _has_email(text: str) -> bool:
    return _EMAIL.search(text) is not None


def _has_phone(text: str) -> bool:
    return _PHONE.search(text) is not None


# Detector order is the order findings for one location are listed in. Each detector has a cheap precondition
# (a character its matches cannot lack) that spares the regular expressions on most strings of a payload.
_TEXT_DETECTORS: tuple[tuple[str, Callable[[str, bool], bool], Callable[[str], bool]], ...] = (
    (EMAIL, lambda text, _digits: "@" in text, _has_email),
    (PHONE, lambda _text, digits: digits, _has_phone),
    (PAYMENT_CARD, lambda _text, digits: digits, _has_card_number),
    (IBAN, lambda _text, digits: digits, _has_iban),
    (NATIONAL_ID, lambda text, digits: digits and "-" in text, _has_national_id),
    (IP_ADDRESS, lambda text, _digits: "." in text or ":" in text, _has_ip_address),
    (API_KEY_LIKE, lambda text, _digits: len(text) >= _SHORTEST_KEY_MATERIAL, _has_key_material),
)
# Nothing any detector finds is shorter: "a@b.cd" (email) is the shortest match of all.
_SHORTEST_MATCH = 6
# "AKIA" + 16 characters; "sk-" + 20; the private key armour line; generated tokens of 32 and more.
_SHORTEST_KEY_MATERIAL = 20
_ANY_DIGIT = re.compile(r"\d")
_CACHED_MAX_LENGTH = 128


def detect(text: str) -> tuple[str, ...]:
    """The kinds of sensitive data found in one string (each kind at most once)."""
    if len(text) < _SHORTEST_MATCH:
        return ()
    # Member names and short values repeat across the events of a session; long values are not worth keeping.
    return _detect_short(text) if len(text) <= _CACHED_MAX_LENGTH else _detect(text)


@lru_cache(maxsize=4096)
def _detect_short(text: str) -> tuple[str, ...]:
    return _detect(text)


def _detect(text: str) -> tuple[str, ...]:
    digits = _ANY_DIGIT.search(text) is not None
    return tuple(kind for kind, may_match, matches in _TEXT_DETECTORS if may_match(text, digits) and matches(text))


def scan_event(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Findings for one event envelope: ``{sequence_number, kind, pointer}``, in document order.

    ``pointer`` is a JSON Pointer into the envelope (``/payload/...``) to the member whose key or value matched. One
    finding per kind and member however many matches. Integers are scanned as digit strings (a card number can arrive
    as a JSON number). A ``"[REDACTED]"`` without its ``<key>_hash`` sibling is ``REDACTION_WITHOUT_HASH``.
    """
    if event.get("event_type") in UNSCANNED_EVENT_TYPES or "payload" not in event:
        return []
    sequence_number = event.get("sequence_number")
    findings: list[dict[str, Any]] = []
    for node in walk(event["payload"], "/payload", _masked_member_token):
        kinds: list[str] = []
        if is_redacted(node.value) and not _backed(node):
            kinds.append(REDACTION_WITHOUT_HASH)
        if node.key is not None:
            kinds.extend(detect(node.key))
        value = node.value
        if isinstance(value, str):
            kinds.extend(detect(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            kinds.extend(detect(str(value)))
        findings.extend(
            {"sequence_number": sequence_number, "kind": kind, "pointer": node.pointer} for kind in dict.fromkeys(kinds)
        )
    return findings


def _backed(node: Node) -> bool:
    return node.parent is not None and node.key is not None and has_redaction_hash(node.parent, node.key)


def _masked_member_token(key: str, position: int) -> str:
    return f"[masked key #{position}]" if detect(key) else pointer_token(key)


def withheld_findings(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ELS section 9 (rev 2): findings of a withheld payload keep their kind but say ``pointer: null``, once per kind
    and event: a pointer names the payload's members, which can themselves be personal data."""
    unique = dict.fromkeys((finding["sequence_number"], finding["kind"]) for finding in findings)
    return [{"sequence_number": number, "kind": kind, "pointer": None} for number, kind in unique]


def scan_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Findings for a whole chain, in sequence order."""
    return [finding for event in events for finding in scan_event(event)]
