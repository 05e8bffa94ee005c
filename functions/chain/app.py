"""ChainFunction: ``GET /v1/sessions/{session_id}/chain``, ``GET /v1/keys`` and ``GET /v1/sessions`` (API.md).

The chain route answers with a presigned GET of the exact archived version (``agentops_server.sessions.chain_link``).
Keys are the published key objects ``keys/<signer_key_id>.pem`` (ELS section 8, rev 2); nothing in the table can add
a key. The session listing (``agentops_server.session_list``) is served here, by the read-only function of auditors.

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``. IAM: ``dynamodb:GetItem``, ``dynamodb:Query`` and
``dynamodb:BatchGetItem`` on session items, ``dynamodb:Query`` on the two listing indexes; ``s3:GetObject`` and
``s3:GetObjectVersion`` on ``sessions/*`` (the presigned link is signed with this role); ``s3:ListBucket`` for
``keys/`` and ``s3:GetObject`` on ``keys/*``. No KMS access.
"""

from __future__ import annotations

from typing import Any

from agentops_server.archive import keys_document
from agentops_server.aws.wiring import wiring_for
from agentops_server.http import caller_identity, install_error_handlers, json_response
from agentops_server.session_list import list_sessions
from agentops_server.sessions import chain_link
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
wiring = wiring_for("chain")
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.get("/v1/sessions/<session_id>/chain")
def get_chain(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, chain_link(wiring.store, wiring.archive, session_id))


@app.get("/v1/keys")
def get_keys() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, keys_document(wiring.trusted_keys()))


@app.get("/v1/sessions")
def get_sessions() -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(200, list_sessions(wiring.store, app.current_event.query_string_parameters))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
