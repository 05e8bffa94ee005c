"""Replay paging over a sealed 100,000-event session (issue 5): a page after the first within 0.5 s.

Everything runs in this process: moto plays the Object Lock bucket, the chain sits in the in-memory store, the session
is sealed (signed seal, archive object, SEALED head) the way the sealer leaves it. Figures, printed as one JSON object:

- ``baseline_full_read_seconds``: one GetObject of the whole archive version, read to the end: what a replay that
  re-read the archive for every page would pay at least, before verifying anything.
- ``first_page_seconds``: the first page in a cold process: streams the archive once, verifies it with the verifier
  library, and builds the line index that later pages seek with.
- ``baseline_uncached_page_seconds``: a page in the middle served by a process with an empty cache, i.e. what every
  page would cost if verification were not reused (the whole archive streamed and verified again).
- ``page_seconds``: later pages of 200 frames at several offsets (best of ``--repeat``), each including the JSON
  encoding of the response body and the check of the page's bytes against the digests taken when they were
  verified; ``max_page_seconds``, its ratio to the full read and to the uncached page.
- The same chain as an open session in the store (no seal, no archive): ``open_first_page_seconds`` (the whole chain
  verified), ``open_page_seconds`` (later pages: the verifier is kept, the page's lines are hash-checked) and
  ``baseline_open_page_unchecked_seconds``, the same pages read and framed without any check (what the replay did
  before pages were checked against the verified bytes), so ``open_check_overhead_ratio`` is the price of the check.

Usage: ``python benchmarks/replay_page.py [--events N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import boto3
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.frames import build_page
from agentops_server.memory import InMemoryChainStore
from agentops_server.replay import ReplayService, VerifiedArchives
from agentops_server.store import SigningKeyRecord, StoredBatch
from agentops_verify import canonicalize, sha256_hex
from moto import mock_aws

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from infra.resources import create_archive_bucket
from tests.support.chains import DEFAULT_START_TIME, build_chain
from tests.support.keys import SIGNATURE_ALGORITHM, default_signer

TARGET_PAGE_SECONDS = 0.5
PAGE_LIMIT = 200
BUCKET = "agentops-replay-benchmark"
REGION = "us-east-1"
OWNER = "arn:aws:iam::111122223333:user/agent"
BATCH_EVENTS = 500


def _store_batches(store: InMemoryChainStore, events: list[dict[str, Any]], lines: list[bytes]) -> None:
    """The events as ingestion stores them: batches of 500; a seal (the last event, if any) is its own batch."""
    session_id: str = events[0]["session_id"]
    store.create_session(session_id, OWNER, DEFAULT_START_TIME)
    sealed = events[-1]["event_type"] == "CHAIN_SEAL"
    ordinary = len(lines) - 1 if sealed else len(lines)
    bounds = [(start, min(start + BATCH_EVENTS, ordinary)) for start in range(0, ordinary, BATCH_EVENTS)]
    if sealed:
        bounds.append((len(lines) - 1, len(lines)))
    for start, end in bounds:
        batch = StoredBatch(
            session_id=session_id,
            first_sequence=start,
            lines=tuple(lines[start:end]),
            event_ids=tuple(event["event_id"] for event in events[start:end]),
            event_hashes=tuple(event["event_hash"] for event in events[start:end]),
            owner=OWNER,
            request_digest=sha256_hex(b"\n".join(lines[start:end])),
            accepted_at=DEFAULT_START_TIME,
            ends_session=any(event["event_type"] == "SESSION_END" for event in events[start:end]),
            is_seal=events[start]["event_type"] == "CHAIN_SEAL",
        )
        store.put_batch(batch)
        store.advance_head(batch)


def _sealed_session(store: InMemoryChainStore, s3: Any, events: list[dict[str, Any]]) -> tuple[str, int]:
    session_id: str = events[0]["session_id"]
    lines = [canonicalize(event) for event in events]
    _store_batches(store, events, lines)
    signer = default_signer()
    # Published as the sealer publishes it: the key object replay trusts.
    S3Archive(s3, BUCKET).publish_key(
        SigningKeyRecord(signer.key_id, SIGNATURE_ALGORITHM, signer.public_key_pem, DEFAULT_START_TIME)
    )
    body_sha256 = sha256_hex(b"".join(line + b"\n" for line in lines))
    archive = S3Archive(s3, BUCKET).write_session(session_id, iter(lines), body_sha256)
    store.mark_sealing(session_id)
    store.mark_sealed(session_id, archive, DEFAULT_START_TIME, "AUTHORITATIVE_EVIDENCE", ())
    return session_id, sum(len(line) + 1 for line in lines)


def _timed_page(service: ReplayService, session_id: str, from_sequence: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    page = service.replay(session_id, from_sequence, PAGE_LIMIT)
    json.dumps(page, ensure_ascii=False, separators=(",", ":"))
    return time.perf_counter() - started, page


def _service(store: InMemoryChainStore, s3: Any) -> ReplayService:
    return ReplayService(store, VerifiedArchives(S3ArchiveReader(s3)), S3Archive(s3, BUCKET).published_keys)


def _best_pages(service: ReplayService, session_id: str, offsets: list[int], repeat: int) -> dict[str, float]:
    page_seconds: dict[str, float] = {}
    for offset in offsets:
        timings = []
        for _ in range(repeat):
            seconds, page = _timed_page(service, session_id, offset)
            if [frame["sequence_number"] for frame in page["frames"]] != list(range(offset, offset + PAGE_LIMIT)):
                raise SystemExit(f"page at {offset} does not hold sequence numbers {offset}..{offset + 199}")
            timings.append(seconds)
        page_seconds[str(offset)] = round(min(timings), 4)
    return page_seconds


def _unchecked_page_seconds(store: InMemoryChainStore, session_id: str, offset: int, event_count: int) -> float:
    """A page read from the store and framed with no verification and no check: the floor of any open-session page."""
    started = time.perf_counter()
    page = build_page(store.iter_lines(session_id, offset), offset, PAGE_LIMIT, event_count)
    json.dumps({"frames": page.frames}, ensure_ascii=False, separators=(",", ":"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        create_archive_bucket(s3, BUCKET, 1)
        store = InMemoryChainStore()
        events = build_chain(arguments.events - 1)  # plus the seal
        session_id, archive_bytes = _sealed_session(store, s3, events)
        head = store.get_head(session_id)
        if head is None or head.archive is None:
            raise SystemExit("the session was not sealed")

        started = time.perf_counter()
        s3.get_object(Bucket=BUCKET, Key=head.archive.key, VersionId=head.archive.version_id)["Body"].read()
        baseline = time.perf_counter() - started

        service = _service(store, s3)
        first_page_seconds, first = _timed_page(service, session_id, 0)
        if first["verification"]["status"] != "PASS" or len(first["frames"]) != PAGE_LIMIT:
            raise SystemExit(f"unexpected first page: {first['verification']}")
        offsets = sorted({PAGE_LIMIT, arguments.events // 4, arguments.events // 2, arguments.events - PAGE_LIMIT})
        page_seconds = _best_pages(service, session_id, offsets, arguments.repeat)
        uncached_seconds, _ = _timed_page(_service(store, s3), session_id, arguments.events // 2)

        # The same events, unsealed, as an open session in a store of its own.
        open_store = InMemoryChainStore()
        open_events = events[:-1]
        _store_batches(open_store, open_events, [canonicalize(event) for event in open_events])
        open_service = _service(open_store, s3)
        open_first_seconds, _ = _timed_page(open_service, session_id, 0)
        open_offsets = [offset for offset in offsets if offset + PAGE_LIMIT <= len(open_events)]
        open_page_seconds = _best_pages(open_service, session_id, open_offsets, arguments.repeat)
        unchecked = {
            str(offset): round(
                min(
                    _unchecked_page_seconds(open_store, session_id, offset, len(open_events))
                    for _ in range(arguments.repeat)
                ),
                4,
            )
            for offset in open_offsets
        }

    max_page = max(page_seconds.values())
    print(
        json.dumps(
            {
                "benchmark": "replay_page",
                "events": arguments.events,
                "archive_bytes": archive_bytes,
                "page_limit": PAGE_LIMIT,
                "baseline_full_read_seconds": round(baseline, 4),
                "first_page_seconds": round(first_page_seconds, 4),
                "page_seconds": page_seconds,
                "max_page_seconds": max_page,
                "baseline_uncached_page_seconds": round(uncached_seconds, 4),
                "max_page_to_baseline_ratio": round(max_page / baseline, 4) if baseline else None,
                "max_page_to_uncached_ratio": round(max_page / uncached_seconds, 4),
                "open_first_page_seconds": round(open_first_seconds, 4),
                "open_page_seconds": open_page_seconds,
                "baseline_open_page_unchecked_seconds": unchecked,
                "open_check_overhead_ratio": max(
                    round(open_page_seconds[offset] / unchecked[offset], 2) for offset in unchecked
                ),
                "target_page_seconds": TARGET_PAGE_SECONDS,
                "meets_target": max_page <= TARGET_PAGE_SECONDS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
