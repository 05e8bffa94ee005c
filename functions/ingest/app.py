"""Ingest Lambda: POST /v1/sessions/{id}/events, GET /v1/sessions/{id}, GET /v1/health (API.md).

Routes check the envelope (caller identity, media type, size) and hand the body to the core; the session view
classifies a sealed archive under the published key objects (``agentops_server.sessions``).
"""

from __future__ import annotations

import gc
from typing import Any

from agentops_server import http
from agentops_server.aws.wiring import wiring_for
from agentops_server.metrics_emf import append_measured
from agentops_server.sessions import session_view
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()  # inactive outside Lambda, and inside it unless the function enables X-Ray tracing
wiring = wiring_for("ingest")
recorder = wiring.metrics
ingest = wiring.ingest_service
app = APIGatewayHttpResolver()
http.install_error_handlers(app, logger)


@app.post("/v1/sessions/<session_id>/events")
def append_events(session_id: str) -> Response[str]:
    with append_measured(recorder):
        caller = http.caller_identity(app.current_event.raw_event)
        http.require_json_content_type(app.current_event.headers)
        accepted = ingest.append(session_id, caller, http.request_body(app.current_event.raw_event))
    return http.json_response(200, accepted)


@app.get("/v1/sessions/<session_id>")
def get_session(session_id: str) -> Response[str]:
    http.caller_identity(app.current_event.raw_event)
    view = session_view(wiring.store, session_id, archives=wiring.verified_archives, trusted_keys=wiring.trusted_keys)
    return http.json_response(200, view)


@app.get("/v1/health")
def health() -> Response[str]:
    return http.json_response(200, {"status": "ok"})


# What lives as long as the container, kept out of full collections (benchmarks/ingest_cost.py); frozen once only.
if gc.get_freeze_count() == 0:
    gc.freeze()


@logger.inject_lambda_context
@recorder.metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)  # answers list every event: too big for X-Ray metadata
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
