"""``agentops-replay``: find, read, fetch, verify and export sessions of an AgentOps Replay deployment.

Exit status (``verify`` uses those of ``agentops-verify``):

- 0: done (``verify``: the session passed, and met ``--require-authoritative`` and ``--require-log-inclusion``
  when given);
- 1: the evidence did not check out: ``verify`` found a violation or the policy failed, ``show`` was refused because
  the chain does not verify (422 VERIFICATION_FAILED), or a download did not have the SHA-256 the service published;
- 2: the command could not run: bad arguments, no endpoint or credentials, the network, or an error answer from the
  service (printed as ``HTTP <status> <code>: <message>``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from agentops_verify import Policy

from agentops_replay._version import VERSION

from ._evidence import check_session_id, fetch_evidence, trust_from, verify_command, verify_evidence
from ._http import ChecksumError, CommandError, ServiceClient, ServiceError, download
from ._render import Style, printable, render_timeline, report_lines, session_table, timeline_rows

PROG = "agentops-replay"
EXIT_OK = 0
EXIT_EVIDENCE = 1
EXIT_USAGE = 2

STATUSES = ("OPEN", "ENDED", "SEALING", "SEALED")
MAX_PAGE = 200  # GET /v1/sessions ``limit``
REPLAY_PAGE = 1000  # GET .../replay ``limit``
EXPORT_POLL_SECONDS = 2.0
_RELATIVE = re.compile(r"(\d+)([smhd])")
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Output:
    out: TextIO
    err: TextIO
    style: Style

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def note(self, text: str) -> None:
        self.err.write(f"{PROG}: {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)  # exits with status 2 on bad arguments
    output = Output(sys.stdout, sys.stderr, Style.for_stream(sys.stdout))
    try:
        status: int = arguments.run(arguments, output)
    except ChecksumError as error:
        output.note(f"error: {printable(str(error))}")
        return EXIT_EVIDENCE
    except CommandError as error:
        output.note(f"error: {printable(str(error))}")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away. Point stdout at /dev/null so the final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return status


def _client(arguments: argparse.Namespace) -> ServiceClient:
    endpoint = arguments.endpoint or os.environ.get("AGENTOPS_ENDPOINT")
    if not endpoint:
        raise CommandError("no endpoint: pass --endpoint URL or set AGENTOPS_ENDPOINT")
    return ServiceClient(endpoint, arguments.region)


# --- sessions ----------------------------------------------------------------------------------------------------
def run_sessions(arguments: argparse.Namespace, output: Output) -> int:
    client = _client(arguments)
    query: dict[str, str | int] = {}
    if arguments.agent_id:
        query["agent_id"] = arguments.agent_id
    if arguments.status:
        query["status"] = arguments.status
    if arguments.since:
        query["started_after"] = since_time(arguments.since, datetime.now(UTC))
    rows: list[dict[str, Any]] = []
    next_token = None
    while len(rows) < arguments.limit:
        page = {**query, "limit": min(MAX_PAGE, arguments.limit - len(rows))}
        if next_token is not None:
            page["next_token"] = next_token
        document = client.get("/v1/sessions", page).document
        rows.extend(document["sessions"])
        next_token = document["next_token"]
        if next_token is None:
            break
    if arguments.format == "json":
        output.line(json.dumps({"sessions": rows, "next_token": next_token}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        output.note("no sessions match")
        return EXIT_OK
    for line in session_table(rows, output.style):
        output.line(line)
    if next_token is not None:
        output.note(f"showing the newest {len(rows)}; --limit shows more")
    return EXIT_OK


def since_time(value: str, now: datetime) -> str:
    """``--since``: an RFC 3339 UTC time as the API takes it, or a span back from now (``90m``, ``12h``, ``7d``)."""
    relative = _RELATIVE.fullmatch(value)
    if relative is None:
        if not _RFC3339_UTC.fullmatch(value):
            raise CommandError(
                f"--since {value}: give an RFC 3339 UTC time (2026-01-31T09:30:00Z) or a span back from now "
                "(90m, 12h, 7d)"
            )
        return value  # the service checks the calendar
    moment = now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- show --------------------------------------------------------------------------------------------------------
def run_show(arguments: argparse.Namespace, output: Output) -> int:
    session_id = check_session_id(arguments.session_id)
    client = _client(arguments)
    session = client.get(f"/v1/sessions/{session_id}").document
    evidence = session.get("evidence_class") or "not sealed yet"
    output.line(
        f"session {session_id}  {printable(session.get('status'))}  {session.get('event_count')} events  "
        f"started {printable(session.get('started_at'))}  evidence {printable(evidence)}"
    )
    from_sequence: int | None = 0
    first = True
    while from_sequence is not None:
        try:
            page = client.get(
                f"/v1/sessions/{session_id}/replay", {"from_sequence": from_sequence, "limit": REPLAY_PAGE}
            ).document
        except ServiceError as error:
            if error.code != "VERIFICATION_FAILED":
                raise
            output.line(output.style.alert("the chain does not verify; the service serves no frames of it:"))
            for violation in error.details.get("violations", []):
                sequence = violation.get("event_sequence")
                where = f" at sequence {sequence}" if sequence is not None else ""
                output.line(f"  {printable(violation.get('type'))}{where}: {printable(violation.get('message'))}")
            return EXIT_EVIDENCE
        if first:
            _show_verification(page.get("verification") or {}, page.get("warnings") or [], output)
            first = False
        for line in render_timeline(timeline_rows(page.get("frames") or []), output.style):
            output.line(line)
        from_sequence = page.get("next_from_sequence")
    return EXIT_OK


def _show_verification(report: dict[str, Any], warnings: list[Any], output: Output) -> None:
    status = printable(report.get("status"))
    verdict = output.style.good(status) if status == "PASS" else output.style.alert(status)
    reasons = ", ".join(printable(reason) for reason in report.get("partial_reasons") or [])
    output.line(
        f"verified by the service: {verdict} {printable(report.get('evidence_class'))}"
        + (f" ({reasons})" if reasons else "")
        + "  (check it yourself: agentops-replay verify)"
    )
    for warning in warnings:
        if isinstance(warning, dict):
            output.line(
                output.style.warn(f"warning {printable(warning.get('type'))}: {printable(warning.get('message'))}")
            )
    output.line()


# --- fetch and verify --------------------------------------------------------------------------------------------
def run_fetch(arguments: argparse.Namespace, output: Output) -> int:
    session_id = check_session_id(arguments.session_id)
    folder = Path(arguments.out or session_id)
    evidence = fetch_evidence(_client(arguments), session_id, folder)
    for fetched in evidence.files:
        output.line(f"{folder / fetched.name}\t{fetched.size} bytes\tsha256 {fetched.sha256}")
    output.line(f"{folder / 'manifest.json'}")
    for missing in evidence.unavailable:
        # Not a failure: the session is sealed but not yet in a published checkpoint (or the deployment has no log).
        output.note(f"no {missing.role.replace('_', ' ')} yet: {missing.route} answered {printable(missing.reason)}")
    output.note("verify offline, once the key ids in keys.json are the ones you recorded:")
    output.line(verify_command(evidence))
    return EXIT_OK


def run_verify(arguments: argparse.Namespace, output: Output) -> int:
    session_id = check_session_id(arguments.session_id)
    client = _client(arguments)
    if arguments.out:
        return _verify_into(Path(arguments.out), client, session_id, arguments, output)
    with tempfile.TemporaryDirectory(prefix="agentops-evidence-") as folder:
        return _verify_into(Path(folder), client, session_id, arguments, output)


def _verify_into(
    folder: Path, client: ServiceClient, session_id: str, arguments: argparse.Namespace, output: Output
) -> int:
    evidence = fetch_evidence(client, session_id, folder)
    trust = trust_from(arguments.trusted_key, evidence.path("keys"))
    policy = Policy(
        require_authoritative=arguments.require_authoritative, require_log_inclusion=arguments.require_log_inclusion
    )
    report = verify_evidence(evidence, trust, policy)
    if arguments.format == "json":
        output.line(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        chain = evidence.path("chain")
        for line in report_lines(report, output.style, str(chain) if arguments.out else chain.name):
            output.line(line)
    for note in trust.notes:
        output.note(note)
    if evidence.has("log_proof") and not trust.keys:
        output.note("the log proof was not checked: it counts only under a key you trust (--trusted-key)")
    if not arguments.trusted_key and report.seal_key_id is not None:
        output.note(f"the seal names key {report.seal_key_id}; pin it only if that is the key you recorded")
    return EXIT_OK if report.passed else EXIT_EVIDENCE


# --- export ------------------------------------------------------------------------------------------------------
def run_export(arguments: argparse.Namespace, output: Output) -> int:
    session_id = check_session_id(arguments.session_id)
    client = _client(arguments)
    request = {"format": arguments.format, "withhold_payloads": withheld(arguments.withhold)}
    answer = client.post(f"/v1/sessions/{session_id}/exports", request)
    written = answer.document
    if answer.status == 202:
        written = _wait_for_export(client, session_id, written, arguments.wait, output)
    path = Path(arguments.out or f"{session_id}-{written['export_id']}.{written['format']}")
    size = download(written["url"], path, written["sha256"])
    output.line(
        f"{path}\t{size} bytes\tsha256 {written['sha256']}\t{printable(written.get('evidence_class'))}\t"
        f"export {printable(written['export_id'])}"
    )
    return EXIT_OK


def withheld(value: str | None) -> bool | list[int]:
    """``--withhold all`` or ``--withhold 3,5`` as the export request's ``withhold_payloads``."""
    if value is None:
        return False
    if value == "all":
        return True
    try:
        sequences = [int(part) for part in value.split(",")]
    except ValueError:
        raise CommandError(f"--withhold {value}: give 'all' or sequence numbers separated by commas") from None
    if any(sequence < 0 for sequence in sequences):
        raise CommandError(f"--withhold {value}: sequence numbers are not negative")
    return sequences


def _wait_for_export(
    client: ServiceClient, session_id: str, pending: dict[str, Any], wait_seconds: float, output: Output
) -> dict[str, Any]:
    """API.md: a large export answers 202 PENDING and is written asynchronously; its route answers 200 when done."""
    export_id = pending["export_id"]
    output.note(f"export {printable(export_id)} is being written; waiting up to {wait_seconds:g} s")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        time.sleep(EXPORT_POLL_SECONDS)
        answer = client.get(f"/v1/sessions/{session_id}/exports/{export_id}")
        if answer.status == 200:
            document: dict[str, Any] = answer.document
            return document
    raise CommandError(f"export {export_id} was not written within {wait_seconds:g} s; run the command again later")


# --- arguments ---------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", metavar="URL", help="API base URL (default: $AGENTOPS_ENDPOINT)")
    common.add_argument(
        "--region", help="SigV4 region (default: AWS_REGION, AWS_DEFAULT_REGION, AWS config, us-east-1)"
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find, replay, fetch, verify and export AgentOps Replay sessions. Requests are signed with "
        "SigV4 using the standard AWS credential chain. Exit status: 0 done, 1 the evidence did not check out, "
        "2 the command could not run.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace, Output], int], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    sessions = command("sessions", run_sessions, "list sessions, newest first")
    sessions.add_argument("--agent-id", help="only this agent's sessions (SESSION_START agent_id)")
    sessions.add_argument("--status", type=str.upper, choices=STATUSES, help="only sessions in this state")
    sessions.add_argument(
        "--since", metavar="T", help="started after T: RFC 3339 UTC, or a span back from now (2h, 7d)"
    )
    sessions.add_argument("--limit", type=_positive, default=50, metavar="N", help="show at most N (default 50)")
    sessions.add_argument("--format", choices=("table", "json"), default="table")

    show = command("show", run_show, "the timeline of a session, verified by the service first")
    show.add_argument("session_id", metavar="SESSION_ID")

    fetch = command("fetch", run_fetch, "download a sealed session's archived chain and the key set")
    fetch.add_argument("session_id", metavar="SESSION_ID")
    fetch.add_argument("--out", metavar="DIR", help="folder to write (default: ./SESSION_ID)")

    verify = command("verify", run_verify, "fetch a sealed session, then verify it offline with agentops-verify")
    verify.add_argument("session_id", metavar="SESSION_ID")
    verify.add_argument(
        "--trusted-key",
        metavar="KEY",
        action="append",
        default=[],
        help="a key you trust: a PEM or GET /v1/keys file, or a sha256: key id pinning a key of the fetched key "
        "set; repeatable. Without one, the evidence is never AUTHORITATIVE_EVIDENCE",
    )
    verify.add_argument(
        "--require-authoritative", action="store_true", help="fail anything that is not AUTHORITATIVE_EVIDENCE"
    )
    verify.add_argument(
        "--require-log-inclusion",
        action="store_true",
        help="fail a session whose inclusion in the evidence log was not verified (it needs a log proof from the "
        "service and a trusted key)",
    )
    verify.add_argument("--out", metavar="DIR", help="keep the fetched evidence in DIR (default: a temporary folder)")
    verify.add_argument("--format", choices=("text", "json"), default="text", help="report format")

    export = command("export", run_export, "write an export of a session and download it")
    export.add_argument("session_id", metavar="SESSION_ID")
    export.add_argument("--format", choices=("json", "pdf", "html"), default="json")
    export.add_argument("--withhold", metavar="all|N,M", help="withhold every payload, or those of these sequences")
    export.add_argument("--out", metavar="FILE", help="where to write (default: ./SESSION_ID-EXPORT_ID.FORMAT)")
    export.add_argument("--wait", type=float, default=300.0, metavar="S", help="seconds to wait for a large export")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
