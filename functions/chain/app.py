"""ChainFunction: ``GET /v1/sessions/{session_id}/chain``, ``GET /v1/keys`` and ``GET /v1/sessions`` (API.md).

The chain route answers with a presigned GET of the exact archived version (ELS section 8), never the chain itself:
a sealed session can be far larger than a Lambda response. Keys are the published key set (ELS section 8, rev 2):
the write-once objects ``keys/<signer_key_id>.pem`` the sealer creates from KMS ``GetPublicKey`` before a key signs,
each checked to hold the key it is named after. Nothing in the table can add a key. The session listing reads the
table's listing indexes (``agentops_server.session_list``); it is served here, by the read-only function of auditors.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem``, ``dynamodb:Query`` and
``dynamodb:BatchGetItem`` on session items (heads, tips), ``dynamodb:Query`` on the two listing indexes;
``s3:GetObject`` and ``s3:GetObjectVersion`` on ``sessions/*`` (the presigned link is signed with this role's
credentials, so it must be able to read what it links to); ``s3:ListBucket`` for ``keys/`` and ``s3:GetObject`` on
``keys/*``. No KMS access.
"""

from __future__ import annotations

from typing import Any

import boto3
from agentops_server.archive import keys_document
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.config import ConfigurationError, Settings
from agentops_server.errors import ApiError
from agentops_server.http import caller_identity, install_error_handlers, json_response
from agentops_server.session_list import list_sessions
from agentops_server.store import STATUS_SEALED
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

CHAIN_URL_EXPIRES_IN = 900  # seconds a presigned archive link stays valid

logger = Logger()
settings = Settings.from_env()
if settings.archive_bucket is None:
    raise ConfigurationError("the chain function needs ARCHIVE_BUCKET")
store = DynamoDBChainStore(boto3.client("dynamodb"), settings.table_name, seal_idle_seconds=settings.seal_idle_seconds)
archive = S3Archive(boto3.client("s3", config=Config(signature_version="s3v4")), settings.archive_bucket)
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.get("/v1/sessions/<session_id>/chain")
def get_chain(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    head = store.get_head(session_id)
    if head is None:
        raise ApiError("SESSION_NOT_FOUND", "No session has this id.", {"session_id": session_id})
    if head.status != STATUS_SEALED or head.archive is None:
        raise ApiError(
            "NOT_SEALED",
            "The session is not sealed yet; its chain is archived when it is.",
            {"session_id": session_id, "status": head.status},
        )
    response: Response[str] = json_response(
        200,
        {
            "bucket": head.archive.bucket,
            "key": head.archive.key,
            "version_id": head.archive.version_id,
            "sha256": head.archive.sha256,
            "url": archive.presigned_url(head.archive, CHAIN_URL_EXPIRES_IN),
            "expires_in": CHAIN_URL_EXPIRES_IN,
        },
    )
    return response


@app.get("/v1/keys")
def get_keys() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    response: Response[str] = json_response(200, keys_document(archive.published_keys()))
    return response


@app.get("/v1/sessions")
def get_sessions() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    response: Response[str] = json_response(200, list_sessions(store, app.current_event.query_string_parameters))
    return response


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
