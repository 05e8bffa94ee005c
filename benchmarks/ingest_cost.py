"""Cost of ingesting events: DynamoDB units, all-in price per million events, handler CPU per event.

Ingests realistic ~1 KB agent events (model messages, tool arguments and results, as an agent framework produces
them) in batches of 50 through the real ingest handler over moto, counts every DynamoDB request with botocore event
hooks (the head's status read, the tip, the event-id index, the batch and the index segment of every append), and
prices them by DynamoDB's sizing rules:

- writes: 1 WRU per started KB of the larger of the item before and after; a failed conditional write still costs;
  a write that adds, changes or removes an item's keys of a secondary index (SealDue, SessionsByStart,
  SessionsByAgent) also writes that index (1 WRU per started KB of the projected keys; a key change is a delete plus
  a put);
- reads: 1 RRU per started 4 KB strongly consistent, half of that eventually consistent; a Query pays for the whole
  items it reads (projections do not reduce the bill), at least one unit even when it finds nothing.

The message and note text is drawn from a varied prose corpus that ships with Python (sentences of the standard
library's docstrings, chosen by a seeded generator from a sorted list), with some non-ASCII messages; the system
prompt is resent with every model request, as agents do, and numbers are written as agents send them (``1.0``).

Two baselines, priced from the same events in the same run: the layout this design replaces (one item per event
holding its canonical line, written with the head in a transaction per batch; transactions bill twice), and the same
batch items storing whole canonical lines instead of the stored line form (``whole_lines_*``).

Lambda duration is modelled as the handler's own compute (measured with the in-memory store), plus the adapter's
compression of the batch (measured), plus a network round trip per DynamoDB request (``DYNAMODB_ROUND_TRIP_MS``, an
assumption for in-region calls); the duration measured against in-process moto is printed beside it.
Prices: us-east-1 list prices (HTTP API, Lambda x86, DynamoDB on-demand).

Prints one JSON object. Run: ``.venv/bin/python benchmarks/ingest_cost.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from infra.template import load_template, table_properties  # noqa: E402
from tests.support.apigw import http_api_event, invoke  # noqa: E402 - the repository root is on the path from here on

BATCH_SIZE = 50
BATCHES = 40
CPU_BATCHES = 200
CPU_REPETITIONS = 7
MEMORY_MB = 512  # template.yaml Globals.Function.MemorySize
DYNAMODB_ROUND_TRIP_MS = 6.0
PRICE_HTTP_API_PER_REQUEST = 1.00 / 1e6
PRICE_LAMBDA_PER_INVOCATION = 0.20 / 1e6
PRICE_LAMBDA_PER_GB_SECOND = 0.0000166667
PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
TARGETS = {"wru_per_event": 0.25, "usd_per_million_events": 0.25, "handler_cpu_us_per_event": 30.0}
# The key attributes of each secondary index of the table (all KEYS_ONLY), as the template declares them.
INDEX_KEYS = tuple(
    tuple(key["AttributeName"] for key in index["KeySchema"])
    for index in table_properties(load_template())["GlobalSecondaryIndexes"]
)
# The batch items' compression (dynamodb_batches), for the baseline that stores whole canonical lines.
WHOLE_LINES_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
HEAD_CHAIN_FIELDS_BYTES = 90  # next_seq and last_hash, which a per-append head would also carry
TABLE_KEYS = ("pk", "sk")

# --------------------------------------------------------------------------------------------- realistic events
_CITIES = ["Lisbon", "Boston", "Berlin", "Tokyo", "Nairobi", "Lima", "Oslo", "Seoul", "Denver", "Porto"]
_SYSTEM = (
    "You are a corporate travel assistant. Follow the travel policy: economy for flights under 6 hours, hotel rates "
    "within the city cap, refundable fares when the trip is less than 7 days away. Use the tools to search, hold and "
    "book. Never book without explicit confirmation from the traveller. Keep answers short and list prices in USD."
)
# Message text is drawn from a varied prose corpus that ships with Python (the standard library's docstrings), so
# compression sees text as varied as real conversations rather than a few templates. Some agents converse in other
# languages: a share of messages gets non-ASCII text. The repeated system prompt stays, as agents resend it.
_CORPUS_MODULES = (
    "argparse",
    "asyncio",
    "base64",
    "collections",
    "concurrent.futures",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "http.client",
    "inspect",
    "ipaddress",
    "itertools",
    "json",
    "logging",
    "mailbox",
    "pathlib",
    "pickle",
    "pprint",
    "random",
    "re",
    "shutil",
    "socket",
    "sqlite3",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "textwrap",
    "threading",
    "typing",
    "unittest",
    "urllib.parse",
    "uuid",
    "zipfile",
)
_NON_ASCII = (
    "Pourriez-vous réserver l'hôtel près de la gare, côté cour ? Le vol de 7 h 40 me convient très bien. ✈️",
    "Ich brauche ein Zimmer für zwei Nächte, Frühstück inklusive, nicht über 180 € pro Nacht.",
    "東京駅の近くのホテルを予約してください。チェックインは午後三時以降です。",
    "¿Puedes cambiar el vuelo a mañana por la tarde? La reunión se movió a las 16:30.",
)


def _corpus_sentences() -> list[str]:
    import importlib
    import inspect
    import re

    sentences: list[str] = []
    for name in _CORPUS_MODULES:
        module = importlib.import_module(name)
        docs = [module.__doc__ or ""]
        docs += [inspect.getdoc(member) or "" for _, member in sorted(vars(module).items()) if callable(member)]
        for doc in docs:
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                if 30 <= len(sentence) <= 300 and not sentence.startswith((">>>", "...")):
                    sentences.append(sentence)
    return sorted(set(sentences))


_SENTENCES = _corpus_sentences()


def _prose(rng: random.Random, sentences: int) -> str:
    if rng.random() < 0.15:
        return rng.choice(_NON_ASCII) + " " + " ".join(rng.choice(_SENTENCES) for _ in range(sentences - 1))
    return " ".join(rng.choice(_SENTENCES) for _ in range(sentences))


def _payload(event_type: str, rng: random.Random) -> dict[str, Any]:
    if event_type == "MODEL_REQUEST":
        return {
            "model": "claude-sonnet-4-5",
            "provider": "anthropic",
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": _prose(rng, 2)},
                {"role": "assistant", "content": _prose(rng, 2)},
                {"role": "user", "content": _prose(rng, 1)},
            ],
            "parameters": {"temperature": 0.2, "max_tokens": 1024, "top_p": 1.0},
        }
    if event_type == "MODEL_RESPONSE":
        return {
            "model": "claude-sonnet-4-5",
            "content": _prose(rng, 4),
            "finish_reason": rng.choice(["end_turn", "tool_use"]),
            "usage": {"input_tokens": rng.randint(800, 4000), "output_tokens": rng.randint(40, 400)},
        }
    if event_type == "TOOL_CALL":
        a, b = rng.sample(_CITIES, 2)
        return {
            "tool_name": rng.choice(["search_flights", "search_hotels", "hold_fare"]),
            "tool_id": f"toolu_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
            "args": {
                "origin": a,
                "destination": b,
                "date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "cabin": "economy",
                "max_price_usd": rng.randint(300, 1500),
                "passengers": [{"type": "adult", "loyalty": f"FF{rng.randint(10**7, 10**8)}"}],
                "note": _prose(rng, 1),
            },
        }
    return {  # TOOL_RESULT
        "tool_name": "search_flights",
        "tool_id": f"toolu_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}",
        "status": "ok",
        "duration_ms": rng.randint(80, 2400),
        "result": {
            "offers": [
                {
                    "flight": f"{rng.choice(['TP', 'LH', 'UA'])}{rng.randint(100, 9999)}",
                    "departs": f"{rng.randint(5, 22):02d}:{rng.randint(0, 59):02d}",
                    "price_usd": rng.randint(180, 1400) + rng.choice([0.0, 0.5, 0.99, 0.995]),
                    "refundable": rng.random() < 0.5,
                    "seats_left": rng.randint(1, 9),
                }
                for _ in range(6)
            ],
            "currency": "USD",
        },
    }


def realistic_batches(session_id: str, rng: random.Random, batches: int) -> list[list[dict[str, Any]]]:
    cycle = ["MODEL_REQUEST", "MODEL_RESPONSE", "TOOL_CALL", "TOOL_RESULT"]
    result = []
    sequence = 0
    for _ in range(batches):
        events = []
        for _ in range(BATCH_SIZE):
            event_type = "SESSION_START" if sequence == 0 else cycle[sequence % 4]
            payload = (
                {"agent_id": "travel-assistant", "environment": "prod", "framework": "langchain", "tags": ["bench"]}
                if sequence == 0
                else _payload(event_type, rng)
            )
            events.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "sequence_number": sequence,
                    "timestamp_wall": f"2026-11-25T18:{sequence // 60 % 60:02d}:{sequence % 60:02d}.{sequence:06d}Z",
                    "timestamp_monotonic": 1_000_000 * sequence,
                    "event_type": event_type,
                    "source_sdk_ver": "agentops-replay-python/0.1.0",
                    "schema_ver": "v0.6",
                    "payload": payload,
                }
            )
            sequence += 1
        result.append(events)
    return result


# --------------------------------------------------------------------------------------------- DynamoDB sizing
def attribute_size(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = len(str(Decimal(inner)).replace("-", "").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in inner.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def index_writes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    def keys(item: dict[str, Any] | None, names: tuple[str, ...]) -> tuple[Any, ...] | None:
        if not item or any(name not in item for name in names):
            return None
        return tuple(str(item[name]) for name in names)

    writes = 0
    for names in INDEX_KEYS:
        old, new = keys(before, names), keys(after, names)
        if old != new:
            writes += (old is not None) + (new is not None)  # KEYS_ONLY projections are far below 1 KB
    return writes


class DynamoDBMeter:
    """Counts requests and prices them; an unmetered client reads item states before and after each write."""

    def __init__(self, metered: Any, raw: Any, table: str) -> None:
        self.raw = raw
        self.table = table
        self.requests: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.index_wru = 0.0
        self._before: dict[str, Any] | None = None
        metered.meta.events.register("provide-client-params.dynamodb.*", self._before_call)
        metered.meta.events.register("after-call.dynamodb.*", self._after_call)
        metered.meta.events.register("after-call-error.dynamodb.*", self._after_error)
        self._pending: dict[str, Any] = {}

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.raw.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return item

    def _key(self, params: dict[str, Any]) -> dict[str, Any]:
        source = params.get("Key") or params["Item"]
        return {name: source[name] for name in TABLE_KEYS}

    @staticmethod
    def _transaction_entries(params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [next(iter(entry.items())) for entry in params["TransactItems"]]

    def _before_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._pending = {"operation": model.name, "params": dict(params)}
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self._pending["before"] = self._get(self._key(params))
        elif model.name == "TransactWriteItems":
            self._pending["before"] = [self._get(self._key(entry)) for _, entry in self._transaction_entries(params)]

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self._account(model.name, self._pending["params"], parsed, failed=False)

    def _after_error(self, model: Any, **_: Any) -> None:
        self._account(model.name, self._pending["params"], {}, failed=True)

    def _account(self, operation: str, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        self.requests[operation + (" (condition failed)" if failed else "")] += 1
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            before = self._pending.get("before")
            after = before if failed else self._get(self._key(params))
            self.wru += write_units(max(item_size(before), item_size(after)))
            if not failed:
                self.index_wru += index_writes(before, after)
        elif operation == "TransactWriteItems":  # every member is billed twice, the condition checks included
            for (_, entry), before in zip(self._transaction_entries(params), self._pending["before"], strict=True):
                after = before if failed else self._get(self._key(entry))
                self.wru += 2 * write_units(max(item_size(before), item_size(after)))
                if not failed:
                    self.index_wru += index_writes(before, after)
        elif operation == "GetItem":
            self.rru += read_units(item_size(parsed.get("Item")), params.get("ConsistentRead", False))
        elif operation == "Query":
            unprojected = {
                name: value
                for name, value in params.items()
                if name not in ("ProjectionExpression", "ExpressionAttributeNames")
            }
            if "IndexName" in params:
                unprojected["ExpressionAttributeNames"] = params.get("ExpressionAttributeNames", {})
            full = self.raw.query(**unprojected).get("Items", []) if not failed else []
            self.rru += read_units(sum(item_size(item) for item in full), params.get("ConsistentRead", False))
        else:
            raise ValueError(f"unmetered DynamoDB operation {operation}")


# --------------------------------------------------------------------------------------------- the run
def _api_event(session_id: str, body: str, caller: str) -> dict[str, Any]:
    return http_api_event("POST", f"/v1/sessions/{session_id}/events", caller=caller, body=body)


def _baseline_wru(lines_per_batch: list[tuple[bytes, ...]], session_id: str) -> float:
    """One item per event (pk, sk, the canonical line) plus the head, in one transaction per batch."""
    head = {
        "pk": {"S": f"S#{session_id}"},
        "sk": {"S": "HEAD"},
        "next_seq": {"N": "1000"},
        "last_hash": {"S": "e" * 64},
    }
    total = 0
    for lines in lines_per_batch:
        units = write_units(item_size(head))
        for sequence, line in enumerate(lines):
            item = {"pk": {"S": f"S#{session_id}"}, "sk": {"S": f"E#{sequence:012d}"}, "event": {"B": line}}
            units += write_units(item_size(item))
        total += 2 * units
    return total


@contextlib.contextmanager
def mocked_aws() -> Iterator[None]:
    """moto's in-process AWS with bench credentials, never a local stack's endpoint, and quiet handler logs."""
    from moto import mock_aws

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        yield


def measure_storage(rng: random.Random) -> dict[str, Any]:
    import boto3
    from agentops_server.aws.dynamodb_batches import decode_lines, encode_lines
    from agentops_server.aws.dynamodb_event_ids import SEGMENT_SIZE

    from infra.resources import create_table
    from tests.support.handlers import load_handler_module

    with mocked_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        table = create_table(raw)
        os.environ.update(
            TABLE_NAME=table, ARCHIVE_BUCKET="bench-archive", SERVICE_ID="agentops-replay", SEAL_IDLE_SECONDS="3600"
        )
        handler = load_handler_module("ingest")
        meter = DynamoDBMeter(handler.wiring.dynamodb, raw, table)
        session_id = str(uuid.uuid4())
        batches = realistic_batches(session_id, rng, BATCHES)
        bodies = [json.dumps({"events": events}) for events in batches]
        started = time.perf_counter()
        for body in bodies:
            response = invoke(
                handler, _api_event(session_id, body, "arn:aws:iam::111122223333:role/agent"), "IngestFunction"
            )
            if response["statusCode"] != 200:
                raise SystemExit(f"ingest failed: {response['body']}")
        moto_ms = (time.perf_counter() - started) * 1000 / len(bodies)
        requests, wru, index_wru, rru = Counter(meter.requests), meter.wru, meter.index_wru, meter.rru
        head_item = raw.get_item(TableName=table, Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "HEAD"}})["Item"]
        segment_item = raw.get_item(TableName=table, Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "I#00000000"}})[
            "Item"
        ]
        stored_batches = [handler.wiring.store.get_batch(session_id, i * BATCH_SIZE).lines for i in range(BATCHES)]
        batch_items = raw.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :batch)",
            ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}, ":batch": {"S": "B#"}},
        )["Items"]

    encode_started = time.process_time()
    for lines in stored_batches:
        encode_lines(lines)
    encode_ms = (time.process_time() - encode_started) * 1000 / len(stored_batches)
    blobs = [item["events"]["B"] for item in batch_items]
    decode_started = time.process_time()
    for blob in blobs:
        decode_lines(blob)
    decode_ms = (time.process_time() - decode_started) * 1000 / len(blobs)
    # The same run's baseline for the stored line form: the same batch items holding the whole canonical lines.
    whole_blobs = [_whole_lines_blob(lines) for lines in stored_batches]
    whole_decode_started = time.process_time()
    for blob in whole_blobs:
        lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=WHOLE_LINES_FILTERS).split(b"\n")
    whole_decode_ms = (time.process_time() - whole_decode_started) * 1000 / len(whole_blobs)
    extra_whole_lines_wru = sum(
        write_units(item_size({**item, "events": {"B": whole}})) - write_units(item_size(item))
        for item, whole in zip(batch_items, whole_blobs, strict=True)
    )
    events = BATCHES * BATCH_SIZE
    line_bytes = sum(len(line) for lines in stored_batches for line in lines)
    return {
        "events": events,
        "request_body_bytes_per_event": round(sum(len(body) for body in bodies) / events, 1),
        "canonical_line_bytes_per_event": round(line_bytes / events, 1),
        "requests": dict(requests),
        "requests_per_batch": round(sum(requests.values()) / BATCHES, 2),
        "wru_per_event": round((wru + index_wru) / events, 4),
        "table_wru_per_event": round(wru / events, 4),
        "index_wru_per_event": round(index_wru / events, 4),
        "rru_per_event": round(rru / events, 4),
        "stored_batch_bytes_per_event": round(sum(len(blob) for blob in blobs) / events, 1),
        "whole_lines_batch_bytes_per_event": round(sum(len(blob) for blob in whole_blobs) / events, 1),
        "whole_lines_layout_wru_per_event": round((wru + index_wru + extra_whole_lines_wru) / events, 4),
        "baseline_wru_per_event": round(_baseline_wru(stored_batches, session_id) / events, 4),
        # The design not taken: fold every batch into the head and move its SealDue key (a delete and a put in the
        # index) on each append, instead of reading the tip and refreshing due_at lazily.
        "per_append_head_and_due_key_alternative_extra_wru_per_event": round(
            (write_units(item_size(head_item) + HEAD_CHAIN_FIELDS_BYTES) + 2) / BATCH_SIZE, 4
        ),
        # The exact event-id check needs the whole index: a cold container reads it all, a warm one only the open
        # segment (full segments never change and are kept).
        "index_read_rru_per_event_at_100k_events_cold_container": round(
            read_units(math.ceil(100_000 / SEGMENT_SIZE) * item_size(segment_item), consistent=True) / BATCH_SIZE, 3
        ),
        "index_read_rru_per_event_warm_container": round(read_units(item_size(segment_item), True) / BATCH_SIZE, 3),
        "handler_ms_per_batch_with_moto": round(moto_ms, 2),
        "adapter_compress_ms_per_batch": round(encode_ms, 3),
        # Reading a batch rebuilds each line's hashes (the sealer, replay and export read batches; an append does not).
        "adapter_decode_ms_per_batch": round(decode_ms, 3),
        "whole_lines_decode_ms_per_batch": round(whole_decode_ms, 3),
    }


def _whole_lines_blob(lines: tuple[bytes, ...]) -> bytes:
    return lzma.compress(b"\n".join(lines), format=lzma.FORMAT_RAW, filters=WHOLE_LINES_FILTERS)


def measure_cpu(rng: random.Random) -> dict[str, Any]:
    """Handler CPU per event with storage replaced by the in-memory store (storage excluded)."""
    from agentops_server.clock import SystemClock
    from agentops_server.ingest import IngestService
    from agentops_server.memory import InMemoryChainStore

    from infra.template import function_definitions
    from tests.support.handlers import load_handler_module

    # The function's own settings from template.yaml (intrinsics such as the table name are not needed here).
    (ingest_function,) = [f for f in function_definitions(load_template()) if f.logical_id == "IngestFunction"]
    os.environ.update({name: value for name, value in ingest_function.environment.items() if isinstance(value, str)})
    os.environ.setdefault("TABLE_NAME", "bench")
    os.environ.setdefault("ARCHIVE_BUCKET", "bench-archive")
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_LOG_LEVEL="ERROR")
    handler = load_handler_module("ingest")
    sessions: list[tuple[str, str]] = []
    for _ in range(CPU_BATCHES // 20):
        session_id = str(uuid.uuid4())
        sessions.extend(
            (session_id, json.dumps({"events": events})) for events in realistic_batches(session_id, rng, 20)
        )
    api_events = [_api_event(session_id, body, "arn:aws:iam::111122223333:role/agent") for session_id, body in sessions]
    cpu_per_event = []
    wall_per_batch = []
    for _ in range(CPU_REPETITIONS):
        # The route reads these module globals: swap the DynamoDB adapter for a fresh in-memory store.
        store = InMemoryChainStore()
        setattr(handler, "store", store)  # noqa: B010
        ingest = IngestService(store, SystemClock(), "agentops-replay", metrics=handler.recorder)
        setattr(handler, "ingest", ingest)  # noqa: B010
        invoke(handler, api_events[0], "IngestFunction")  # warm-up call: cold-start work is not counted
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        for api_event in api_events[1:]:
            response = invoke(handler, api_event, "IngestFunction")
            if response["statusCode"] != 200:
                raise SystemExit(f"ingest failed: {response['body']}")
        cpu_per_event.append((time.process_time() - cpu_started) / ((len(api_events) - 1) * BATCH_SIZE))
        wall_per_batch.append((time.perf_counter() - wall_started) / (len(api_events) - 1))
    bodies = [api_event["body"] for api_event in api_events[1:]]
    floor_per_event = [_parse_and_hash_floor(bodies) for _ in range(CPU_REPETITIONS)]
    handler_cpu = statistics.median(cpu_per_event)
    floor = statistics.median(floor_per_event)
    return {
        # Median of the repetitions (this machine is shared and noisy); the fastest is printed beside it.
        "handler_cpu_us_per_event": round(handler_cpu * 1e6, 2),
        "handler_cpu_us_per_event_fastest_run": round(min(cpu_per_event) * 1e6, 2),
        "handler_cpu_runs": CPU_REPETITIONS,
        "floor_parse_and_hash_us_per_event": round(floor * 1e6, 2),
        "handler_over_floor_ratio": round(handler_cpu / floor, 2),
        "handler_compute_ms_per_batch": round(statistics.median(wall_per_batch) * 1000, 3),
        "verifier_share_of_handler_cpu": _verifier_share(handler, api_events),
    }


def _parse_and_hash_floor(bodies: list[str]) -> float:
    """CPU per event of the least any ingest must do with these bodies, without any checks: read the JSON, write
    each payload back sorted and compact, and hash it and the event (the standard library's C parser and encoder)."""
    started = time.process_time()
    for body in bodies:
        for event in json.loads(body)["events"]:
            payload = json.dumps(event["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            hashlib.sha256(hashlib.sha256(payload.encode()).digest() + event["event_id"].encode()).hexdigest()
    return (time.process_time() - started) / (len(bodies) * BATCH_SIZE)


def _verifier_share(handler: Any, api_events: list[dict[str, Any]]) -> float:
    """Share of the handler's CPU spent in agentops_verify (strict parsing, canonicalization, hashing): a second
    pass over fresh sessions with the library's entry points timed."""
    import agentops_server.ingest as ingest_module
    import agentops_server.validation as validation_module
    import agentops_verify
    from agentops_server.clock import SystemClock
    from agentops_server.ingest import IngestService
    from agentops_server.memory import InMemoryChainStore

    spent = [0.0]
    inside = [0]  # entry points call each other (event_hash_of_members fills a template): time the outermost only

    def timed(function: Any) -> Any:
        def wrapper(*arguments: Any, **keywords: Any) -> Any:
            if inside[0]:
                return function(*arguments, **keywords)
            inside[0] += 1
            started = time.process_time()
            try:
                return function(*arguments, **keywords)
            finally:
                spent[0] += time.process_time() - started
                inside[0] -= 1

        return wrapper

    originals = {
        (agentops_verify.HashableDocument, "canonical_parts"): agentops_verify.HashableDocument.canonical_parts,
        (ingest_module, "canonicalize"): agentops_verify.canonicalize,
        (ingest_module, "event_hash_of_members"): agentops_verify.event_hash_of_members,
        (ingest_module, "sha256_hex"): agentops_verify.sha256_hex,
        (validation_module, "parse_for_hashing"): agentops_verify.parse_for_hashing,
        (agentops_verify.ObjectTemplate, "fill"): agentops_verify.ObjectTemplate.fill,
    }
    store = InMemoryChainStore()
    setattr(handler, "ingest", IngestService(store, SystemClock(), "agentops-replay"))  # noqa: B010
    for (module, name), function in originals.items():
        setattr(module, name, timed(function))
    try:
        started = time.process_time()
        for api_event in api_events:
            response = invoke(handler, api_event, "IngestFunction")
            if response["statusCode"] != 200:
                raise SystemExit(f"ingest failed while timing the verifier: {response['body']}")
        total = time.process_time() - started
    finally:
        for (module, name), function in originals.items():
            setattr(module, name, function)
    return round(spent[0] / total, 3)


def price(storage: dict[str, Any], cpu: dict[str, Any]) -> dict[str, Any]:
    per_batch_requests = storage["requests_per_batch"]
    duration_ms = math.ceil(
        cpu["handler_compute_ms_per_batch"]
        + storage["adapter_compress_ms_per_batch"]
        + per_batch_requests * DYNAMODB_ROUND_TRIP_MS
    )
    lambda_per_batch = (
        PRICE_LAMBDA_PER_INVOCATION + PRICE_LAMBDA_PER_GB_SECOND * (MEMORY_MB / 1024) * duration_ms / 1000
    )
    per_event = {
        "http_api": PRICE_HTTP_API_PER_REQUEST / BATCH_SIZE,
        "lambda": lambda_per_batch / BATCH_SIZE,
        "dynamodb_writes": storage["wru_per_event"] * PRICE_WRU,
        "dynamodb_reads": storage["rru_per_event"] * PRICE_RRU,
    }
    baseline_dynamodb = storage["baseline_wru_per_event"] * PRICE_WRU
    whole_lines_extra = (storage["whole_lines_layout_wru_per_event"] - storage["wru_per_event"]) * PRICE_WRU
    return {
        "modelled_lambda_ms_per_batch": duration_ms,
        "usd_per_million_events": round(sum(per_event.values()) * 1e6, 4),
        "usd_per_million_events_by_part": {name: round(value * 1e6, 4) for name, value in per_event.items()},
        "baseline_usd_per_million_events_dynamodb_writes_only": round(baseline_dynamodb * 1e6, 4),
        "whole_lines_layout_usd_per_million_events": round((sum(per_event.values()) + whole_lines_extra) * 1e6, 4),
    }


def main() -> None:
    # CPU first, in a process holding only what a Lambda container holds (the storage run fills it with moto state).
    # The handler writes its metrics to stdout (EMF lines, as on Lambda): they go to a sink, so this prints one object.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        cpu = measure_cpu(random.Random(7))
        storage = measure_storage(random.Random(20261125))
    cost = price(storage, cpu)
    figures = {**storage, **cpu, **cost}
    figures["baseline_over_this_wru_ratio"] = round(storage["baseline_wru_per_event"] / storage["wru_per_event"], 2)
    figures["targets"] = TARGETS
    figures["meets_targets"] = {name: figures[name] <= limit for name, limit in TARGETS.items()}
    figures["batch_size"] = BATCH_SIZE
    figures["memory_mb"] = MEMORY_MB
    figures["assumed_dynamodb_round_trip_ms"] = DYNAMODB_ROUND_TRIP_MS
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
