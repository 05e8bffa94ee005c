"""ExportFunction: ``POST /v1/sessions/{session_id}/exports`` (API.md; ELS section 9).

Body ``{"format": "json" | "pdf" | "html", "withhold_payloads": false | true | [sequence numbers]}``
(``agentops_server.request_parameters``). Streams the export document (``agentops_server.export``) under
``exports/`` in the Object Lock bucket; for ``pdf`` and ``html`` reads it back and writes its rendering beside it.
Answers 201 with a presigned GET of the requested file. The keys trusted and published in an export are the
published key objects (ELS section 8, rev 2), never a record in the table.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem`` and ``dynamodb:Query`` on session items and
the evidence log's state; ``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*`` and ``exports/*``;
``s3:GetObject`` on ``keys/*`` and ``log/*``; ``s3:ListBucket``; ``s3:PutObject`` on ``exports/*`` only. No delete,
no retention or legal-hold changes: the bucket's default COMPLIANCE retention locks every export.
"""

from __future__ import annotations

from typing import Any

from agentops_server.aws.wiring import wiring_for
from agentops_server.clock import SystemClock
from agentops_server.export import ExportService, Withholding
from agentops_server.http import caller_identity, install_error_handlers, json_response, request_body
from agentops_server.request_parameters import export_request
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
wiring = wiring_for("export")
export_service = ExportService(
    store=wiring.store,
    archive_reader=wiring.archive_reader,
    exports=wiring.export_store,
    clock=SystemClock(),
    trusted_keys=wiring.trusted_keys,
    log_proofs=wiring.log_reader.log_proof_for,
)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.post("/v1/sessions/<session_id>/exports")
def create_export(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    request = export_request(request_body(app.current_event.raw_event))
    withholding = Withholding.from_request(request.withhold_payloads)
    return json_response(201, export_service.export(session_id, request.format, withholding))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = app.resolve(event, context)
    return response
