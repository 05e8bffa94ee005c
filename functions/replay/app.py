"""ReplayFunction: ``GET /v1/sessions/{session_id}/replay?from_sequence=&limit=`` (API.md).

The session is verified first by the verifier library, then served as frames (``agentops_server.replay``), under the
published key objects of the Object Lock bucket (ELS section 8, rev 2), never a record in the table. The verification
of an archive version is cached in this process, so paging a long sealed session verifies it once; every page is
served from bytes that hash to what was verified.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem`` and ``dynamodb:Query`` on session items
(head, batches); ``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*``; ``s3:GetObject`` on ``keys/*`` and
``s3:ListBucket`` for ``keys/``. Nothing else.
"""

from __future__ import annotations

from typing import Any

from agentops_server.aws.wiring import wiring_for
from agentops_server.http import caller_identity, install_error_handlers, json_response
from agentops_server.metrics import REPLAY_PAGES_SERVED
from agentops_server.replay import ReplayService
from agentops_server.request_parameters import page_parameters
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
wiring = wiring_for("replay")
recorder = wiring.metrics
replay_service = ReplayService(wiring.store, wiring.verified_archives, wiring.trusted_keys)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.get("/v1/sessions/<session_id>/replay")
def get_replay(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    from_sequence, limit = page_parameters(app.current_event.query_string_parameters)
    page = replay_service.replay(session_id, from_sequence, limit)
    recorder.record(REPLAY_PAGES_SERVED, 1)
    return json_response(200, page)


@logger.inject_lambda_context
@recorder.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = app.resolve(event, context)
    return response
