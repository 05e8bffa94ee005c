"""``fetch`` and ``verify``: a sealed session's evidence gathered into one folder, then checked by the verifier.

The folder holds one file per entry of ``EVIDENCE``, and ``manifest.json`` saying where each came from:

- ``<session_id>.jsonl``: the archived chain, the exact object version the sealer wrote (``GET .../chain`` names
  the version; the presigned link must ask for that version), kept only if its SHA-256 is the one the service
  recorded at sealing;
- ``keys.json``: ``GET /v1/keys``, every key that ever signed a seal. It is what the service says, so it is never a
  trust anchor by itself: ``verify`` trusts a key from it only when the auditor pinned that key's id, and the id is
  computed from the key itself (ELS section 5), so a key set cannot make a key answer to another key's name;
- ``log-proof.json``: ``GET /v1/sessions/{id}/log-proof``, the session's leaf in the deployment's evidence log, its
  inclusion proof and the signed checkpoint it leads to, for ``agentops-verify --log-proof``. A session sealed but
  not yet published in the log (409), or a deployment without the log (404), has none yet: that is listed in the
  manifest's ``unavailable`` and said plainly, and the rest of the evidence is still fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agentops_verify import (
    KeyFormatError,
    LogChecks,
    MalformedJSONError,
    Policy,
    PublicKey,
    Report,
    TrustStore,
    is_canonical_uuid,
    is_key_id,
    loads,
    parse_key_file,
    verify_file,
)

from ._http import CommandError, ServiceClient, ServiceError, download

MANIFEST = "manifest.json"
KEYS_FILE = "keys.json"
LOG_PROOF_FILE = "log-proof.json"
# The answers of GET .../log-proof that mean "no proof yet", not a failure of the fetch: 409 LOG_PENDING (sealed, not
# yet under a published checkpoint) or NOT_SEALED, 404 (a deployment without the evidence log).
_NO_LOG_PROOF_YET = (404, 409)


def check_session_id(session_id: str) -> str:
    """A session id as the API writes it (a lowercase UUID): it also names files, so nothing else is accepted."""
    if not is_canonical_uuid(session_id):
        raise CommandError(f"{session_id!r} is not a session id (a lowercase UUID)")
    return session_id


@dataclass(frozen=True)
class FetchedFile:
    role: str  # "chain", "keys", "log_proof"
    name: str
    sha256: str
    size: int
    source: dict[str, Any] = field(default_factory=dict)  # route, and for archived objects bucket, key, version


def fetch_chain(client: ServiceClient, session_id: str, folder: Path) -> FetchedFile:
    route = f"/v1/sessions/{session_id}/chain"
    archived = client.get(route).document
    version_id = archived.get("version_id")
    expected = archived.get("sha256")
    url = archived.get("url")
    if not all(isinstance(value, str) for value in (version_id, expected, url)):
        raise CommandError(f"GET {route} did not name a version, a SHA-256 and a link")
    if parse_qs(urlsplit(url).query).get("versionId") != [version_id]:
        raise CommandError(f"the link GET {route} gave is not for the archived version {version_id}")
    name = f"{session_id}.jsonl"
    size = download(url, folder / name, expected)
    source = {"route": f"GET {route}", **{key: archived.get(key) for key in ("bucket", "key", "version_id")}}
    return FetchedFile("chain", name, expected, size, source)


@dataclass(frozen=True)
class Unavailable:
    """Evidence the service does not have yet, and its answer saying so."""

    role: str
    route: str
    reason: str


def _write_document(folder: Path, name: str, role: str, route: str, document: Any) -> FetchedFile:
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    (folder / name).write_bytes(data)
    return FetchedFile(role, name, hashlib.sha256(data).hexdigest(), len(data), {"route": f"GET {route}"})


def fetch_keys(client: ServiceClient, session_id: str, folder: Path) -> FetchedFile:
    return _write_document(folder, KEYS_FILE, "keys", "/v1/keys", client.get("/v1/keys").document)


def fetch_log_proof(client: ServiceClient, session_id: str, folder: Path) -> FetchedFile | Unavailable:
    route = f"/v1/sessions/{session_id}/log-proof"
    try:
        document = client.get(route).document
    except ServiceError as error:
        if error.status not in _NO_LOG_PROOF_YET:
            raise
        return Unavailable("log_proof", f"GET {route}", str(error))
    return _write_document(folder, LOG_PROOF_FILE, "log_proof", route, document)


# What ``fetch`` gathers, in order; each entry writes one file into the folder and says what it wrote, or what the
# service does not have yet.
EVIDENCE: tuple[Callable[[ServiceClient, str, Path], FetchedFile | Unavailable], ...] = (
    fetch_chain,
    fetch_keys,
    fetch_log_proof,
)


@dataclass(frozen=True)
class Evidence:
    session_id: str
    folder: Path
    files: tuple[FetchedFile, ...]
    unavailable: tuple[Unavailable, ...] = ()

    def path(self, role: str) -> Path:
        return self.folder / next(fetched.name for fetched in self.files if fetched.role == role)

    def has(self, role: str) -> bool:
        return any(fetched.role == role for fetched in self.files)


def fetch_evidence(client: ServiceClient, session_id: str, folder: Path) -> Evidence:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {folder}: {error.strerror or error}") from None
    results = [fetch(client, session_id, folder) for fetch in EVIDENCE]
    files = tuple(result for result in results if isinstance(result, FetchedFile))
    unavailable = tuple(result for result in results if isinstance(result, Unavailable))
    manifest = {
        "session_id": session_id,
        "endpoint": client.endpoint,
        "fetched_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [{"role": f.role, "name": f.name, "sha256": f.sha256, "size": f.size, **f.source} for f in files],
        "unavailable": [{"role": u.role, "route": u.route, "answer": u.reason} for u in unavailable],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Evidence(session_id, folder, files, unavailable)


def verify_command(evidence: Evidence) -> str:
    """The ``agentops-verify`` command line that checks the fetched evidence offline: the chain under the keys, and
    its inclusion in the evidence log when the log proof was fetched. The keys are the service's own statement: the
    auditor uses them only after checking their ids against the ones the organisation recorded."""
    keys = shlex.quote(str(evidence.path("keys")))
    arguments = ["agentops-verify", "--trusted-key", keys]
    if evidence.has("log_proof"):
        log_proof = shlex.quote(str(evidence.path("log_proof")))
        arguments += ["--log-key", keys, "--log-proof", log_proof, "--require-log-inclusion"]
    arguments.append(shlex.quote(str(evidence.path("chain"))))
    return " ".join(arguments)


@dataclass(frozen=True)
class Trust:
    """The trust store to verify with, the keys it trusts (the auditor's key files and the published keys whose ids
    the auditor pinned: the sealing key also signs the evidence log's checkpoints), and what the auditor should be
    told about it."""

    store: TrustStore
    keys: tuple[PublicKey, ...]
    notes: tuple[str, ...]


def trust_from(trusted_keys: Sequence[str], published_keys: Path) -> Trust:
    """``--trusted-key`` values (key files, or ``sha256:`` ids pinning keys of the fetched key set) as a trust
    store. The fetched keys themselves are trusted only through a pin."""
    store = TrustStore()
    given: list[PublicKey] = []
    for key in trusted_keys:
        if key.startswith("sha256:"):
            if not is_key_id(key):
                raise CommandError(f"--trusted-key {key}: not 'sha256:' followed by 64 lowercase hex digits")
            store.pin(key)
            continue
        try:
            keys = parse_key_file(Path(key).read_bytes())
        except OSError as error:
            raise CommandError(f"cannot read key file {key}: {error.strerror or error}") from None
        except KeyFormatError as error:
            raise CommandError(f"bad key file {key}: {error}") from None
        for public_key in keys:
            store.add(public_key)
            given.append(public_key)
    if not trusted_keys:
        return Trust(
            store,
            (),
            (
                "no --trusted-key given: the key set fetched from the service is not a trust anchor, so the seal's "
                "key is not trusted and the evidence cannot be AUTHORITATIVE_EVIDENCE. Pin the key id your "
                "organisation recorded: --trusted-key sha256:<64 hex digits>.",
            ),
        )
    published = _published(published_keys) if store.pinned_ids else []
    notes = tuple(
        f"pinned key {key_id} is not among the keys the service published"
        for key_id in sorted(store.pinned_ids - {key.key_id for key in published})
    )
    pinned = [key for key in published if key.key_id in store.pinned_ids]
    return Trust(store.with_document_keys(published), (*given, *pinned), notes)


def _published(path: Path) -> list[PublicKey]:
    try:
        return parse_key_file(path.read_bytes())
    except KeyFormatError as error:
        raise CommandError(f"the key set the service published is malformed: {error}") from None


def log_checks(evidence: Evidence, trust: Trust) -> LogChecks | None:
    """The session's inclusion in the evidence log, checked from the fetched log proof under the keys the auditor
    trusts (a checkpoint counts only under a trusted key): None when no proof was fetched or no key is trusted."""
    if not evidence.has("log_proof") or not trust.keys:
        return None
    path = evidence.path("log_proof")
    try:
        proof = loads(path.read_bytes())
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except MalformedJSONError as error:
        raise CommandError(f"the log proof the service gave is not JSON: {error}") from None
    return LogChecks(keys=trust.keys, proof=proof)


def verify_evidence(evidence: Evidence, trust: Trust, policy: Policy) -> Report:
    """The verifier library over the archived chain, and over the log proof when ``log_checks`` gives one."""
    chain = evidence.path("chain")
    try:
        return verify_file(
            chain,
            trust=trust.store,
            policy=policy,
            workers=min(4, os.cpu_count() or 1),
            log=log_checks(evidence, trust),
        )
    except OSError as error:
        raise CommandError(f"cannot read {chain}: {error.strerror or error}") from None
