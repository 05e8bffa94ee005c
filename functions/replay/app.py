"""ReplayFunction: ``GET /v1/sessions/{session_id}/replay?from_sequence=&limit=`` (API.md).

The session is verified first by the verifier library, then served as frames (``agentops_server.replay``). The
verification of an archive version is cached in this process, so paging a long sealed session verifies it once; every
page is served from bytes that hash to what was verified.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem`` and ``dynamodb:Query`` on the table (head,
batches, key records); ``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*``. Nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.config import Settings
from agentops_server.errors import ApiError
from agentops_server.frames import DEFAULT_LIMIT, MAX_LIMIT
from agentops_server.http import caller_identity, install_error_handlers, json_response
from agentops_server.replay import ReplayService, VerifiedArchives
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
settings = Settings.from_env()
store = DynamoDBChainStore(boto3.client("dynamodb"), settings.table_name, seal_idle_seconds=settings.seal_idle_seconds)
# The keys trusted when verifying: the sealer's key records in the table, until the published key set (KMS and the
# locked bucket, ELS section 8 rev 2) takes their place here.
trusted_keys = store.signing_keys
replay_service = ReplayService(store, VerifiedArchives(S3ArchiveReader(boto3.client("s3"))), trusted_keys)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.get("/v1/sessions/<session_id>/replay")
def get_replay(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    query = app.current_event.query_string_parameters or {}
    from_sequence, limit = _page_parameters(query)
    return json_response(200, replay_service.replay(session_id, from_sequence, limit))


def _page_parameters(query: Mapping[str, str]) -> tuple[int, int]:
    errors: list[dict[str, str]] = []
    from_sequence = _integer(query, "from_sequence", default=0, low=0, high=None, errors=errors)
    limit = _integer(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT, errors=errors)
    if errors:
        raise ApiError("VALIDATION_ERROR", "The paging parameters are not valid.", {"errors": errors})
    return from_sequence, limit


def _integer(
    query: Mapping[str, str], name: str, *, default: int, low: int, high: int | None, errors: list[dict[str, str]]
) -> int:
    text = query.get(name)
    if text is None:
        return default
    # Plain decimal digits only: no sign, spaces, underscores or exponents that int() would quietly accept.
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        errors.append({"field": name, "problem": "must be a decimal integer"})
        return default
    value = int(text)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        errors.append({"field": name, "problem": f"must be {bounds}"})
    return value


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = app.resolve(event, context)
    return response
