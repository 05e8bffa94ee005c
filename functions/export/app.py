"""ExportFunction: ``POST /v1/sessions/{session_id}/exports`` (API.md; ELS section 9).

Body ``{"format": "json" | "pdf" | "html", "withhold_payloads": false | true | [sequence numbers]}``. Streams the
export document (``agentops_server.export``) under ``exports/`` in the Object Lock bucket; for ``pdf`` and ``html``
(the self-verifying replay viewer) reads it back and writes its rendering beside it. Answers 201 with a presigned
GET of the requested file.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem`` and ``dynamodb:Query`` on the table;
``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*`` (the archived chain) and on ``exports/*`` (reading a
document back to render it; the presigned link is signed with this role); ``s3:PutObject`` on ``exports/*`` only
(single puts and multipart parts). No delete, no retention or legal-hold changes: the bucket's default COMPLIANCE
retention locks every export.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import boto3
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.aws.s3_export_store import S3ExportStore
from agentops_server.clock import SystemClock
from agentops_server.config import Settings
from agentops_server.errors import ApiError
from agentops_server.evidence_log import LogReader
from agentops_server.export import ExportService, Withholding
from agentops_server.http import caller_identity, install_error_handlers, json_response, request_body
from agentops_verify import MalformedJSONError, loads
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

MAX_WITHHELD_SEQUENCE_NUMBERS = 100_000


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["json", "pdf", "html"]
    withhold_payloads: (
        StrictBool | Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(max_length=MAX_WITHHELD_SEQUENCE_NUMBERS)]
    ) = False


logger = Logger()
settings = Settings.from_env()
dynamodb = boto3.client("dynamodb")
store = DynamoDBChainStore(dynamodb, settings.table_name, seal_idle_seconds=settings.seal_idle_seconds)
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
log_reader = LogReader(
    S3LogObjects(s3, settings.archive_bucket or ""), DynamoDBLogState(dynamodb, settings.table_name), store
)
export_service = ExportService(
    store=store,
    archive_reader=S3ArchiveReader(s3),
    exports=S3ExportStore(s3, settings.archive_bucket or ""),
    clock=SystemClock(),
    # The keys trusted and published in exports: the sealer's key records in the table, until the published key set
    # (KMS and the locked bucket, ELS section 8 rev 2) takes their place here.
    trusted_keys=store.signing_keys,
    log_proofs=log_reader.log_proof_for,
)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.post("/v1/sessions/<session_id>/exports")
def create_export(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    request = _parse_request(request_body(app.current_event.raw_event))
    withholding = Withholding.from_request(request.withhold_payloads)
    return json_response(201, export_service.export(session_id, request.format, withholding))


def _parse_request(body: bytes) -> ExportRequest:
    try:
        return ExportRequest.model_validate(loads(body))
    except MalformedJSONError as error:
        raise ApiError(
            "VALIDATION_ERROR", "The body is not valid JSON.", {"errors": [{"field": "", "problem": str(error)}]}
        ) from None
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]} for item in error.errors()
        ]
        raise ApiError("VALIDATION_ERROR", "The export request is not valid.", {"errors": problems}) from None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = app.resolve(event, context)
    return response
