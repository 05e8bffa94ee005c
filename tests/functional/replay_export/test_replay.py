"""Replay over moto S3 and the chain store: verified first, paged, and verified once per archive version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agentops_server.archive_reader import S3ArchiveReader
from agentops_server.errors import ApiError
from agentops_server.memory import InMemoryChainStore
from agentops_server.replay import INDEX_STRIDE, ReplayService, VerificationCache
from agentops_server.store import ArchiveRef, StoredBatch
from agentops_verify import canonicalize, event_hash, sha256_hex

from tests.functional.replay_export.conftest import OWNER, T0, seal_into_archive, store_events
from tests.support.chains import Event, build_chain, ordinary_payload

DROP = {"dropped_count": 4, "cumulative_drops": 4, "drop_reason": "NETWORK_LOSS", "sequence_range": [10, 13]}


def _payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
    if sequence_number == 7:
        return "LOG_DROP", dict(DROP)
    if sequence_number == 8:
        return "MODEL_REQUEST", {"model": "m", "messages": "[REDACTED]", "messages_hash": "b" * 64}
    return ordinary_payload(sequence_number)


class CountingReader:
    """The real S3 reader, counting whole-object reads and ranged reads."""

    def __init__(self, s3: Any) -> None:
        self._reader = S3ArchiveReader(s3)
        self.full_reads = 0
        self.ranged_reads: list[tuple[int, int]] = []

    def iter_chunks(self, archive: ArchiveRef) -> Iterator[bytes]:
        self.full_reads += 1
        chunks: Iterator[bytes] = self._reader.iter_chunks(archive)
        return chunks

    def read_range(self, archive: ArchiveRef, start: int, end: int) -> bytes:
        self.ranged_reads.append((start, end))
        data: bytes = self._reader.read_range(archive, start, end)
        return data


def _all_pages(service: ReplayService, session_id: str, limit: int) -> list[dict[str, Any]]:
    pages = []
    from_sequence: int | None = 0
    while from_sequence is not None:
        page = service.replay(session_id, from_sequence, limit)
        pages.append(page)
        from_sequence = page["next_from_sequence"]
    return pages


@pytest.fixture
def sealed(store: InMemoryChainStore, s3: Any) -> list[Event]:
    events = build_chain(300, payload_factory=_payloads)
    seal_into_archive(store, s3, events, evidence_class="PARTIAL_AUTHORITATIVE_EVIDENCE")
    return events


def test_sealed_session_pages_cover_every_event_exactly_once(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    service = ReplayService(store, S3ArchiveReader(s3))

    pages = _all_pages(service, sealed[0]["session_id"], 70)

    shown = [frame["event"] for page in pages for frame in page["frames"] if frame["type"] in {"EVENT", "LOG_DROP"}]
    assert shown == sealed
    assert [page["next_from_sequence"] for page in pages] == [70, 140, 210, 280, None]


def test_frames_show_the_drop_the_gap_it_declares_and_the_redaction(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    page = ReplayService(store, S3ArchiveReader(s3)).replay(sealed[0]["session_id"], 7, 2)

    assert [(frame["type"], frame["sequence_number"]) for frame in page["frames"]] == [
        ("LOG_DROP", 7),
        ("GAP", 7),
        ("EVENT", 8),
        ("REDACTION", 8),
    ]
    assert page["frames"][0]["dropped_count"] == 4
    assert page["frames"][0]["drop_reason"] == "NETWORK_LOSS"
    assert page["frames"][1]["sequence_range"] == [10, 13]
    assert page["frames"][3]["pointers"] == ["/payload/messages"]


def test_replay_carries_the_verifiers_classification(store: InMemoryChainStore, s3: Any, sealed: list[Event]) -> None:
    page = ReplayService(store, S3ArchiveReader(s3)).replay(sealed[0]["session_id"], 0, 10)

    verification = page["verification"]
    assert verification["status"] == "PASS"
    assert verification["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert verification["partial_reasons"] == ["LOG_DROP_PRESENT"]
    assert verification["seal_key_trusted"] is True
    assert "violations" not in verification


def test_an_archive_version_is_verified_once_and_later_pages_read_only_their_range(
    store: InMemoryChainStore, s3: Any
) -> None:
    events = build_chain(1280)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    reader = CountingReader(s3)
    service = ReplayService(store, reader, VerificationCache())
    line_sizes = [len(canonicalize(event)) + 1 for event in events]
    # A page of 100 lines reads at most the index blocks around it: 100 + 2 * INDEX_STRIDE lines.
    largest_range = max(sum(line_sizes[start : start + 100 + 2 * INDEX_STRIDE]) for start in range(len(events)))

    pages = _all_pages(service, events[0]["session_id"], 100)

    assert reader.full_reads == 1
    assert len(reader.ranged_reads) == len(pages) == 13
    assert all(end - start <= largest_range for start, end in reader.ranged_reads)
    assert largest_range < sum(line_sizes) / 4


def test_open_session_replays_from_the_store_as_unsealed(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(30, end=False, seal=None, payload_factory=_payloads)
    store_events(store, events, batch_size=7)
    service = ReplayService(store, S3ArchiveReader(s3))

    pages = _all_pages(service, events[0]["session_id"], 8)

    shown = [frame["event"] for page in pages for frame in page["frames"] if frame["type"] in {"EVENT", "LOG_DROP"}]
    assert shown == events
    assert pages[0]["verification"]["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert "UNSEALED_SESSION" in pages[0]["verification"]["partial_reasons"]


def test_open_session_verification_continues_from_where_it_stopped(s3: Any) -> None:
    events = build_chain(12, seal=None)

    class RecordingStore(InMemoryChainStore):
        """Remembers where each read of the chain started."""

        def __init__(self) -> None:
            super().__init__()
            self.reads_from: list[int] = []

        def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
            self.reads_from.append(from_sequence)
            yield from super().iter_lines(session_id, from_sequence)

    store = RecordingStore()
    store_events(store, events[:6])
    service = ReplayService(store, S3ArchiveReader(s3))
    before = service.replay(events[0]["session_id"], 0, 200)
    for event in events[6:]:
        _append(store, event)
    store.reads_from.clear()

    after = service.replay(events[0]["session_id"], 4, 200)

    assert before["verification"]["event_count"] == 6
    assert before["verification"]["complete"] is False
    assert after["verification"]["event_count"] == 12
    assert after["verification"]["complete"] is True
    assert [frame["sequence_number"] for frame in after["frames"]] == list(range(4, 12))
    assert store.reads_from == [6, 4]  # the verifier read only the six new events; the page read from 4


def _append(store: InMemoryChainStore, event: Event) -> None:
    lines = (canonicalize(event),)
    batch = StoredBatch(
        session_id=event["session_id"],
        first_sequence=event["sequence_number"],
        lines=lines,
        event_ids=(event["event_id"],),
        event_hashes=(event["event_hash"],),
        owner=OWNER,
        request_digest=sha256_hex(lines[0]),
        accepted_at=T0,
        ends_session=event["event_type"] == "SESSION_END",
    )
    store.put_batch(batch)
    store.advance_head(batch)


def test_corrupted_stored_chain_gets_422_with_the_violation_and_no_frames(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(20, end=False, seal=None)
    tampered = [dict(event) for event in events]
    tampered[9] = {**tampered[9], "payload": {**tampered[9]["payload"], "model": "edited-after-the-fact"}}
    store_events(store, tampered)
    service = ReplayService(store, S3ArchiveReader(s3))

    with pytest.raises(ApiError) as refused:
        service.replay(events[0]["session_id"], 0, 200)

    assert refused.value.status == 422
    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"
    assert refused.value.details["violations"][0]["event_sequence"] == 9
    assert "frames" not in refused.value.details


def test_rehashed_forgery_in_the_store_is_caught_at_the_broken_link(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(10, end=False, seal=None)
    forged = [dict(event) for event in events]
    forged[4] = {**forged[4], "timestamp_wall": "2026-01-01T11:00:00.000Z"}
    forged[4]["event_hash"] = event_hash(forged[4])  # re-hashed, but the next event still links to the original
    store_events(store, forged)

    with pytest.raises(ApiError) as refused:
        ReplayService(store, S3ArchiveReader(s3)).replay(events[0]["session_id"], 5, 5)

    assert refused.value.details["violations"][0]["type"] == "CHAIN_BROKEN"


def test_archive_whose_bytes_differ_from_the_sealed_record_is_refused(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    session_id = sealed[0]["session_id"]
    head = store.get_head(session_id)
    assert head is not None
    assert head.archive is not None
    wrong = ArchiveRef(head.archive.bucket, head.archive.key, head.archive.version_id, "0" * 64)
    store.mark_sealed(session_id, wrong, head.sealed_at or T0, "AUTHORITATIVE_EVIDENCE", ())

    with pytest.raises(ApiError) as refused:
        ReplayService(store, S3ArchiveReader(s3)).replay(session_id, 0, 10)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "LOAD_ERROR"


def test_unknown_session_is_404(store: InMemoryChainStore, s3: Any) -> None:
    with pytest.raises(ApiError) as refused:
        ReplayService(store, S3ArchiveReader(s3)).replay("6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10", 0, 10)

    assert refused.value.code == "SESSION_NOT_FOUND"


def test_another_sessions_chain_stored_under_this_id_is_refused(store: InMemoryChainStore, s3: Any) -> None:
    requested = "6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10"
    foreign = build_chain(8, end=False, seal=None)
    store_events(store, foreign, session_id=requested)

    with pytest.raises(ApiError) as refused:
        ReplayService(store, S3ArchiveReader(s3)).replay(requested, 0, 10)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "SESSION_MISMATCH"


def test_pages_never_serve_events_appended_after_the_verification(s3: Any) -> None:
    events = build_chain(12, end=False, seal=None)

    class AppendDuringRequest(InMemoryChainStore):
        """An append lands between the verification pass (from 0) and the page read (from 8)."""

        def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
            yield from super().iter_lines(session_id, from_sequence)
            if from_sequence > 0:
                yield canonicalize(events[10])

    store = AppendDuringRequest()
    store_events(store, events[:10])

    page = ReplayService(store, S3ArchiveReader(s3)).replay(events[0]["session_id"], 8, 50)

    assert [frame["sequence_number"] for frame in page["frames"]] == [8, 9]
    assert page["next_from_sequence"] is None
    assert page["verification"]["event_count"] == 10
