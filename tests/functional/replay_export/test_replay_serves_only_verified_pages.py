"""Replay over moto S3 and the chain store: verified first, paged, and verified once per archive version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from agentops_server.archive_reader import ArchiveReader
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.errors import ApiError
from agentops_server.memory import InMemoryChainStore
from agentops_server.replay import INDEX_STRIDE, ReplayService, VerifiedArchives
from agentops_server.store import ArchiveRef, StoredBatch
from agentops_verify import canonicalize, event_hash, sha256_hex

from tests.functional.conftest import REGION
from tests.functional.replay_export.conftest import OWNER, T0, published_keys, seal_into_archive, store_events
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


def _service(store: InMemoryChainStore, reader: ArchiveReader) -> ReplayService:
    # The deployment's published key objects, read with a client of their own as the handler's wiring does.
    return ReplayService(store, VerifiedArchives(reader), published_keys(boto3.client("s3", region_name=REGION)))


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
    service = _service(store, S3ArchiveReader(s3))

    pages = _all_pages(service, sealed[0]["session_id"], 70)

    shown = [frame["event"] for page in pages for frame in page["frames"] if frame["type"] in {"EVENT", "LOG_DROP"}]
    assert shown == sealed
    assert [page["next_from_sequence"] for page in pages] == [70, 140, 210, 280, None]


def test_frames_show_the_drop_the_gap_it_declares_and_the_redaction(
    store: InMemoryChainStore, s3: Any, sealed: list[Event]
) -> None:
    page = _service(store, S3ArchiveReader(s3)).replay(sealed[0]["session_id"], 7, 2)

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
    page = _service(store, S3ArchiveReader(s3)).replay(sealed[0]["session_id"], 0, 10)

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
    service = _service(store, reader)
    line_sizes = [len(canonicalize(event)) + 1 for event in events]
    # A page of 100 lines reads at most the index blocks around it: 100 + 2 * INDEX_STRIDE lines.
    largest_range = max(sum(line_sizes[start : start + 100 + 2 * INDEX_STRIDE]) for start in range(len(events)))

    pages = _all_pages(service, events[0]["session_id"], 100)

    assert reader.full_reads == 1
    assert len(pages) == 13
    assert len(reader.ranged_reads) == 12  # the first page comes from the verification pass itself
    assert all(end - start <= largest_range for start, end in reader.ranged_reads)
    assert largest_range < sum(line_sizes) / 4


def test_open_session_replays_from_the_store_as_unsealed(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(30, end=False, seal=None, payload_factory=_payloads)
    store_events(store, events, batch_size=7)
    service = _service(store, S3ArchiveReader(s3))

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
    service = _service(store, S3ArchiveReader(s3))
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
    # The verifier read only the six new events; the page was read from the start of the run of lines holding 4.
    assert store.reads_from == [6, 0]


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
    service = _service(store, S3ArchiveReader(s3))

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
        _service(store, S3ArchiveReader(s3)).replay(events[0]["session_id"], 5, 5)

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
        _service(store, S3ArchiveReader(s3)).replay(session_id, 0, 10)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "LOAD_ERROR"


def test_unknown_session_is_404(store: InMemoryChainStore, s3: Any) -> None:
    with pytest.raises(ApiError) as refused:
        _service(store, S3ArchiveReader(s3)).replay("6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10", 0, 10)

    assert refused.value.code == "SESSION_NOT_FOUND"


def test_another_sessions_chain_stored_under_this_id_is_refused(store: InMemoryChainStore, s3: Any) -> None:
    requested = "6f1d1f4e-6f4b-4f0e-9a53-5d0f3f1c2a10"
    foreign = build_chain(8, end=False, seal=None)
    store_events(store, foreign, session_id=requested)

    with pytest.raises(ApiError) as refused:
        _service(store, S3ArchiveReader(s3)).replay(requested, 0, 10)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "SESSION_MISMATCH"


def test_pages_never_serve_events_appended_after_the_verification(s3: Any) -> None:
    events = build_chain(12, end=False, seal=None)

    class AppendDuringRequest(InMemoryChainStore):
        """Once armed, an append lands between the verification (reading new lines) and the page read."""

        armed = False

        def iter_lines(self, session_id: str, from_sequence: int = 0) -> Iterator[bytes]:
            yield from super().iter_lines(session_id, from_sequence)
            if self.armed and from_sequence < 10:
                yield canonicalize(events[10])

    store = AppendDuringRequest()
    store_events(store, events[:10])
    service = _service(store, S3ArchiveReader(s3))
    service.replay(events[0]["session_id"], 0, 50)
    store.armed = True

    page = service.replay(events[0]["session_id"], 8, 50)

    assert [frame["sequence_number"] for frame in page["frames"]] == [8, 9]
    assert page["next_from_sequence"] is None
    assert page["verification"]["event_count"] == 10


class EditingReader(CountingReader):
    """The real reader, except that ranged reads (and, once ``edit_everything``, whole reads) return edited bytes:
    what a storage fault, or a version whose bytes changed, would look like."""

    edit_everything = False

    def iter_chunks(self, archive: ArchiveRef) -> Iterator[bytes]:
        for chunk in super().iter_chunks(archive):
            yield _edited(chunk) if self.edit_everything else chunk

    def read_range(self, archive: ArchiveRef, start: int, end: int) -> bytes:
        return _edited(super().read_range(archive, start, end))


def _edited(data: bytes) -> bytes:
    return data.replace(b'"What is 2+2?"', b'"What is 3+3?"')


def test_archive_page_bytes_that_differ_from_the_verified_ones_are_not_served(
    store: InMemoryChainStore, s3: Any
) -> None:
    events = build_chain(300)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    reader = EditingReader(s3)
    service = _service(store, reader)
    service.replay(events[0]["session_id"], 0, 10)

    page = service.replay(events[0]["session_id"], 150, 20)

    assert [frame["event"] for frame in page["frames"]] == events[150:170]
    assert reader.full_reads == 2  # the ranged bytes did not hash as verified: verified again, served from that pass


def test_archive_whose_bytes_changed_after_verification_answers_422(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(300)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    reader = EditingReader(s3)
    service = _service(store, reader)
    service.replay(events[0]["session_id"], 0, 10)
    reader.edit_everything = True

    with pytest.raises(ApiError) as refused:
        service.replay(events[0]["session_id"], 150, 20)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "LOAD_ERROR"


def test_stale_replay_after_stored_bytes_edited_answers_422(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(200, end=False, seal=None)
    session_id = events[0]["session_id"]
    store_events(store, events)
    service = _service(store, S3ArchiveReader(s3))
    assert service.replay(session_id, 100, 50)["verification"]["status"] == "PASS"

    batch = store.get_batch(session_id, 100)
    assert batch is not None
    store._batches[session_id][100] = replace(batch, lines=tuple(_edited(line) for line in batch.lines))

    with pytest.raises(ApiError) as refused:
        service.replay(session_id, 100, 50)

    assert refused.value.code == "VERIFICATION_FAILED"
    assert refused.value.details["violations"][0]["type"] == "PAYLOAD_HASH_MISMATCH"


def test_replay_stops_trusting_a_key_once_it_leaves_the_published_set(store: InMemoryChainStore, s3: Any) -> None:
    events = build_chain(20)
    seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    published = list(published_keys(s3)())
    service = ReplayService(store, VerifiedArchives(S3ArchiveReader(s3)), lambda: published)
    assert service.replay(events[0]["session_id"], 0, 5)["verification"]["evidence_class"] == "AUTHORITATIVE_EVIDENCE"

    published.clear()  # e.g. a deployment that stopped trusting the key
    verification = service.replay(events[0]["session_id"], 0, 5)["verification"]

    assert verification["evidence_class"] == "PARTIAL_AUTHORITATIVE_EVIDENCE"
    assert verification["partial_reasons"] == ["UNTRUSTED_SEAL_KEY"]


@pytest.mark.parametrize("sealed", [True, False])
def test_a_page_from_the_verification_pass_equals_the_same_page_read_back(s3: Any, sealed: bool) -> None:
    big = "x" * 200_000  # 30 of these pass the page's 5 MiB cap

    def payloads(sequence_number: int) -> tuple[str, dict[str, Any]]:
        return "MODEL_RESPONSE", {"model": "m", "content": big}

    events = build_chain(60, payload_factory=payloads, seal="signed" if sealed else None)
    store = InMemoryChainStore()
    if sealed:
        seal_into_archive(store, s3, events, evidence_class="AUTHORITATIVE_EVIDENCE")
    else:
        store_events(store, events)
    service = _service(store, S3ArchiveReader(s3))

    cold = service.replay(events[0]["session_id"], 10, 40)
    warm = service.replay(events[0]["session_id"], 10, 40)

    assert cold == warm
    assert cold["next_from_sequence"] == 10 + len(cold["frames"]) < 50
