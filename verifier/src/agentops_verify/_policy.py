"""What the auditor demands beyond the chain being intact (ELS section 7, policies)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """``reject_local_authority``: FAIL sessions whose authority is ``sdk``.
    ``require_authoritative``: FAIL anything that is not ``AUTHORITATIVE_EVIDENCE``.
    ``accept_unsigned_seals``: count a legacy unsigned server seal as a seal (ELS section 6, legacy option)."""

    reject_local_authority: bool = False
    require_authoritative: bool = False
    accept_unsigned_seals: bool = False
