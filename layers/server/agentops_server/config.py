"""Settings from environment variables, read once at cold start (docs/architecture.md "Configuration").

``TABLE_NAME`` is needed by every function; what else a function needs it names when it reads its settings
(``Settings.from_env(required=...)``), and a missing one stops the cold start with one error naming every variable
that is missing. Nothing required ever falls back to an empty value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_SERVICE_ID = "agentops-replay"
DEFAULT_SEAL_IDLE_SECONDS = 3600
# A session's size cap (API.md 409 SESSION_TOO_LARGE): the seal function is sized to seal a session at the cap within
# a third of its timeout (docs/architecture.md "Sealing").
DEFAULT_MAX_SESSION_EVENTS = 1_000_000
DEFAULT_MAX_SESSION_BYTES = 1024 * 1024 * 1024
# How long a sealed session's batch items stay in the table after its archive is written (0: kept for ever).
DEFAULT_SEALED_BATCH_RETENTION_DAYS = 30
# Sessions of at least this many events are exported asynchronously (API.md rev 2): a PDF costs about 20 s of CPU per
# 100,000 events, so 25,000 (about 5 s) keeps a synchronous export well inside API Gateway's 29 s.
DEFAULT_EXPORT_ASYNC_MIN_EVENTS = 25_000


class ConfigurationError(Exception):
    """A required variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    service_id: str = DEFAULT_SERVICE_ID
    seal_idle_seconds: int = DEFAULT_SEAL_IDLE_SECONDS
    archive_bucket: str | None = None
    seal_key_id: str | None = None
    max_session_events: int = DEFAULT_MAX_SESSION_EVENTS
    max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES
    sealed_batch_retention_days: int = DEFAULT_SEALED_BATCH_RETENTION_DAYS
    log_origin_override: str | None = None  # LOG_ORIGIN; empty means the default origin
    export_async_min_events: int = DEFAULT_EXPORT_ASYNC_MIN_EVENTS

    @property
    def log_origin(self) -> str:
        """The evidence log's checkpoint origin (LOG.md section 3): ``LOG_ORIGIN``, else ``SERVICE_ID/evidence-log``."""
        return self.log_origin_override or f"{self.service_id}/evidence-log"

    @property
    def bucket(self) -> str:
        """``ARCHIVE_BUCKET``, for a function that required it."""
        if self.archive_bucket is None:
            raise ConfigurationError("ARCHIVE_BUCKET is not set")
        return self.archive_bucket

    @property
    def seal_key(self) -> str:
        """``SEAL_KEY_ID``, for a function that required it."""
        if self.seal_key_id is None:
            raise ConfigurationError("SEAL_KEY_ID is not set")
        return self.seal_key_id

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, required: Iterable[str] = ()) -> Settings:
        """The settings of ``environ`` (default: the process environment); ``ConfigurationError`` naming every
        variable of ``TABLE_NAME`` and ``required`` that is unset or empty."""
        env = os.environ if environ is None else environ
        missing = [name for name in ("TABLE_NAME", *required) if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        table_name = env["TABLE_NAME"]
        return cls(
            table_name=table_name,
            service_id=env.get("SERVICE_ID") or DEFAULT_SERVICE_ID,
            seal_idle_seconds=_positive_int(env, "SEAL_IDLE_SECONDS", DEFAULT_SEAL_IDLE_SECONDS),
            archive_bucket=env.get("ARCHIVE_BUCKET") or None,
            seal_key_id=env.get("SEAL_KEY_ID") or None,
            log_origin_override=env.get("LOG_ORIGIN") or None,
            max_session_events=_positive_int(env, "MAX_SESSION_EVENTS", DEFAULT_MAX_SESSION_EVENTS),
            max_session_bytes=_positive_int(env, "MAX_SESSION_BYTES", DEFAULT_MAX_SESSION_BYTES),
            sealed_batch_retention_days=_positive_int(
                env, "SEALED_BATCH_RETENTION_DAYS", DEFAULT_SEALED_BATCH_RETENTION_DAYS, minimum=0
            ),
            export_async_min_events=_positive_int(env, "EXPORT_ASYNC_MIN_EVENTS", DEFAULT_EXPORT_ASYNC_MIN_EVENTS),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {text!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value
