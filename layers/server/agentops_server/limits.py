"""The size limits of ``POST /v1/sessions/{id}/events`` (API.md), stated once: the HTTP adapter, validation, ingestion
and the batch store import them. (The page limits of the read routes live with their cores: ``frames`` for replay,
``session_list`` for the list.)"""

from __future__ import annotations

from typing import Final

MAX_BATCH_EVENTS: Final = 500  # events in one request: more is BATCH_TOO_LARGE
MAX_BODY_BYTES: Final = 1024 * 1024  # a request body: more is PAYLOAD_TOO_LARGE
MAX_EVENT_BYTES: Final = 256 * 1024  # one event's canonical form: more is PAYLOAD_TOO_LARGE
