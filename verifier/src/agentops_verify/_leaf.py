"""The evidence log's leaf (LOG.md section 2): one per sealed session, the JCS form of exactly seven keys.

``SealedChainFacts`` is what a verified sealed chain establishes and a leaf must repeat; a ``LogLeaf`` adds the
SHA-256 of the archived object's bytes. Leaves are parsed strictly: exactly the seven keys, each well-formed, and
bytes read from the log must be the leaf's canonical form, so one session has one leaf encoding. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from . import _rules as rules
from ._errors import EvidenceLogError, MalformedJSONError
from ._jcs import MAX_SAFE_INTEGER, canonicalize
from ._json import loads
from ._merkle import leaf_hash
from ._report import Report

LEAF_VERSION = 1
# LOG.md section 2, in table order.
LEAF_KEYS = (
    "leaf_version",
    "session_id",
    "seal_event_hash",
    "event_count",
    "seal_timestamp",
    "signer_key_id",
    "archive_sha256",
)
_HEX_SHA256 = re.compile(rules.HEX_DIGEST_PATTERN)


class LeafError(EvidenceLogError):
    """A log leaf is malformed, or the facts it is built from do not describe a signed, sealed session."""


@dataclass(frozen=True)
class SealedChainFacts:
    """What a verified sealed chain establishes about its session, as a log leaf states it (LOG.md section 2).

    ``event_count`` counts every event, the seal included; ``seal_event_hash`` is the seal event's ``event_hash``
    (the session's replay fingerprint)."""

    session_id: str
    seal_event_hash: str
    event_count: int
    seal_timestamp: str
    signer_key_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or rules.UUID.fullmatch(self.session_id) is None:
            raise LeafError(f"session_id {self.session_id!r} is not a lowercase canonical UUID")
        if not isinstance(self.seal_event_hash, str) or _HEX_SHA256.fullmatch(self.seal_event_hash) is None:
            raise LeafError(f"seal_event_hash {self.seal_event_hash!r} is not 64 lowercase hex digits")
        # The seal is preceded at least by SESSION_START, so a sealed session has two events or more.
        if type(self.event_count) is not int or not 2 <= self.event_count <= MAX_SAFE_INTEGER:
            raise LeafError(f"event_count {self.event_count!r} is not an integer from 2 to 2**53 - 1")
        if not isinstance(self.seal_timestamp, str) or rules.TIMESTAMP.fullmatch(self.seal_timestamp) is None:
            raise LeafError(f"seal_timestamp {self.seal_timestamp!r} is not an RFC 3339 UTC time")
        if not isinstance(self.signer_key_id, str) or rules.KEY_ID.fullmatch(self.signer_key_id) is None:
            raise LeafError(f"signer_key_id {self.signer_key_id!r} is not 'sha256:' and 64 lowercase hex digits")

    @classmethod
    def from_report(cls, report: Report, seal_payload: Mapping[str, Any]) -> SealedChainFacts:
        """The facts of a chain that passed verification with a signed seal, ``seal_payload`` being its seal
        event's payload (which the report does not repeat)."""
        if not (report.passed and report.sealed and report.seal_signed and report.authority == rules.SERVER):
            raise LeafError("only a server chain that passed verification with a signed seal has a log leaf")
        key_id = report.seal_key_id
        seal_timestamp = seal_payload.get("seal_timestamp")
        if key_id is None or seal_payload.get("signer_key_id") != key_id or not isinstance(seal_timestamp, str):
            raise LeafError("the seal payload given is not the verified chain's seal")
        if report.session_id is None or report.replay_fingerprint is None:
            raise LeafError("the report has no session id or replay fingerprint")
        return cls(
            session_id=report.session_id,
            seal_event_hash=report.replay_fingerprint,
            event_count=report.event_count,
            seal_timestamp=seal_timestamp,
            signer_key_id=key_id,
        )


@dataclass(frozen=True)
class LogLeaf(SealedChainFacts):
    """One leaf of the evidence log: a sealed session's facts and the SHA-256 of its archive object."""

    archive_sha256: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.archive_sha256, str) or _HEX_SHA256.fullmatch(self.archive_sha256) is None:
            raise LeafError(f"archive_sha256 {self.archive_sha256!r} is not 64 lowercase hex digits")

    @classmethod
    def for_archive(cls, facts: SealedChainFacts, archive_sha256: str) -> LogLeaf:
        """The leaf of a sealed session whose archived object's bytes have SHA-256 ``archive_sha256`` (hex)."""
        return cls(archive_sha256=archive_sha256, **{field.name: getattr(facts, field.name) for field in fields(facts)})

    @property
    def facts(self) -> SealedChainFacts:
        return SealedChainFacts(
            session_id=self.session_id,
            seal_event_hash=self.seal_event_hash,
            event_count=self.event_count,
            seal_timestamp=self.seal_timestamp,
            signer_key_id=self.signer_key_id,
        )

    def differences(self, facts: SealedChainFacts) -> list[str]:
        """The names of the leaf's keys whose values differ from ``facts`` (empty when the leaf describes them)."""
        return [field.name for field in fields(facts) if getattr(self, field.name) != getattr(facts, field.name)]

    def to_dict(self) -> dict[str, Any]:
        """The leaf object (LOG.md section 2), as a log proof carries it (section 5)."""
        return {
            "leaf_version": LEAF_VERSION,
            "session_id": self.session_id,
            "seal_event_hash": self.seal_event_hash,
            "event_count": self.event_count,
            "seal_timestamp": self.seal_timestamp,
            "signer_key_id": self.signer_key_id,
            "archive_sha256": self.archive_sha256,
        }

    def to_bytes(self) -> bytes:
        """The leaf bytes: JCS of the leaf object."""
        return canonicalize(self.to_dict())

    def hash(self) -> bytes:
        """The leaf's Merkle tree hash (RFC 9162: SHA-256 of 0x00 and the leaf bytes)."""
        return leaf_hash(self.to_bytes())

    @classmethod
    def from_dict(cls, value: object) -> LogLeaf:
        """A leaf object with exactly the seven keys of LOG.md section 2, each well-formed."""
        if not isinstance(value, dict):
            raise LeafError("the leaf is not a JSON object")
        keys = set(value)
        if keys != set(LEAF_KEYS):
            missing = sorted(set(LEAF_KEYS) - keys)
            unknown = sorted(keys - set(LEAF_KEYS))
            raise LeafError(f"the leaf lacks keys {missing} or has unknown keys {unknown}")
        version = value["leaf_version"]
        if type(version) is not int or version != LEAF_VERSION:
            raise LeafError(f"leaf_version {version!r} is not {LEAF_VERSION}")
        return cls(**{name: value[name] for name in LEAF_KEYS if name != "leaf_version"})

    @classmethod
    def from_bytes(cls, data: bytes) -> LogLeaf:
        """A leaf read from the log: strict I-JSON whose canonical form is exactly ``data``."""
        try:
            value = loads(data)
        except MalformedJSONError as error:
            raise LeafError(f"the leaf is not valid JSON: {error}") from None
        leaf = cls.from_dict(value)
        if leaf.to_bytes() != data:
            raise LeafError("the leaf bytes are not the JCS form of the leaf")
        return leaf
