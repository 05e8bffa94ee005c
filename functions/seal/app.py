"""SealFunction: on every EventBridge schedule tick, seal the sessions that are due (``agentops_server.sealing``).

Returns ``{"sealed": [session ids]}`` (the local stack's ``POST /_local/seal`` answers with exactly that).

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``, ``SEAL_KEY_ID`` (KMS key id or ARN, ECC_NIST_P256 SIGN_VERIFY),
``SERVICE_ID``, ``SEAL_IDLE_SECONDS``, ``SEALED_BATCH_RETENTION_DAYS`` (0 keeps an archived session's table copies),
``LOG_ORIGIN`` (empty: ``<SERVICE_ID>/evidence-log``). The archive's retention is the bucket's default COMPLIANCE
retention (``ArchiveRetentionDays`` in the template), so this function needs no retention setting.

IAM (least privilege, template.yaml): KMS Sign/GetPublicKey on the seal key; S3 put/get on ``sessions/*``, ``keys/*``,
``log/*`` and ListBucket, never delete or retention changes; DynamoDB on session items and the log's state only.

Memory and time: the sealer streams; 1,769 MB (one vCPU) and 900 s let a session at the template's caps seal within a
third of the timeout (``benchmarks/seal_large_session.py``, docs/architecture.md "Sealing").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agentops_server.aws.wiring import wiring_for
from agentops_server.evidence_log_publisher import EvidenceLogPublisher
from agentops_server.sealing import Sealer
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

# Kept back from the invocation's time for what ends a run cleanly: aborting an upload, deferring a session, logging.
SAFETY_MARGIN_MILLIS = 30_000

logger = Logger()
# The core logs through the standard library (``agentops_server.*``); the same structured JSON output lets the
# ``alarm`` field of a refused seal reach CloudWatch as a field a metric filter can match.
copy_config_to_registered_loggers(source_logger=logger, include={"agentops_server"})
wiring = wiring_for("seal")
recorder = wiring.metrics
retention_days = wiring.settings.sealed_batch_retention_days  # 0 keeps an archived session's table copies
sealer = Sealer(
    store=wiring.store,
    signer=wiring.signer,
    archive=wiring.archive,
    service_id=wiring.settings.service_id,
    table_retention=timedelta(days=retention_days) if retention_days else None,
    evidence_log=EvidenceLogPublisher(wiring.log_state, wiring.log_objects, wiring.signer, wiring.settings.log_origin),
    seal_idle=timedelta(seconds=wiring.settings.seal_idle_seconds),
    metrics=recorder,
)


@logger.inject_lambda_context
@recorder.metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    sealed = sealer.seal_due_sessions(
        datetime.now(UTC), remaining=lambda: (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MILLIS) / 1000
    )
    logger.info("sealing run finished", extra={"sealed_count": len(sealed)})
    return {"sealed": sealed}
