"""The ``agentops-log-audit`` command: arguments, reading the checkpoint and key files, and the text or JSON output of
an audit (``_logaudit``). Exit status 0 when everything holds, 1 when anything does not, 2 when the audit could not
run."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ._cli import write_to_stdout
from ._ecdsa import KeyFormatError, PublicKey
from ._keys import TrustStore, parse_key_file
from ._logaudit import LogAudit, open_regular_file
from ._note import MAX_NOTE_SIZE

PROG = "agentops-log-audit"
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class AuditUsageError(Exception):
    """The audit cannot run as asked (a missing checkpoint file, an unreadable key or directory)."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _argument_parser().parse_args(argv)  # exits with status 2 on bad arguments
    try:
        audit = _audit_from(arguments)
    except AuditUsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        write_to_stdout(lambda out: (_print_json if arguments.format == "json" else _print_text)(audit, out))
    except sqlite3.Error as error:
        print(f"{PROG}: error: the temporary session index failed: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_PASS if audit.totals.passed else EXIT_FAIL


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Audit a downloaded copy of the evidence log (the bucket's log/ prefix) and, with --archives, "
        "the sealed sessions it lists. Exit status: 0 all holds, 1 anything does not, 2 the audit could not run.",
    )
    parser.add_argument(
        "--log-key",
        metavar="KEY",
        action="append",
        required=True,
        help="a PEM public key file or a GET /v1/keys JSON file whose keys may sign checkpoints; repeatable",
    )
    parser.add_argument(
        "--previous-checkpoint",
        metavar="FILE",
        help="an earlier checkpoint: the log must extend it (same origin, its root at its size)",
    )
    parser.add_argument(
        "--archives",
        metavar="DIR",
        help="a downloaded copy of the bucket's sessions/ prefix: check every logged session's archive and list "
        "archives no leaf names",
    )
    parser.add_argument(
        "--trusted-key",
        metavar="KEY",
        action="append",
        default=[],
        help="a PEM or GET /v1/keys JSON file of seal keys for the archives (default: the --log-key keys); repeatable",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("log_dir", metavar="LOG_DIR", help="a downloaded copy of the bucket's log/ prefix")
    return parser


def _audit_from(arguments: argparse.Namespace) -> LogAudit:
    log_keys = [key for path in arguments.log_key for key in _read_keys(path)]
    seal_keys = [key for path in arguments.trusted_key for key in _read_keys(path)]
    log_dir = Path(arguments.log_dir)
    archives = Path(arguments.archives) if arguments.archives is not None else None
    if archives is not None and not archives.is_dir():
        raise AuditUsageError(f"--archives {archives}: not a directory")
    previous = None
    if arguments.previous_checkpoint is not None:
        previous = _read_file(Path(arguments.previous_checkpoint), "previous checkpoint", MAX_NOTE_SIZE)
    return LogAudit(
        log_dir=log_dir,
        checkpoint=_read_file(log_dir / "checkpoint", "checkpoint", MAX_NOTE_SIZE),
        log_keys=log_keys,
        trust=TrustStore(seal_keys or log_keys),
        previous_checkpoint=previous,
        archives=archives,
    )


def _read_keys(path: str) -> list[PublicKey]:
    try:
        return parse_key_file(_read_file(Path(path), "key file"))
    except KeyFormatError as error:
        raise AuditUsageError(f"bad key file {path}: {error}") from None


def _read_file(path: Path, what: str, size: int | None = None) -> bytes:
    """The file's bytes; with ``size``, at most its first ``size + 1`` (more than any valid such file holds)."""
    try:
        with open_regular_file(path) as file:
            return file.read() if size is None else file.read(size + 1)
    except OSError as error:
        raise AuditUsageError(f"cannot read {what} {path}: {error.strerror or error}") from None


def _print_text(audit: LogAudit, out: TextIO) -> None:
    for line in audit.lines():
        out.write(line.text() + "\n")
    out.write(audit.totals.summary() + "\n")


def _print_json(audit: LogAudit, out: TextIO) -> None:
    # Written as the audit goes, so output of any length needs no memory.
    out.write('{"results": [')
    for count, line in enumerate(audit.lines()):
        out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(line.to_dict(), ensure_ascii=False))
    totals = audit.totals
    summary = {
        "logged_sessions": totals.logged,
        "intact_sessions": totals.intact if totals.archives_checked else None,
        "unlogged_archives": totals.unlogged,
        "summary": totals.summary(),
        "passed": totals.passed,
    }
    out.write("\n], " + json.dumps(summary, ensure_ascii=False)[1:] + "\n")
