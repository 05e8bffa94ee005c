"""Ingest Lambda: POST /v1/sessions/{id}/events, GET /v1/sessions/{id}, GET /v1/health (API.md).

Thin: clients and the core are built once per container from the environment; routes check the request envelope
(caller identity first, then media type, then size) and hand the body to the core; errors become responses in
``agentops_server.http``.

The session view shows the class of a sealed session's archived bytes (``agentops_server.sessions``), verified under
the published key objects, so this function reads archives and keys too: IAM ``s3:GetObject`` and
``s3:GetObjectVersion`` on ``sessions/*``, ``s3:GetObject`` on ``keys/*``, ``s3:ListBucket`` for ``keys/``; the
verification of an archive version is cached in this process.
"""

from __future__ import annotations

import gc
from typing import Any

import boto3
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.clock import SystemClock
from agentops_server.config import Settings
from agentops_server.http import (
    caller_identity,
    install_error_handlers,
    json_response,
    request_body,
    require_json_content_type,
)
from agentops_server.ingest import IngestService, SessionLimits
from agentops_server.replay import VerifiedArchives
from agentops_server.sessions import session_view
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

settings = Settings.from_env()
logger = Logger()
tracer = Tracer()  # inactive outside Lambda, and inside it unless the function enables X-Ray tracing
# Fail fast and let the client retry (a 5xx is safe to retry): short timeouts, few attempts.
dynamodb = boto3.client(
    "dynamodb",
    config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
)
store = DynamoDBChainStore(dynamodb, settings.table_name, settings.seal_idle_seconds)
ingest = IngestService(
    store, SystemClock(), settings.service_id, SessionLimits(settings.max_session_events, settings.max_session_bytes)
)
s3 = boto3.client("s3")
archives = VerifiedArchives(S3ArchiveReader(s3))
# The keys trusted when classifying an archive: the published key objects in the locked bucket (ELS section 8 rev 2),
# never a record in the table.
trusted_keys = S3Archive(s3, settings.archive_bucket or "").published_keys

app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


def append_events(session_id: str) -> Response[str]:
    event = app.current_event.raw_event
    caller = caller_identity(event)
    require_json_content_type(app.current_event.headers)
    return json_response(200, ingest.append(session_id, caller, request_body(event)))


def get_session(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, session_view(store, session_id, archives=archives, trusted_keys=trusted_keys))


def health() -> Response[str]:
    return json_response(200, {"status": "ok"})


app.post("/v1/sessions/<session_id>/events")(append_events)
app.get("/v1/sessions/<session_id>")(get_session)
app.get("/v1/health")(health)

# Everything built above lives as long as the container. Moving it out of the collector's reach keeps each full
# collection from walking the SDK and pydantic objects again (a few microseconds per event in
# benchmarks/ingest_cost.py). Once per process: a second freeze would also pin whatever is alive by then.
if gc.get_freeze_count() == 0:
    gc.freeze()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # answers list every event: too big for X-Ray metadata
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
