"""SealFunction: on every EventBridge schedule tick, seal the sessions that are due (``agentops_server.sealing``).

Returns ``{"sealed": [session ids]}`` (the local stack's ``POST /_local/seal`` answers with exactly that).

Environment: ``TABLE_NAME``, ``ARCHIVE_BUCKET``, ``SEAL_KEY_ID`` (KMS key id or ARN, ECC_NIST_P256 SIGN_VERIFY),
``SERVICE_ID`` (the seals' ``ingestion_service_id``), ``SEAL_IDLE_SECONDS``, ``SEALED_BATCH_RETENTION_DAYS`` (how long
an archived session's table copies stay; 0 keeps them), ``LOG_ORIGIN`` (the evidence log's checkpoint origin; empty
for ``<SERVICE_ID>/evidence-log``). The archive's retention is the bucket's default COMPLIANCE retention
(``ArchiveRetentionDays`` in the template), so this function needs no retention setting.

IAM (least privilege):
- KMS, on the seal key only: ``kms:Sign``, ``kms:GetPublicKey``.
- S3, on ``sessions/*`` and ``keys/*``: ``s3:PutObject`` (PutObject, multipart create/part/complete),
  ``s3:GetObject`` (HeadObject, key objects, ``keys/index.json``, rebuilding a log leaf from its archive),
  ``s3:AbortMultipartUpload``; on ``log/*``: ``s3:PutObject`` and ``s3:GetObject`` (tiles, the checkpoint); on the
  bucket ``s3:ListBucket`` so a missing object answers 404 rather than 403 and the key objects can be listed. No
  delete, no retention or legal-hold change.
- DynamoDB, on session items, its own key record and the evidence log's state (``dynamodb:LeadingKeys`` ``S#*``,
  ``KEY`` and ``LOG``): GetItem, Query, PutItem, UpdateItem (the log's state write is one transaction); and
  ``dynamodb:Query`` on the ``SealDue`` and ``LogPending`` indexes.

Memory and time: the sealer streams; the function's 1,769 MB (one vCPU) and 900 s let a session at the template's
caps seal within a third of the timeout (``benchmarks/seal_large_session.py``, docs/architecture.md "Sealing").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.config import ConfigurationError, Settings
from agentops_server.evidence_log import EvidenceLogPublisher
from agentops_server.sealing import Sealer
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

# Kept back from the invocation's time for what ends a run cleanly: aborting an upload, deferring a session, logging.
SAFETY_MARGIN_MILLIS = 30_000

logger = Logger()
# The core logs through the standard library (``agentops_server.*``); give it the same structured JSON output so the
# ``alarm`` field of a refused seal reaches CloudWatch as a field a metric filter can match.
# (Powertools configures top-level loggers only; the core's module loggers propagate to "agentops_server".)
copy_config_to_registered_loggers(source_logger=logger, include={"agentops_server"})

settings = Settings.from_env()
if settings.archive_bucket is None or settings.seal_key_id is None:
    raise ConfigurationError("the sealer needs ARCHIVE_BUCKET and SEAL_KEY_ID")
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")
signer = KmsSigner(boto3.client("kms"), settings.seal_key_id)
sealer = Sealer(
    store=DynamoDBChainStore(dynamodb, settings.table_name, seal_idle_seconds=settings.seal_idle_seconds),
    signer=signer,
    archive=S3Archive(s3, settings.archive_bucket),
    service_id=settings.service_id,
    table_retention=timedelta(days=settings.sealed_batch_retention_days)
    if settings.sealed_batch_retention_days
    else None,
    evidence_log=EvidenceLogPublisher(
        DynamoDBLogState(dynamodb, settings.table_name),
        S3LogObjects(s3, settings.archive_bucket),
        signer,
        settings.log_origin,
    ),
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    sealed = sealer.seal_due_sessions(
        datetime.now(UTC), remaining=lambda: (context.get_remaining_time_in_millis() - SAFETY_MARGIN_MILLIS) / 1000
    )
    logger.info("sealing run finished", extra={"sealed_count": len(sealed)})
    return {"sealed": sealed}
