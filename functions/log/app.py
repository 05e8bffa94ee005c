"""LogFunction: the evidence log's routes (LOG.md section 5, API.md "Evidence log").

- ``GET /v1/log/checkpoint``: 200 ``text/plain``, the latest signed checkpoint (404 NOT_FOUND before the first).
- ``GET /v1/log/consistency?from=M&to=N``: 200 ``{"from", "to", "proof"}``; 400 VALIDATION_ERROR unless
  ``0 < M <= N <= size``.
- ``GET /v1/sessions/{session_id}/log-proof``: 200 ``{"checkpoint", "leaf_index", "leaf", "inclusion_proof"}``;
  404 SESSION_NOT_FOUND; 409 NOT_SEALED; 409 LOG_PENDING with ``Retry-After`` (``agentops_server.http``) while
  sealed but not yet published.

Everything served comes from the tiles and checkpoint in the bucket (``LogReader``); the table only says which leaf
is a session's. Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem`` and ``dynamodb:Query``;
``s3:GetObject`` on ``log/*``; ``s3:ListBucket`` (a missing tile answers 404, not 403). Nothing is written.
"""

from __future__ import annotations

from typing import Any

from agentops_server.aws.wiring import wiring_for
from agentops_server.http import caller_identity, install_error_handlers, json_response
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

CHECKPOINT_CONTENT_TYPE = "text/plain; charset=utf-8"

logger = Logger()
# The core's ``alarm`` records (a leaf that does not name its session, a missing tile) reach CloudWatch as JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"agentops_server"})
reader = wiring_for("log").log_reader
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.get("/v1/log/checkpoint")
def get_checkpoint() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return Response(status_code=200, content_type=CHECKPOINT_CONTENT_TYPE, body=reader.checkpoint_note().decode())


@app.get("/v1/log/consistency")
def get_consistency() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, reader.consistency(app.current_event.query_string_parameters or {}))


@app.get("/v1/sessions/<session_id>/log-proof")
def get_log_proof(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, reader.log_proof(session_id).to_dict())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
