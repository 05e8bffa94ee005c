"""The table's TTL attribute ``expires_at`` deletes items: only the sealer writes it, only on the items of an archived
session other than its head, and ingest decides an append to a sealed session on the head alone.

Before: TTL was enabled on ``expires_at`` and no code wrote it, so any ``UpdateItem`` setting it on a head or a key
record was a delete path; and the only thing that told ingest a session was sealed was its seal batch, an item that
may expire like any other (TTL deletes in no particular order), after which the session took appends again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from agentops_server.store import STATUS_SEALED

from tests.functional.ingest.events import event
from tests.hardening.insider.conftest import Deployment

AGENT = "arn:aws:iam::111122223333:user/agent"


def sealed_idle_session(deployment: Deployment) -> str:
    """Three events and no SESSION_END, sealed incomplete once idle (the sealer's clock is wall time)."""
    session_id = "5b0c2f1e-8d3a-4c6b-9e7f-0a1b2c3d4e5f"
    status, _ = deployment.post_events(session_id, [event(0), event(1), event(2)], AGENT)
    assert status == 200
    deployment.dynamodb.update_item(  # the agent went quiet long ago
        TableName=deployment.table_name,
        Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "HEAD"}},
        UpdateExpression="SET due_at = :past, last_activity_at = :past",
        ExpressionAttributeValues={":past": {"S": "2000-01-01T00:00:00.000000Z"}},
    )
    for sk in [item["sk"]["S"] for item in deployment.items() if item["sk"]["S"].startswith("B#")]:
        deployment.dynamodb.update_item(
            TableName=deployment.table_name,
            Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": sk}},
            UpdateExpression="SET accepted_at = :past",
            ExpressionAttributeValues={":past": {"S": "2000-01-01T00:00:00.000000Z"}},
        )
    sealed, _ = deployment.run_sealer()
    assert sealed == [session_id]
    return session_id


def test_only_the_sealer_writes_an_expiry_and_never_on_a_head(deployment: Deployment) -> None:
    session_id = "5b0c2f1e-8d3a-4c6b-9e7f-0a1b2c3d4e5f"
    assert deployment.post_events(session_id, [event(0), event(1, "SESSION_END")], AGENT)[0] == 200
    assert not [item for item in deployment.items() if "expires_at" in item]  # ingest never writes it
    before_seal = datetime.now(UTC)

    assert deployment.run_sealer()[0] == [session_id]

    head = deployment.store.get_head(session_id)
    assert head is not None
    assert head.status == STATUS_SEALED
    items = deployment.items()
    heads = [item for item in items if item["sk"]["S"] == "HEAD"]
    assert heads
    assert all("expires_at" not in item for item in heads)
    # The session's place in the evidence log stays, like the head: its log proof is served from it.
    (log_place,) = [item for item in items if item["pk"]["S"] == f"S#{session_id}" and item["sk"]["S"] == "LOG"]
    assert "expires_at" not in log_place
    session_items = [item for item in items if item["pk"]["S"] == f"S#{session_id}" and item["sk"]["S"][:2] != "HE"]
    session_items = [item for item in session_items if item["sk"]["S"] != "LOG"]
    assert {item["sk"]["S"][:2] for item in session_items} == {"B#", "I#"}
    retention = timedelta(days=30)
    for item in session_items:
        expires = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)
        assert before_seal + retention - timedelta(minutes=5) <= expires <= datetime.now(UTC) + retention
    assert not [item for item in items if not item["pk"]["S"].startswith("S#") and "expires_at" in item]


@pytest.mark.parametrize("expired", ["the_seal_batch", "every_batch"])
def test_append_to_a_sealed_head_whose_batches_expired_is_refused_and_writes_nothing(
    deployment: Deployment, expired: str
) -> None:
    session_id = sealed_idle_session(deployment)
    batches = sorted(item["sk"]["S"] for item in deployment.items() if item["sk"]["S"].startswith("B#"))
    for sk in batches[-1:] if expired == "the_seal_batch" else batches:
        deployment.dynamodb.delete_item(  # what the TTL sweeper does, in whatever order it likes
            TableName=deployment.table_name, Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": sk}}
        )
    before = deployment.items()

    for attempt in ([event(3)], [event(0), event(1)]):
        status, body = deployment.post_events(session_id, attempt, AGENT)
        assert (status, body["error"]["code"]) == (409, "SESSION_SEALED")
        assert body["error"]["details"]["head"] == {
            "next_sequence_number": 4,
            "last_event_hash": body["error"]["details"]["head"]["last_event_hash"],
            "status": "SEALED",
        }
    assert deployment.items() == before


def test_a_head_forged_as_sealed_does_not_make_the_sealer_expire_the_chain(deployment: Deployment) -> None:
    """The sealer gives table copies an expiry only when the session's archive is there as the head records it."""
    session_id = "6c1d3f2e-9e4b-4d7c-8f80-1b2c3d4e5f60"
    assert deployment.post_events(session_id, [event(0), event(1)], AGENT)[0] == 200
    deployment.dynamodb.update_item(  # with the ingest role's rights: a session item, no expires_at
        TableName=deployment.table_name,
        Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "HEAD"}},
        UpdateExpression="SET #status = :sealed, #archive = :archive, due_at = :past",
        ExpressionAttributeNames={"#status": "status", "#archive": "archive"},
        ExpressionAttributeValues={
            ":sealed": {"S": "SEALED"},
            ":archive": {
                "M": {
                    "bucket": {"S": "insider-archive"},
                    "key": {"S": f"sessions/{session_id}.jsonl"},
                    "version_id": {"S": "forged"},
                    "sha256": {"S": "0" * 64},
                }
            },
            ":past": {"S": "2000-01-01T00:00:00.000000Z"},
        },
    )

    sealed, records = deployment.run_sealer()

    assert sealed == []
    assert [record["session_id"] for record in records if record.get("alarm") == "SEAL_FORGERY"] == [session_id]
    assert not [item for item in deployment.items() if "expires_at" in item]
