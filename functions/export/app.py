"""ExportFunction: ``POST /v1/sessions/{session_id}/exports`` and its status route (API.md; ELS section 9).

Body parsing: ``agentops_server.request_parameters``; the export itself: ``agentops_server.export`` (201 and a
presigned GET); a session of at least ``EXPORT_ASYNC_MIN_EVENTS`` events: ``agentops_server.export_jobs`` (202, then
``GET /v1/sessions/{session_id}/exports/{export_id}``), written by an asynchronous invocation of this function (the
event ``{"export_job": {...}}``). Trusted keys are the published key objects (ELS section 8, rev 2). IAM: template.yaml.
"""

from __future__ import annotations

from typing import Any

from agentops_server.aws.wiring import wiring_for
from agentops_server.export import Withholding
from agentops_server.export_jobs import JOB_EVENT_KEY
from agentops_server.http import caller_identity, install_error_handlers, json_response, request_body
from agentops_server.metrics_emf import export_measured
from agentops_server.request_parameters import export_request
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)
wiring = wiring_for("export")
recorder = wiring.metrics
# A job runs in a new invocation of this very function, named by the current invocation's context.
export_jobs = wiring.export_jobs(lambda: app.lambda_context.function_name)


@app.post("/v1/sessions/<session_id>/exports")
def create_export(session_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    request = export_request(request_body(app.current_event.raw_event))
    with export_measured(recorder, request.format):
        status, body = export_jobs.request(
            session_id, request.format, Withholding.from_request(request.withhold_payloads)
        )
    response = json_response(status, body)
    if status == 202:
        response.headers["Location"] = f"/v1/sessions/{session_id}/exports/{body['export_id']}"
    return response


@app.get("/v1/sessions/<session_id>/exports/<export_id>")
def export_status(session_id: str, export_id: str) -> Response[str]:
    caller_identity(app.current_event.raw_event)
    return json_response(*export_jobs.status(session_id, export_id))


@logger.inject_lambda_context
@recorder.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    job = event.get(JOB_EVENT_KEY)
    if isinstance(job, dict):
        export_jobs.run(str(job.get("session_id")), str(job.get("export_id")))
        return None
    response: dict[str, Any] = app.resolve(event, context)
    return response
