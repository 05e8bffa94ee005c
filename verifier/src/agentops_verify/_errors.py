"""The verifier's error hierarchy, split by cause."""

from __future__ import annotations


class VerifierError(Exception):
    """Base class of every error the verifier library raises."""


class CanonicalizationError(VerifierError, ValueError):
    """A value is not I-JSON (ELS section 2) and has no canonical form."""


class MalformedJSONError(VerifierError, ValueError):
    """Input text is not strict I-JSON: bad syntax, NaN/Infinity, duplicate keys, lone surrogates, huge integers,
    or nesting deeper than 64 (ELS section 2)."""


class EvidenceLogError(VerifierError, ValueError):
    """Evidence log data (a leaf, a checkpoint, a tile, a proof) is malformed or does not verify (LOG.md)."""
