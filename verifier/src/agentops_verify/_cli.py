"""``agentops-verify``: the command line of ELS section 7.

Every file named is checked, whatever happens to the others (ELS section 7, rev 2): a file that cannot be read gets
its own result line and a LOAD_ERROR report. Exit status: 2 when the command could not run as asked (bad arguments,
an unreadable or unusable key) or any file could not be read, since then not everything asked for was checked; else
1 when any session fails (or misses the policy); else 0. Text output follows ``aws cloudtrail validate-logs``: one
tab-separated line per file, then the details, then ``N/M sessions valid``.

The evidence-log options (LOG.md sections 6 and 7): ``--log-key`` pins checkpoint keys, ``--log-proof`` gives the
log proof of the one FILE named (a chain file or an export document), ``--receipts`` a receipts file that every FILE
is checked against (it may hold receipts of many sessions), ``--require-log-inclusion`` is a policy. A log proof, key
or receipts file that cannot be read or parsed is a usage error (exit 2), as is ``--log-proof`` without
``--log-key`` or with more than one FILE.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from . import _codes as codes
from ._ecdsa import KeyFormatError, PublicKey
from ._errors import MalformedJSONError
from ._files import verify_file
from ._json import loads
from ._keys import TrustStore, is_key_id, parse_key_file
from ._logchecks import LogChecks
from ._parallel import default_workers
from ._policy import Policy, input_failure
from ._receipts import ReceiptsFormatError, read_receipts
from ._report import Report, Violation

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2  # also: a file could not be read

UNVERIFIED_LABEL = "unverified (not covered by any hash or signature)"

PROG = "agentops-verify"
# Files at least this large get a progress indicator (only when stderr is a terminal).
_PROGRESS_MIN_BYTES = 16 * 1024 * 1024
_PROGRESS_INTERVAL_SECONDS = 0.5
# Large JSON Lines files are verified by one process per CPU other work leaves idle (at most four); same report
# as serial.
_WORKERS = default_workers()


class _UsageError(Exception):
    """The command cannot run as asked; the message is printed as is."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _argument_parser()
    arguments = parser.parse_args(argv)  # exits with status 2 on bad arguments
    try:
        trust = _trust_store(arguments.trusted_key)
        policy = Policy(
            reject_local_authority=arguments.reject_local_authority,
            require_authoritative=arguments.require_authoritative,
            accept_unsigned_seals=arguments.accept_unsigned_seals,
            require_log_inclusion=arguments.require_log_inclusion,
        )
        log = _log_checks(arguments)
    except _UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    reports: list[Report] = []
    unreadable = 0
    for path in arguments.files:
        try:
            reports.append(_verify(path, trust, policy, log))
        except OSError as error:
            message = f"cannot read {path}: {error.strerror or error}"
            print(f"{PROG}: error: {message}", file=sys.stderr)
            reports.append(input_failure(Violation(codes.LOAD_ERROR, message), policy, source=path))
            unreadable += 1
    write_to_stdout(lambda out: (_print_json if arguments.format == "json" else _print_text)(reports, out))
    if unreadable:
        return EXIT_USAGE
    return EXIT_PASS if all(report.passed for report in reports) else EXIT_FAIL


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Verify AgentOps Replay evidence (JSON Lines chains, JSON arrays of events, export documents) "
        "offline. Exit status: 0 all sessions pass, 1 any fails, 2 the command could not run as asked or a file "
        "could not be read.",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--trusted-key",
        metavar="KEY",
        action="append",
        default=[],
        help="a PEM public key file, a GET /v1/keys JSON file (every key in it trusted), or a sha256: key id that "
        "pins a key listed in an export document; repeatable",
    )
    parser.add_argument(
        "--reject-local-authority", action="store_true", help="fail sessions whose chain authority is sdk"
    )
    parser.add_argument(
        "--require-authoritative", action="store_true", help="fail anything that is not AUTHORITATIVE_EVIDENCE"
    )
    parser.add_argument(
        "--accept-unsigned-seals",
        action="store_true",
        help="count a legacy unsigned server seal as a seal (the original v0.6 classification)",
    )
    parser.add_argument(
        "--log-key",
        metavar="KEY",
        action="append",
        default=[],
        help="a PEM public key file or a GET /v1/keys JSON file whose keys may sign evidence-log checkpoints; "
        "repeatable. An export document's log_proof is checked only when one is given",
    )
    parser.add_argument(
        "--log-proof",
        metavar="FILE",
        help="the JSON answer of GET /v1/sessions/{id}/log-proof for the one FILE named (needs --log-key)",
    )
    parser.add_argument(
        "--require-log-inclusion",
        action="store_true",
        help="fail sessions whose inclusion in the evidence log was not verified",
    )
    parser.add_argument(
        "--receipts",
        metavar="FILE",
        help="a receipts file kept by the SDK: fail a session whose acknowledged events are missing or differ",
    )
    parser.add_argument("files", metavar="FILE", nargs="+", help="evidence files to verify")
    return parser


def _trust_store(keys: Sequence[str]) -> TrustStore:
    store = TrustStore()
    for key in keys:
        if key.startswith("sha256:"):
            if not is_key_id(key):
                raise _UsageError(f"--trusted-key {key}: not 'sha256:' followed by 64 lowercase hex digits")
            store.pin(key)
            continue
        for public_key in _key_file(key):
            store.add(public_key)
    return store


def _key_file(path: str) -> list[PublicKey]:
    try:
        return parse_key_file(_read(path, "key file"))
    except KeyFormatError as error:
        raise _UsageError(f"bad key file {path}: {error}") from None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as error:
        raise _UsageError(f"cannot read {what} {path}: {error.strerror or error}") from None


def _log_checks(arguments: argparse.Namespace) -> LogChecks | None:
    """The evidence-log checks asked for, or None when no evidence-log option was given."""
    keys = tuple(key for path in arguments.log_key for key in _key_file(path))
    proof = None
    if arguments.log_proof is not None:
        if len(arguments.files) != 1:
            raise _UsageError("--log-proof is the proof of one session: name exactly one FILE with it")
        if not keys:
            raise _UsageError("--log-proof needs --log-key: a checkpoint counts only under a pinned log key")
        try:
            proof = loads(_read(arguments.log_proof, "log proof"))
        except MalformedJSONError as error:
            raise _UsageError(f"log proof {arguments.log_proof} is not JSON: {error}") from None
    receipts = None
    if arguments.receipts is not None:
        receipts = tuple(_read(arguments.receipts, "receipts file").split(b"\n"))
        try:
            read_receipts(receipts, "")  # every line is checked, whichever session it names
        except ReceiptsFormatError as error:
            raise _UsageError(f"bad receipts file {arguments.receipts}: {error}") from None
    if not (keys or proof is not None or receipts is not None or arguments.require_log_inclusion):
        return None
    return LogChecks(keys=keys, proof=proof, receipts=receipts)


def _verify(path: str, trust: TrustStore, policy: Policy, log: LogChecks | None) -> Report:
    """The report for one file; ``OSError`` when it cannot be read."""
    progress = _progress_for(path)
    try:
        return verify_file(path, trust=trust, policy=policy, progress=progress, workers=_WORKERS, log=log)
    finally:
        if progress is not None:
            _clear_progress()


def _progress_for(path: str) -> Callable[[int], None] | None:
    # A progress indicator only for large files, and only for a person watching a terminal.
    if not sys.stderr.isatty():
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if size < _PROGRESS_MIN_BYTES:
        return None
    last_shown = 0.0

    def show(done: int) -> None:
        nonlocal last_shown
        now = time.monotonic()
        if now - last_shown >= _PROGRESS_INTERVAL_SECONDS:
            last_shown = now
            sys.stderr.write(f"\r{path}: {min(100, done * 100 // size)}% verified")
            sys.stderr.flush()

    return show


def _clear_progress() -> None:
    sys.stderr.write("\r\033[K")
    sys.stderr.flush()


def _print_json(reports: Sequence[Report], out: TextIO) -> None:
    if len(reports) == 1:
        document: object = reports[0].to_dict()
    else:
        passed = sum(report.passed for report in reports)
        document = {
            "reports": [report.to_dict() for report in reports],
            "passed": passed,
            "failed": len(reports) - passed,
        }
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def summary_line(report: Report) -> str:
    """``name<TAB>PASS|FAIL<TAB>class<TAB>first violation or partial reasons``."""
    violation = report.first_violation
    if violation is not None:
        where = violation.location()
        detail = f"{violation.type} {where}" if where else violation.type
    elif report.partial_reasons:
        detail = ",".join(report.partial_reasons)
    else:
        detail = "-"
    return "\t".join((report.source or "-", report.status, report.evidence_class, detail))


def detail_lines(report: Report) -> list[str]:
    """What an auditor reads after the summary: who sealed, what was checked, every finding."""
    lines = [f"{report.source or '-'}:"]
    if report.session_id is not None:
        lines.append(f"  session {report.session_id}, authority {report.authority}, {report.event_count} events")
    if report.passed:
        if report.seal_signed:
            trusted = "trusted" if report.seal_key_trusted else "NOT trusted"
            lines.append(f"  seal signed by {report.seal_key_id} ({trusted})")
        elif report.sealed:
            lines.append("  seal unsigned (legacy)")
        else:
            lines.append("  no seal")
        end = "present" if report.complete else "missing"
        lines.append(f"  session end {end}, {report.total_drops} events dropped")
    elif report.event_count:
        lines.append("  checking stopped at the first violation")
    if report.log is not None:
        log = report.log
        lines.append(f"  included in {log['origin']} at index {log['leaf_index']} of tree size {log['tree_size']}")
    for violation in report.violations:
        where = violation.location()
        lines.append(f"  violation {violation.type}{' ' + where if where else ''}: {violation.message}")
    for warning in report.warnings:
        where = warning.location()
        lines.append(f"  warning {warning.type}{' ' + where if where else ''}: {warning.message}")
    if report.replay_fingerprint is not None:
        lines.append(f"  replay fingerprint {report.replay_fingerprint}")
    if report.unverified_metadata:
        lines.append(f"  {UNVERIFIED_LABEL}:")
        lines.extend(f"    {name} {_shown(value)}" for name, value in report.unverified_metadata.items())
    return lines


def _shown(value: object) -> str:
    # Metadata is repeated for the reader, not trusted: a list is counted, anything else quoted as short JSON.
    if isinstance(value, list):
        return f"({len(value)} entries)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


def write_to_stdout(write: Callable[[TextIO], None]) -> None:
    """Run ``write`` on standard output, as both commands print their results: a character the terminal cannot show
    is escaped (evidence may quote any character, and that must not turn a verdict into a crash), and a reader that
    went away (``| head``) ends the output quietly, since the verdict is the exit status. Stdout then points at
    /dev/null, so the interpreter's final flush does not fail again."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_text(reports: Sequence[Report], out: TextIO) -> None:
    for report in reports:
        out.write(summary_line(report) + "\n")
    out.write("\n")
    for report in reports:
        out.write("\n".join(detail_lines(report)) + "\n")
    passed = sum(report.passed for report in reports)
    out.write(f"\n{passed}/{len(reports)} sessions valid\n")
