"""Publishing the evidence log (LOG.md sections 2 to 4): the sealer's side (interfaces: ``evidence_log``).

Publication, once per sealer run, and why each step is safe to crash after:

1. Read the published checkpoint and verify it under the deployment's keys; read the state and check it against the
   checkpoint (never behind it, the same root at the same size); find the pending sessions (marked ones in archive
   order, with this process's own, which the index may not show yet). With none, and no leaf decided beyond the
   checkpoint, the run stops here: nothing else is read, nothing is signed. Otherwise resume the tiles at the
   checkpoint's size and check that they hash to its root (``TileBuilder.resume(root=...)``); the state's leaves
   past the checkpoint (a run that crashed after its state write) are rebuilt from their archives and must give the
   state's root. Any disagreement is ``LogIntegrityError``: the integrity alarm, and nothing is signed.
2. Decide: the pending sessions become the next leaves (their leaves from this run's sealing, or rebuilt from their
   archives, never from table attributes), and one conditional write advances the state and gives each session its
   leaf index, iff the state is still the one read and none of those sessions has a leaf index yet. A concurrent or
   retried sealer loses this write and can never fork the log; a crash before it leaves the sessions pending, so
   nothing is lost; after it, the leaves are fixed.
3. Write the tiles and entry bundles of the new size (write-once: a rerun writes the same bytes, or finds them).
4. Sign the checkpoint (at most one signature per run), then replace ``log/checkpoint`` conditionally. A crash
   before this leaves the state ahead of the checkpoint: the next run rebuilds the same leaves and tiles (step 1),
   extends them with its own, and signs one checkpoint for the whole.

Every checkpoint is of a state, and states only grow by one conditional write each, so no two checkpoints of one
size can have different roots. What the table cannot be trusted to keep (a session's leaf index, its marker) only
affects that session: a leaf index is checked against the tiles before a proof is served, and a session logged twice
because someone rewrote its marker shows as a repeated session id in ``agentops-log-audit``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agentops_verify import (
    EMPTY_ROOT,
    Checkpoint,
    EvidenceLogError,
    LogLeaf,
    PublicKey,
    Report,
    SealedChainFacts,
    Tile,
    TileBuilder,
    TileReader,
    TrustStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    load_pem_public_key,
    loads,
    low_s_signature,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_lines,
)

from agentops_server.clock import Clock, SystemClock, format_timestamp
from agentops_server.evidence_log import (
    ALARM_LOG_INTEGRITY,
    MAX_LEAVES_PER_PUBLICATION,
    MAX_UNPUBLISHED_LEAVES,
    LogError,
    LogIntegrityError,
    LogObjectMissingError,
    LogObjects,
    LogState,
    LogStateConflictError,
    LogStateStore,
    LogUnavailableError,
    Publication,
    StoredCheckpoint,
)
from agentops_server.signing import Signer, SigningError, SigningKeyMisconfiguredError
from agentops_server.store import StoreError

logger = logging.getLogger(__name__)

STATE_ATTEMPTS = 3  # a run that loses the state write to another sealer reads again, at most this often
CHECKPOINT_ATTEMPTS = 5


# --- the sealer's side ------------------------------------------------------------------------------------------
def leaf_of_sealed_chain(report: Report, seal_line: bytes, archive_sha256: str) -> LogLeaf:
    """LOG.md section 2: the leaf of a sealed chain that passed verification, from its report, its seal event's
    canonical line and the SHA-256 of its archive object."""
    seal = loads(seal_line)
    payload = seal.get("payload") if isinstance(seal, dict) else None
    facts = SealedChainFacts.from_report(report, payload if isinstance(payload, dict) else {})
    return LogLeaf.for_archive(facts, archive_sha256)


@dataclass
class _Plan:
    """Step 1's outcome: the verified published checkpoint, the checked state, the tiles resumed to it."""

    stored: StoredCheckpoint | None
    published: Checkpoint | None
    state: LogState | None
    builder: TileBuilder
    tiles: list[Tile]
    unpublished: tuple[str, ...]  # session ids of the state's leaves past the published checkpoint
    candidates: list[str]  # the pending sessions to append after them

    @property
    def published_size(self) -> int:
        return self.published.size if self.published is not None else 0


class EvidenceLogPublisher:
    """Appends the sessions the sealer archived and publishes the log (module docstring); one instance per process.

    ``session_archived`` is called by the sealer after a session's archive is written and before it is marked
    SEALED (so a crash in between seals it again and marks it again); ``run`` once at the end of every sealer run.
    """

    def __init__(
        self,
        state: LogStateStore,
        objects: LogObjects,
        signer: Signer,
        origin: str,
        *,
        clock: Clock | None = None,
        max_leaves: int = MAX_LEAVES_PER_PUBLICATION,
    ) -> None:
        Checkpoint(origin=origin, size=0, root_hash=EMPTY_ROOT)  # refuses an origin that cannot name a note key
        self._state = state
        self._objects = objects
        self._signer = signer
        self._origin = origin
        self._clock = clock if clock is not None else SystemClock()
        self._max_leaves = min(max_leaves, MAX_LEAVES_PER_PUBLICATION)
        self._in_hand: dict[str, tuple[str, LogLeaf]] = {}  # this process's archived sessions: queued_at, leaf

    @property
    def origin(self) -> str:
        return self._origin

    def session_archived(self, session_id: str, report: Report, seal_line: bytes, archive_sha256: str) -> None:
        """Mark the session as archived and not yet logged (durably), and keep its leaf for this run's publication.

        The leaf is built from what the sealer has just verified and archived; a session whose leaf cannot be built
        stays marked and is rebuilt from its archive by ``run`` (which raises the alarm if that fails too)."""
        queued_at = format_timestamp(self._clock.now())
        self._state.enqueue_for_log(session_id, queued_at)
        try:
            leaf = leaf_of_sealed_chain(report, seal_line, archive_sha256)
        except (EvidenceLogError, ValueError) as error:
            logger.error(
                "sealed session has no log leaf",
                extra={"alarm": ALARM_LOG_INTEGRITY, "session_id": session_id, "detail": str(error)},
            )
            return
        self._in_hand[session_id] = (queued_at, leaf)

    def run(self, keys: Callable[[], Sequence[PublicKey]], before_signing: Callable[[], None]) -> Publication | None:
        """``publish``, with its failures logged instead of raised: the integrity alarm for ``LogIntegrityError``, a
        warning for a transient failure (the next run retries). The sealing run's own outcome is unaffected."""
        try:
            publication = self.publish(keys, before_signing)
        except LogIntegrityError as error:
            logger.error(
                "evidence log not published: the stored log disagrees with its last checkpoint",
                extra={"alarm": ALARM_LOG_INTEGRITY, "detail": str(error)},
            )
            return None
        except (LogError, StoreError, SigningError) as error:
            logger.warning(
                "evidence log publication deferred to the next run",
                extra={"error": type(error).__name__, "detail": str(error)},
            )
            return None
        if publication is not None:
            logger.info(
                "evidence log published",
                extra={"tree_size": publication.size, "appended": len(publication.appended)},
            )
        return publication

    def publish(
        self, keys: Callable[[], Sequence[PublicKey]], before_signing: Callable[[], None]
    ) -> Publication | None:
        """Publish the pending sessions and any unfinished publication; None when there was nothing to publish.

        ``keys`` are every key this deployment signed with (checkpoints and seals are checked under them);
        ``before_signing`` runs once before the checkpoint is signed (the sealer publishes its key there)."""
        already_logged: set[str] = set()
        for _ in range(STATE_ATTEMPTS):
            trusted = list(keys())
            plan = self._plan(trusted, already_logged)
            if plan is None:
                return None
            leaves = self._leaves(plan.candidates, trusted)
            if not leaves and not plan.unpublished:
                return None
            for leaf in leaves:
                plan.tiles.extend(plan.builder.append(leaf.to_bytes()))
            appended = tuple(leaf.session_id for leaf in leaves)
            if leaves:
                new_state = LogState(
                    size=plan.builder.size,
                    root_hash=plan.builder.root(),
                    batch_start=plan.published_size,
                    batch=plan.unpublished + appended,
                )
                try:
                    self._state.advance_log(plan.state, new_state, appended)
                except LogStateConflictError as conflict:
                    logger.info("the evidence log moved since it was read; reading it again")
                    already_logged |= conflict.already_logged
                    # A marker of a session logged already is stale (a racing sealer's write removed it, or someone
                    # wrote it again): moved behind the others, such markers cannot fill every attempt of every run.
                    for session_id in conflict.already_logged:
                        self._state.requeue_for_log(session_id, format_timestamp(self._clock.now()))
                    continue
            for session_id in appended:
                self._in_hand.pop(session_id, None)
            for tile in [*plan.tiles, *plan.builder.partial_tiles()]:
                self._objects.write_once(tile.path, tile.data)
            before_signing()
            note = self._sign(Checkpoint(self._origin, plan.builder.size, plan.builder.root()))
            self._replace_checkpoint(note, plan, keys)
            return Publication(size=plan.builder.size, root_hash=plan.builder.root(), appended=appended)
        raise LogStateConflictError(f"the log state kept changing over {STATE_ATTEMPTS} attempts")

    # --- step 1: what is published, and is the state consistent with it -----------------------------------------
    def _plan(self, keys: Sequence[PublicKey], already_logged: set[str]) -> _Plan | None:
        """Step 1, and the choice of step 2's sessions; None when there is nothing to publish (the cheap case of most
        runs: one read of the checkpoint, of the state and of the pending index, no tile read, nothing signed)."""
        stored = self._objects.latest_checkpoint()
        published = self._verified(stored, keys)
        state = self._state.log_state()
        size = published.size if published is not None else 0
        _check_state_against_checkpoint(state, published)
        unpublished = state.batch[size - state.batch_start :] if state is not None and state.size > size else ()
        candidates = self._candidates(unpublished, already_logged)
        if not candidates and not unpublished:
            return None
        try:
            builder = TileBuilder.resume(size, self._objects.read, root=published.root_hash if published else None)
        except (EvidenceLogError, LogObjectMissingError, ValueError) as error:
            raise LogIntegrityError(f"the tiles of the published checkpoint of size {size}: {error}") from error
        tiles: list[Tile] = []
        if state is not None and unpublished:
            # A run stopped after its state write: rebuild its leaves (from the archives) and tiles exactly.
            self._check_published_part_of_batch(state, published)
            for session_id in unpublished:
                leaf = self._leaf_from_archive(session_id, keys)
                if leaf is None:
                    raise LogIntegrityError(f"the log state names session {session_id}, which has no sealed archive")
                tiles.extend(builder.append(leaf.to_bytes()))
            if builder.root() != state.root_hash:
                raise LogIntegrityError(
                    f"the log state's root for size {state.size} is not the root of the leaves it names"
                )
        return _Plan(stored, published, state, builder, tiles, unpublished, candidates)

    def _verified(self, stored: StoredCheckpoint | None, keys: Sequence[PublicKey]) -> Checkpoint | None:
        if stored is None:
            return None
        try:
            checkpoint = verify_checkpoint(stored.note, keys)
        except EvidenceLogError as error:
            raise LogIntegrityError(f"the published checkpoint does not verify: {error}") from error
        if checkpoint.origin != self._origin:
            raise LogIntegrityError(
                f"the published checkpoint is of log {checkpoint.origin!r}, this deployment's is {self._origin!r}"
            )
        return checkpoint

    def _check_published_part_of_batch(self, state: LogState, published: Checkpoint | None) -> None:
        """Leaves the state lists that a racing run has published since: they must be the published ones."""
        if published is None or state.batch_start == published.size:
            return
        reader = TileReader(published.size, self._objects.read)
        try:
            for offset, session_id in enumerate(state.batch[: published.size - state.batch_start]):
                index = state.batch_start + offset
                entry = reader.entry(index)
                proof = inclusion_proof(index, published.size, reader)
                verify_inclusion(leaf_hash(entry), index, published.size, proof, published.root_hash)
                if LogLeaf.from_bytes(entry).session_id != session_id:
                    raise LogIntegrityError(f"the log state names session {session_id} for leaf {index}")
        except (EvidenceLogError, LogObjectMissingError) as error:
            raise LogIntegrityError(f"the published leaves the log state lists: {error}") from error

    # --- step 2: which sessions become leaves -----------------------------------------------------------------
    def _candidates(self, unpublished: tuple[str, ...], already_logged: set[str]) -> list[str]:
        """The sessions to append next, in archive order: marked ones (the index) and this process's (the index may
        not show their markers yet), none that the state already places or a lost race showed logged."""
        room = min(self._max_leaves, MAX_UNPUBLISHED_LEAVES - len(unpublished))
        if room <= 0:
            return []
        for session_id in already_logged:
            self._in_hand.pop(session_id, None)
        taken = set(unpublished) | already_logged
        pending = {entry.session_id: entry.queued_at for entry in self._state.pending_for_log(room + len(taken))}
        for session_id, (queued_at, _) in self._in_hand.items():
            pending.setdefault(session_id, queued_at)
        ordered = sorted(
            (queued_at, session_id) for session_id, queued_at in pending.items() if session_id not in taken
        )
        return [session_id for _, session_id in ordered[:room]]

    def _leaves(self, candidates: list[str], keys: Sequence[PublicKey]) -> list[LogLeaf]:
        """The candidates' leaves: in hand, or rebuilt from the archive. One that has no sealed archive (its marker
        was written by someone else than the sealer) is left pending, with the alarm, and moved behind the other
        marked sessions, so that such markers cannot take every place of every publication."""
        leaves: list[LogLeaf] = []
        for session_id in candidates:
            in_hand = self._in_hand.get(session_id)
            leaf = in_hand[1] if in_hand is not None else self._leaf_from_archive(session_id, keys)
            if leaf is None:
                logger.error(
                    "a session marked for the log has no sealed archive; it stays pending",
                    extra={"alarm": ALARM_LOG_INTEGRITY, "session_id": session_id},
                )
                self._state.requeue_for_log(session_id, format_timestamp(self._clock.now()))
                continue
            leaves.append(leaf)
        return leaves

    def _leaf_from_archive(self, session_id: str, keys: Sequence[PublicKey]) -> LogLeaf | None:
        """The leaf rebuilt from the locked archive object, never from table attributes; None unless it is a sealed
        chain of this session signed by a deployment key."""
        chunks = self._objects.archived_chain(session_id)
        if chunks is None:
            return None
        digest = hashlib.sha256()
        last_line = bytearray()
        report = verify_lines(_archive_lines(chunks, digest, last_line), trust=TrustStore(keys))
        if report.session_id != session_id or not report.seal_key_trusted:
            return None
        try:
            return leaf_of_sealed_chain(report, bytes(last_line), digest.hexdigest())
        except (EvidenceLogError, ValueError):
            return None

    # --- step 4: sign once, publish conditionally ----------------------------------------------------------------
    def _sign(self, checkpoint: Checkpoint) -> bytes:
        key = load_pem_public_key(self._signer.public_key_pem)
        try:
            return sign_checkpoint(
                checkpoint, key=key, sign=lambda message: low_s_signature(self._signer.sign(message))
            )
        except EvidenceLogError as error:
            raise SigningKeyMisconfiguredError(f"the checkpoint signature does not verify: {error}") from error

    def _replace_checkpoint(self, note: bytes, plan: _Plan, keys: Callable[[], Sequence[PublicKey]]) -> None:
        """Replace ``log/checkpoint`` only if it is still the version read. When another run replaced it meanwhile
        with a smaller checkpoint of the same log, replace that one; with one as large or larger, leave it."""
        ours = Checkpoint(self._origin, plan.builder.size, plan.builder.root())
        replaces = plan.stored
        for _ in range(CHECKPOINT_ATTEMPTS):
            if self._objects.replace_checkpoint(note, replaces):
                return
            replaces = self._objects.latest_checkpoint()
            current = self._verified(replaces, keys())
            if current is None:
                continue
            if current.size < ours.size:
                self._check_consistent(current, ours)
                continue
            self._check_consistent(ours, current)
            return
        raise LogUnavailableError(f"log/checkpoint kept changing over {CHECKPOINT_ATTEMPTS} attempts")

    def _check_consistent(self, old: Checkpoint, new: Checkpoint) -> None:
        try:
            reader = TileReader(new.size, self._objects.read)
            proof = consistency_proof(old.size, new.size, reader) if old.size < new.size else []
            verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        except (EvidenceLogError, LogObjectMissingError) as error:
            raise LogIntegrityError(
                f"the checkpoints of size {old.size} and {new.size} are not of one log: {error}"
            ) from error


def _check_state_against_checkpoint(state: LogState | None, published: Checkpoint | None) -> None:
    """The table's state may be ahead of the published checkpoint (a run stopped before publishing), never behind
    it, never different at its size, and its unpublished leaves must start at or before it."""
    size = published.size if published is not None else 0
    if state is None:
        if published is not None:
            raise LogIntegrityError(f"the log state is missing but a checkpoint of size {size} is published")
        return
    if state.size < size:
        raise LogIntegrityError(f"the log state's size {state.size} is behind the published checkpoint's {size}")
    if published is not None and state.size == size and state.root_hash != published.root_hash:
        raise LogIntegrityError(f"the log state's root for size {size} is not the published checkpoint's")
    if state.size > size and state.batch_start > size:
        raise LogIntegrityError(
            f"the log state's unpublished leaves start at {state.batch_start}, after the published size {size}"
        )


def _archive_lines(chunks: Iterable[bytes], digest: Any, last_line: bytearray) -> Iterator[bytes]:
    """The non-blank lines of an archive read in chunks, hashing every byte and keeping the last line."""
    pending = b""
    for chunk in chunks:
        digest.update(chunk)
        data = pending + chunk
        *lines, pending = data.split(b"\n")
        for line in lines:
            if line.strip():
                last_line[:] = line
                yield line
    if pending.strip():
        last_line[:] = pending
        yield pending
