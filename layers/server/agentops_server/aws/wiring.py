"""The one wiring of the functions: AWS clients, stores and adapters built from ``Settings`` (docs/architecture.md).

Every handler (``functions/*/app.py``) calls ``wiring_for(<its name>)`` once, at cold start, and builds its core from
what the ``Wiring`` holds; the local stack runs the same handler files, so it is wired by this module too. Each
component is built on first use and then kept for the life of the execution environment; a function that never
asks for KMS never creates a KMS client.

What each function needs from its environment is listed once, in ``REQUIRED_SETTINGS``: a cold start without one of
them fails with one ``ConfigurationError`` naming every missing variable.

Trust (ELS section 8, rev 2): the keys any reader trusts are ``trusted_keys``, the published key objects
``keys/<signer_key_id>.pem`` in the Object Lock bucket, never a record in the table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from agentops_server.archive import ArchiveUnavailableError
from agentops_server.archive_reader import ArchiveReadError
from agentops_server.aws.dynamodb import DynamoDBChainStore
from agentops_server.aws.evidence_log_dynamodb import DynamoDBLogState
from agentops_server.aws.evidence_log_s3 import S3LogObjects
from agentops_server.aws.export_jobs_dynamodb import DynamoDBExportJobs
from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.lambda_invoke import AsyncInvoker
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.aws.s3_archive_reader import S3ArchiveReader
from agentops_server.aws.s3_export_store import S3ExportStore
from agentops_server.clock import SystemClock
from agentops_server.config import Settings
from agentops_server.evidence_log_reader import LogReader
from agentops_server.export import ExportService
from agentops_server.export_jobs import ExportJobs
from agentops_server.ingest import IngestService, SessionLimits
from agentops_server.metrics_emf import EmfRecorder
from agentops_server.replay import VerifiedArchives
from agentops_server.store import SigningKeyRecord

# Beyond TABLE_NAME, which every function needs.
REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "chain": ("ARCHIVE_BUCKET",),
    "export": ("ARCHIVE_BUCKET",),
    "ingest": ("ARCHIVE_BUCKET",),  # a sealed session's view is classified under the published key objects
    "log": ("ARCHIVE_BUCKET",),
    "replay": ("ARCHIVE_BUCKET",),
    "seal": ("ARCHIVE_BUCKET", "SEAL_KEY_ID"),
}

# Ingest answers agents: fail fast and let the client retry (a 5xx is safe to retry): short timeouts, few attempts.
FAIL_FAST_DYNAMODB = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
# Presigned links (chain, export) are signed with SigV4.
S3_CONFIG = Config(signature_version="s3v4")


class Wiring:
    """The adapters of one function, over one client per AWS service."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: Callable[..., Any] = boto3.client,
        dynamodb_config: Config | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._dynamodb_config = dynamodb_config

    # --- clients ----------------------------------------------------------------------------------------------

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb", config=self._dynamodb_config)

    @cached_property
    def s3(self) -> Any:
        return self._client("s3", config=S3_CONFIG)

    @cached_property
    def kms(self) -> Any:
        return self._client("kms")

    @cached_property
    def lambda_(self) -> Any:
        return self._client("lambda")

    # --- adapters ---------------------------------------------------------------------------------------------

    @cached_property
    def metrics(self) -> EmfRecorder:
        """The function's metrics (embedded metric format); its entry point flushes them (``log_metrics``)."""
        return EmfRecorder()

    @cached_property
    def store(self) -> DynamoDBChainStore:
        return DynamoDBChainStore(
            self.dynamodb, self.settings.table_name, seal_idle_seconds=self.settings.seal_idle_seconds
        )

    @cached_property
    def archive(self) -> S3Archive:
        return S3Archive(self.s3, self.settings.bucket)

    @cached_property
    def trusted_keys(self) -> Callable[[], list[SigningKeyRecord]]:
        """The readers' trusted keys: the published key set (ELS section 8, rev 2), listed afresh (each object read
        once per ETag) on every call. S3 failing to list them is a storage outage to the API (503, retry)."""
        archive = self.archive

        def published_keys() -> list[SigningKeyRecord]:
            try:
                return archive.published_keys()
            except ArchiveUnavailableError as error:
                raise ArchiveReadError(f"reading the published keys failed: {error}") from error

        return published_keys

    @cached_property
    def archive_reader(self) -> S3ArchiveReader:
        return S3ArchiveReader(self.s3)

    @cached_property
    def ingest_service(self) -> IngestService:
        limits = SessionLimits(self.settings.max_session_events, self.settings.max_session_bytes)
        return IngestService(self.store, SystemClock(), self.settings.service_id, limits, metrics=self.metrics)

    @cached_property
    def verified_archives(self) -> VerifiedArchives:
        """Archives read through the reader, each verified once per version for the life of the container."""
        return VerifiedArchives(self.archive_reader)

    @cached_property
    def export_store(self) -> S3ExportStore:
        return S3ExportStore(self.s3, self.settings.bucket)

    @cached_property
    def signer(self) -> KmsSigner:
        return KmsSigner(self.kms, self.settings.seal_key, metrics=self.metrics)

    @cached_property
    def log_state(self) -> DynamoDBLogState:
        return DynamoDBLogState(self.dynamodb, self.settings.table_name)

    @cached_property
    def log_objects(self) -> S3LogObjects:
        return S3LogObjects(self.s3, self.settings.bucket)

    @cached_property
    def log_reader(self) -> LogReader:
        return LogReader(self.log_objects, self.log_state, self.store)

    @cached_property
    def export_service(self) -> ExportService:
        return ExportService(
            store=self.store,
            archive_reader=self.archive_reader,
            exports=self.export_store,
            clock=SystemClock(),
            trusted_keys=self.trusted_keys,
            log_proofs=self.log_reader.log_proof_for,
        )

    def export_jobs(self, function_name: Callable[[], str]) -> ExportJobs:
        """Exports, large ones as jobs started in a new invocation of the function ``function_name()`` names."""
        return ExportJobs(
            store=self.store,
            jobs=DynamoDBExportJobs(self.dynamodb, self.settings.table_name),
            exporter=self.export_service,
            start_job=AsyncInvoker(self.lambda_, function_name),
            clock=SystemClock(),
            min_events=self.settings.export_async_min_events,
        )


def wiring_for(function: str, *, client: Callable[..., Any] = boto3.client) -> Wiring:
    """The wiring of ``function`` (a key of ``REQUIRED_SETTINGS``) from the process environment."""
    settings = Settings.from_env(required=REQUIRED_SETTINGS[function])
    return Wiring(settings, client=client, dynamodb_config=FAIL_FAST_DYNAMODB if function == "ingest" else None)
