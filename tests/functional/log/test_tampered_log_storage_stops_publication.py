"""Attacks on the evidence log's storage (LOG.md section 4: the table is not trusted for the log either).

Whoever can write the table, or put a new version of an object under ``log/``, tries to make the sealer fork the log,
rewrite a published leaf or sign over a tile it edited. Each attempt must stop publication with the LOG_INTEGRITY
alarm, sign nothing, add no checkpoint, and leave the sessions it held up marked for a later publication.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.evidence_log import ALARM_LOG_INTEGRITY, MAX_LEAVES_PER_PUBLICATION, LogState
from agentops_verify import (
    Checkpoint,
    TileBuilder,
    encode_entry_bundle,
    leaf_hash,
    sign_checkpoint,
    split_entry_bundle,
)

from infra.resources import create_table
from tests.functional.conftest import BUCKET, REGION
from tests.functional.log.conftest import ORIGIN, LogWorld
from tests.support.evidence_log import low_s_signer, public_key
from tests.support.keys import TestSigner

Attack = Callable[[LogWorld], None]


def write_state(world: LogWorld, forged: LogState | None) -> None:
    """Replace the state item, as someone with write access to the table can (the condition is no obstacle: the
    attacker reads the item first)."""
    current = world.log_state.log_state()
    if forged is None:
        world.log_state.__dict__["_state"] = None  # the item deleted
        return
    world.log_state.advance_log(current, forged, [])


def current_state(world: LogWorld) -> LogState:
    state = world.log_state.log_state()
    assert state is not None
    return state


def rolled_back_state(world: LogWorld) -> None:
    """Back to the log of its first leaf: the next leaves would be appended at 1 and fork the published log."""
    first = current_state(world).batch[0]
    builder = TileBuilder()
    leaf = world.object("log/tile/entries/000.p/2")
    builder.append(leaf[2 : 2 + int.from_bytes(leaf[:2], "big")])
    write_state(world, LogState(1, builder.root(), 0, (first,)))


def other_root_at_the_published_size(world: LogWorld) -> None:
    state = current_state(world)
    write_state(world, LogState(state.size, hashlib.sha256(b"forged").digest(), state.batch_start, state.batch))


def unpublished_leaves_with_a_forged_root(world: LogWorld) -> None:
    state = current_state(world)
    (pending,) = [entry.session_id for entry in world.log_state.pending_for_log(10)]
    write_state(world, LogState(state.size + 1, hashlib.sha256(b"forged").digest(), state.size, (pending,)))


def unpublished_leaf_of_a_session_never_sealed(world: LogWorld) -> None:
    state = current_state(world)
    invented = "0c1d2e3f-0000-4000-8000-000000000000"
    write_state(world, LogState(state.size + 1, hashlib.sha256(b"any").digest(), state.size, (invented,)))


def deleted_state(world: LogWorld) -> None:
    write_state(world, None)


def edited_partial_tile(world: LogWorld) -> None:
    """A new version of the level-0 tile (Object Lock keeps the old one, but a reader gets the latest)."""
    data = bytearray(world.object("log/tile/0/000.p/2"))
    data[0] ^= 1
    world.s3.put_object(Bucket=BUCKET, Key="log/tile/0/000.p/2", Body=bytes(data), ChecksumAlgorithm="SHA256")


def edited_entry_bundle(world: LogWorld) -> None:
    data = world.object("log/tile/entries/000.p/2").replace(b'"event_count":', b'"event_count":1', 1)
    world.s3.put_object(Bucket=BUCKET, Key="log/tile/entries/000.p/2", Body=data, ChecksumAlgorithm="SHA256")


def leaf_rewritten_with_its_tile(world: LogWorld) -> None:
    """A leaf replaced and the level-0 tile recomputed to match: only the checkpoint's root gives it away."""
    entries = split_entry_bundle(world.object("log/tile/entries/000.p/2"))
    entries[0] = entries[0].replace(b'"event_count":', b'"event_count":1', 1)
    tile = b"".join(leaf_hash(entry) for entry in entries)
    for key, body in (("log/tile/entries/000.p/2", encode_entry_bundle(entries)), ("log/tile/0/000.p/2", tile)):
        world.s3.put_object(Bucket=BUCKET, Key=key, Body=body, ChecksumAlgorithm="SHA256")


def checkpoint_signed_by_another_key(world: LogWorld) -> None:
    forger = TestSigner()
    note = sign_checkpoint(
        Checkpoint(ORIGIN, 2, hashlib.sha256(b"forged").digest()), key=public_key(forger), sign=low_s_signer(forger)
    )
    world.s3.put_object(Bucket=BUCKET, Key="log/checkpoint", Body=note, ChecksumAlgorithm="SHA256")


def checkpoint_hidden_by_a_delete_marker(world: LogWorld) -> None:
    world.s3.delete_object(Bucket=BUCKET, Key="log/checkpoint")


ATTACKS: dict[str, Attack] = {
    "rolled_back_state": rolled_back_state,
    "other_root_at_the_published_size": other_root_at_the_published_size,
    "unpublished_leaves_with_a_forged_root": unpublished_leaves_with_a_forged_root,
    "unpublished_leaf_of_a_session_never_sealed": unpublished_leaf_of_a_session_never_sealed,
    "deleted_state": deleted_state,
    "edited_partial_tile": edited_partial_tile,
    "edited_entry_bundle": edited_entry_bundle,
    "leaf_rewritten_with_its_tile": leaf_rewritten_with_its_tile,
    "checkpoint_signed_by_another_key": checkpoint_signed_by_another_key,
    "checkpoint_hidden_by_a_delete_marker": checkpoint_hidden_by_a_delete_marker,
}


def integrity_alarms(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "alarm", None) == ALARM_LOG_INTEGRITY]


def log_objects(world: LogWorld) -> list[tuple[str, str]]:
    return sorted((version["Key"], version["VersionId"]) for version in world.versions("log/"))


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_tampered_log_storage_stops_publication_with_an_alarm_and_nothing_signed(
    world: LogWorld, caplog: pytest.LogCaptureFixture, attack: Attack
) -> None:
    world.ingest(2)
    world.run()
    (waiting,) = world.ingest(1)
    if attack is unpublished_leaves_with_a_forged_root:
        world.log_state.enqueue_for_log(waiting, "2026-01-01T13:00:00.000000Z")
    attack(world)
    signatures = world.signer.checkpoint_signatures
    objects = log_objects(world)
    caplog.set_level(logging.INFO, logger="agentops_server")

    sealed = world.run()

    assert sealed == [waiting]  # sealing itself goes on; only the log stops
    (alarm,) = integrity_alarms(caplog)
    assert alarm.levelno == logging.ERROR
    assert world.signer.checkpoint_signatures == signatures
    assert log_objects(world) == objects
    assert world.log_state.leaf_index(waiting) is None
    assert [entry.session_id for entry in world.log_state.pending_for_log(10)] == [waiting]


def test_a_foreign_object_at_the_next_tile_path_is_never_overwritten_and_nothing_is_signed(
    world: LogWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.ingest(2)
    world.run()
    world.ingest(1)
    world.s3.put_object(Bucket=BUCKET, Key="log/tile/0/000.p/3", Body=b"\x00" * 96, ChecksumAlgorithm="SHA256")
    signatures = world.signer.checkpoint_signatures
    caplog.set_level(logging.INFO, logger="agentops_server")

    world.run()

    (alarm,) = integrity_alarms(caplog)
    assert "other bytes" in alarm.detail  # type: ignore[attr-defined]
    assert world.signer.checkpoint_signatures == signatures
    assert world.object("log/tile/0/000.p/3") == b"\x00" * 96
    assert world.checkpoint().size == 2


def test_without_tampering_the_same_runs_raise_no_alarm(world: LogWorld, caplog: pytest.LogCaptureFixture) -> None:
    """The attacks above are what trips the alarm, not the runs themselves."""
    caplog.set_level(logging.INFO, logger="agentops_server")
    world.ingest(2)
    world.run()
    world.ingest(1)
    world.run()
    assert integrity_alarms(caplog) == []
    assert world.checkpoint().size == 3


def test_an_attack_leaves_the_log_publishable_once_the_state_is_restored(world: LogWorld) -> None:
    world.ingest(2)
    world.run()
    honest: Any = world.log_state.log_state()
    world.ingest(1)
    other_root_at_the_published_size(world)
    world.run()
    assert world.checkpoint().size == 2

    write_state(world, honest)
    world.run()

    assert world.checkpoint().size == 3


def test_a_marker_written_for_a_session_never_archived_stays_pending_with_an_alarm_and_signs_nothing(
    world: LogWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.ingest(1)
    world.run()
    invented = "0c1d2e3f-0000-4000-8000-000000000000"
    world.log_state.enqueue_for_log(invented, "2026-01-01T00:00:00.000000Z")  # written into the table by someone
    caplog.set_level(logging.INFO, logger="agentops_server")
    world.ingest(1)

    world.run()
    signatures = world.signer.checkpoint_signatures
    world.run()  # nothing else pending: the forged marker alone gets no checkpoint signed

    assert world.checkpoint().size == 2
    assert world.signer.checkpoint_signatures == signatures
    alarms = integrity_alarms(caplog)
    assert [alarm.session_id for alarm in alarms] == [invented, invented]  # type: ignore[attr-defined]
    assert [entry.session_id for entry in world.log_state.pending_for_log(10)] == [invented]


def test_forged_markers_filling_a_publication_cannot_keep_sealed_sessions_out_of_the_log(
    world: LogWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A publication takes at most ``MAX_LEAVES_PER_PUBLICATION`` marked sessions, oldest first. Markers written by
    someone with table access for sessions that were never archived, all older than any real one, used to take every
    place of every publication, so no session sealed after them was ever logged. Each is now moved behind the
    others once it is found to have no archive, and stays pending with its alarm."""
    world.ingest(1)
    world.run()
    invented = [f"0c1d2e3f-0000-4000-8000-{number:012d}" for number in range(MAX_LEAVES_PER_PUBLICATION)]
    for session_id in invented:
        world.log_state.enqueue_for_log(session_id, "2026-01-01T00:00:00.000000Z")
    (sealed_after,) = world.ingest(1)
    caplog.set_level(logging.INFO, logger="agentops_server")

    world.run()
    world.run()

    assert world.log_state.leaf_index(sealed_after) == 1
    assert world.checkpoint().size == 2
    assert sorted(entry.session_id for entry in world.log_state.pending_for_log(1000)) == invented
    assert set(invented) <= {alarm.session_id for alarm in integrity_alarms(caplog)}  # type: ignore[attr-defined]


def test_forged_markers_on_logged_sessions_cannot_keep_sealed_sessions_out_of_the_log(world: LogWorld) -> None:
    """A logged session's own marker item, given its index keys again by someone with table access, is taken, rebuilt
    from its archive and refused by the conditional write as logged already. A run reads the log state at most three
    times, so enough such markers, older than any real one, made every run give up before it reached a session
    sealed after them. A marker found to be of a logged session is now moved behind the others."""
    client = boto3.client("dynamodb", region_name=REGION)
    table = create_table(client)
    state = DynamoDBLogState(client, table)
    world.log_state = state  # type: ignore[assignment]
    logged = world.ingest(3)
    world.run()
    assert sorted(state.leaf_index(session_id) or 0 for session_id in logged) == [0, 1, 2]
    for session_id in logged:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "LOG"}},
            UpdateExpression="SET log_queue = :pending, log_queued_at = :early",
            ExpressionAttributeValues={":pending": {"S": "PENDING"}, ":early": {"S": "2026-01-01T00:00:00.000000Z"}},
        )
    (sealed_after,) = world.ingest(1)

    for _ in range(2):
        world.run(world.sealer(world.publisher(max_leaves=1)))

    assert state.leaf_index(sealed_after) == 3
    assert world.checkpoint().size == 4
