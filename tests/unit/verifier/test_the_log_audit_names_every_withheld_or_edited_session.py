"""``agentops-log-audit`` (LOG.md section 6) over a downloaded ``log/`` and ``sessions/``: every way a session or the
log itself can be withheld, edited or forged is named on its own line and makes the exit status 1; the audit never
writes to what it audits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import Checkpoint, tile_path
from agentops_verify._logaudit_cli import main

from tests.support.chains import build_chain, to_jsonl
from tests.support.evidence_log import PublishedLog, leaf_for, sign_note
from tests.support.keys import TestSigner

SEAL_KEY = TestSigner()
OTHER_KEY = TestSigner()


class Deployment:
    """Five sealed sessions, published in two runs (three, then two): the previous checkpoint is the first run's."""

    def __init__(self, root: Path) -> None:
        self.log = PublishedLog(root / "bucket", SEAL_KEY)
        self.chains = [build_chain(3 + number, signer=SEAL_KEY) for number in range(5)]
        for chain in self.chains[:3]:
            self.log.add(chain)
        self.previous = root / "previous-checkpoint"
        self.previous.write_bytes(self.log.publish())
        for chain in self.chains[3:]:
            self.log.add(chain)
        self.log.publish()
        self.key_file = root / "log-key.pem"
        self.key_file.write_text(SEAL_KEY.public_key_pem)

    def session(self, number: int) -> str:
        return str(self.chains[number][0]["session_id"])

    def archive(self, number: int) -> Path:
        return self.log.archives / f"{self.session(number)}.jsonl"

    def args(self, *extra: str, archives: bool = True, previous: bool = True) -> list[str]:
        arguments = ["--log-key", str(self.key_file)]
        if previous:
            arguments += ["--previous-checkpoint", str(self.previous)]
        if archives:
            arguments += ["--archives", str(self.log.archives)]
        return [*arguments, *extra, str(self.log.log_dir)]


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path)


def run(capsys: pytest.CaptureFixture[str], arguments: list[str]) -> tuple[int, list[list[str]]]:
    status = main(arguments)
    output = capsys.readouterr().out
    return status, [line.split("\t") for line in output.splitlines()]


def statuses(lines: list[list[str]]) -> dict[str, str]:
    return {line[0]: line[1] for line in lines if len(line) == 3}


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_intact_download_passes_and_lists_every_session(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(deployment.log.root)
    status, lines = run(capsys, deployment.args())
    assert status == 0
    found = statuses(lines)
    assert found["checkpoint"] == "OK"
    assert found["previous checkpoint"] == "OK"
    assert found["tree"] == "OK"
    assert found["tiles"] == "OK"
    assert [found[deployment.session(number)] for number in range(5)] == ["OK"] * 5
    assert lines[-1] == ["5/5 logged sessions present and intact"]
    assert snapshot(deployment.log.root) == before


def test_session_lines_follow_the_leaf_order(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    _, lines = run(capsys, deployment.args())
    sessions = [line[0] for line in lines if line[0] in {deployment.session(number) for number in range(5)}]
    assert sessions == [deployment.session(number) for number in range(5)]
    assert lines[[line[0] for line in lines].index(deployment.session(1))][2] == "leaf 1, 5 events"


def test_missing_archive_is_reported_by_session(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.archive(3).unlink()
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)[deployment.session(3)] == "MISSING"
    assert lines[-1] == ["4/5 logged sessions present and intact"]


def test_edited_archive_is_reported_modified(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    archive = deployment.archive(1)
    archive.write_bytes(archive.read_bytes().replace(b'"test-agent"', b'"evil-agent"', 1))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)[deployment.session(1)] == "MODIFIED"
    assert lines[-1] == ["4/5 logged sessions present and intact"]


def test_archive_no_leaf_names_is_listed_unlogged(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A session sealed and archived but left out of the log (withheld from auditors of the log)."""
    hidden = build_chain(4, signer=SEAL_KEY)
    deployment.log.archive(hidden)
    (deployment.log.archives / "notes.txt").write_text("not an archive")
    status, lines = run(capsys, deployment.args())
    assert status == 1
    found = statuses(lines)
    assert found[f"{hidden[0]['session_id']}.jsonl"] == "UNLOGGED"
    assert found["notes.txt"] == "UNLOGGED"
    assert lines[-1] == ["5/5 logged sessions present and intact"]


def test_archive_whose_name_is_not_utf8_is_listed_unlogged_not_a_crash(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy of sessions/ can hold a file name that is not UTF-8; it is named with its odd byte escaped."""
    os.close(os.open(os.fsencode(deployment.log.archives) + b"/\xff.jsonl", os.O_CREAT | os.O_WRONLY))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)["\\xff.jsonl"] == "UNLOGGED"
    status = main(["--format", "json", *deployment.args()])
    results = json.loads(capsys.readouterr().out)["results"]
    assert status == 1
    assert {"subject": "\\xff.jsonl", "status": "UNLOGGED"}.items() <= results[-1].items()


def test_archive_name_with_a_line_break_cannot_forge_audit_lines(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each finding is one line of three tab-separated fields, whatever a file name in the copy holds."""
    forged = f"x\n{deployment.session(0)}\tOK\tleaf 0, 3 events\nend"
    (deployment.log.archives / forged).write_text("")
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert all(len(line) == 3 for line in lines[:-1])
    assert lines[-2][1] == "UNLOGGED"
    assert lines[-2][0].startswith("x\\x0a")
    assert [line[0] for line in lines].count(deployment.session(0)) == 1


def test_logged_chain_that_fails_verification_is_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = [dict(event) for event in build_chain(4, signer=SEAL_KEY)]
    tampered[1] = {**tampered[1], "payload": {**tampered[1]["payload"], "edited": True}}
    deployment.log.add(tampered)
    deployment.log.publish()
    status, lines = run(capsys, deployment.args(previous=False))
    assert status == 1
    line = next(line for line in lines if line[0] == tampered[0]["session_id"])
    assert line[1] == "INVALID"
    assert "PAYLOAD_HASH_MISMATCH at sequence 1" in line[2]


def test_logged_chain_sealed_by_an_untrusted_key_is_invalid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = build_chain(4, signer=OTHER_KEY)
    deployment.log.add(foreign)
    deployment.log.publish()
    status, lines = run(capsys, deployment.args(previous=False))
    assert status == 1
    line = next(line for line in lines if line[0] == foreign[0]["session_id"])
    assert line[1] == "INVALID"
    assert "not a trusted key" in line[2]


def test_trusted_keys_for_seals_can_differ_from_the_log_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = PublishedLog(tmp_path / "bucket", OTHER_KEY)
    log.add(build_chain(3, signer=SEAL_KEY))
    log.publish()
    (tmp_path / "log.pem").write_text(OTHER_KEY.public_key_pem)
    (tmp_path / "seal.pem").write_text(SEAL_KEY.public_key_pem)
    base = ["--log-key", str(tmp_path / "log.pem"), "--archives", str(log.archives)]
    assert run(capsys, [*base, str(log.log_dir)])[0] == 1
    status, lines = run(capsys, [*base, "--trusted-key", str(tmp_path / "seal.pem"), str(log.log_dir)])
    assert status == 0
    assert lines[-1] == ["1/1 logged sessions present and intact"]


def test_leaf_that_misstates_its_chain_is_invalid(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    chain = build_chain(4, signer=SEAL_KEY)
    deployment.log.add(chain, leaf=dataclasses.replace(leaf_for(chain), event_count=9))
    deployment.log.publish()
    status, lines = run(capsys, deployment.args(previous=False))
    assert status == 1
    line = next(line for line in lines if line[0] == chain[0]["session_id"])
    assert line[1] == "INVALID"
    assert "the leaf states event_count differently" in line[2]


def test_session_logged_twice_is_reported(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.log.add(deployment.chains[0])
    deployment.log.publish()
    status, lines = run(capsys, deployment.args(previous=False))
    assert status == 1
    assert ["leaf 5", "INVALID", f"session {deployment.session(0)} is already leaf 0"] in lines


def test_session_logged_twice_is_not_counted_intact_twice(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repeated leaf names the same archive, which is intact; the summary must still not read 6/6."""
    deployment.log.add(deployment.chains[0])
    deployment.log.publish()
    status, lines = run(capsys, deployment.args(previous=False))
    assert status == 1
    assert [line[0] for line in lines].count(deployment.session(0)) == 1
    assert lines[-1] == ["5/6 logged sessions present and intact"]


def test_edited_hash_tile_is_detected(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """The entries still hash to the checkpoint's root, but a proof served from the edited tile would not verify."""
    tile = deployment.log.path_of(tile_path(0, 0, 5))
    data = bytearray(tile.read_bytes())
    data[40] ^= 0x01
    tile.write_bytes(bytes(data))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    found = statuses(lines)
    assert found["tile/0/000.p/5"] == "MODIFIED"
    assert found["tree"] == "OK"
    assert "tiles" not in found


def test_edited_earlier_partial_tile_is_detected(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """The partial tile of the first checkpoint (size 3) is kept in the bucket and must stay a prefix."""
    tile = deployment.log.path_of(tile_path(0, 0, 3))
    tile.write_bytes(hashlib.sha256(b"forged").digest() + tile.read_bytes()[32:])
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)["tile/0/000.p/3"] == "MODIFIED"


def test_edited_entry_bundle_no_longer_hashes_to_the_checkpoint(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = deployment.log.path_of("tile/entries/000.p/5")
    bundle.write_bytes(bundle.read_bytes().replace(b'"event_count":4', b'"event_count":7', 1))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    found = statuses(lines)
    assert found["tree"] == "INVALID"
    assert found["tile/0/000.p/5"] == "MODIFIED"  # the stored leaf hashes are the original entries'


def test_missing_entry_bundle_stops_the_rebuild(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.log.path_of("tile/entries/000.p/5").unlink()
    status, lines = run(capsys, deployment.args())
    assert status == 1
    found = statuses(lines)
    assert found["tile/entries/000.p/5"] == "MISSING"
    assert "tree" not in found
    assert not any(status == "UNLOGGED" for status in found.values())


def test_checkpoint_signed_by_another_key_fails_the_audit(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    log = deployment.log
    checkpoint = Checkpoint(log.origin, log.builder.size, log.builder.root())
    (log.log_dir / "checkpoint").write_bytes(sign_note(checkpoint, OTHER_KEY))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines) == {"checkpoint": "INVALID"}


def test_previous_checkpoint_of_a_forked_log_is_inconsistent(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two auditors shown different histories: a checkpoint of size 3 that the current log does not extend."""
    fork = PublishedLog(tmp_path / "fork", SEAL_KEY)
    for chain in [deployment.chains[0], build_chain(3, signer=SEAL_KEY), deployment.chains[2]]:
        fork.add(chain)
    deployment.previous.write_bytes(fork.publish())
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)["previous checkpoint"] == "INVALID"


def test_previous_checkpoint_larger_than_the_current_one_is_inconsistent(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    log = deployment.log
    deployment.previous.write_bytes(sign_note(Checkpoint(log.origin, 9, log.builder.root()), SEAL_KEY))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert ["previous checkpoint", "INVALID", "its size 9 is larger than the checkpoint's 5"] in lines


def test_previous_checkpoint_signed_by_another_key_is_refused(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    log = deployment.log
    deployment.previous.write_bytes(sign_note(Checkpoint(log.origin, 3, b"\x00" * 32), OTHER_KEY))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)["previous checkpoint"] == "INVALID"


def test_without_archives_only_the_log_is_audited(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.archive(0).unlink()
    status, lines = run(capsys, deployment.args(archives=False))
    assert status == 0
    assert lines[-1] == ["5 logged sessions (archives not checked: no --archives)"]
    assert deployment.session(0) not in statuses(lines)


def test_json_output_has_the_same_findings(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.archive(2).unlink()
    assert main(deployment.args("--format", "json")) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is False
    assert document["logged_sessions"] == 5
    assert document["intact_sessions"] == 4
    assert document["unlogged_archives"] == 0
    missing = [result for result in document["results"] if result["status"] == "MISSING"]
    assert missing == [
        {
            "subject": deployment.session(2),
            "status": "MISSING",
            "detail": missing[0]["detail"],
            "session_id": deployment.session(2),
            "leaf_index": 2,
        }
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d.log.log_dir / "checkpoint").unlink(), "cannot read checkpoint"),
        (lambda d: d.key_file.write_text("not a key"), "bad key file"),
        (lambda d: d.previous.unlink(), "cannot read previous checkpoint"),
        (lambda d: os.rename(d.log.archives, d.log.root / "elsewhere"), "not a directory"),
    ],
)
def test_audit_that_cannot_run_exits_2(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    change(deployment)
    assert main(deployment.args()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_log_key_is_required(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(deployment.log.log_dir)])
    assert exit_info.value.code == 2


def test_console_script_runs_the_audit(deployment: Deployment) -> None:
    script = Path(sys.executable).parent / "agentops-log-audit"  # installed with the verifier package
    result = subprocess.run([str(script), *deployment.args()], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "5/5 logged sessions present and intact"


def test_archive_of_a_session_logged_with_other_bytes_is_modified(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The archive was replaced by another valid sealing of the same session (re-sealed with other bytes)."""
    chain = deployment.chains[4]
    resealed = build_chain(len(chain) - 1, session_id=chain[0]["session_id"], signer=SEAL_KEY)
    deployment.archive(4).write_bytes(to_jsonl(resealed))
    status, lines = run(capsys, deployment.args())
    assert status == 1
    assert statuses(lines)[deployment.session(4)] == "MODIFIED"


def audit_in_limited_memory(deployment: Deployment, megabytes: int) -> tuple[int, dict[str, str]]:
    """The console script's exit status and findings when it may map at most ``megabytes`` MiB."""
    script = Path(sys.executable).parent / "agentops-log-audit"
    limit = megabytes << 20

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [str(script), *deployment.args()],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=limit_memory,
    )
    assert result.stderr == ""
    return result.returncode, statuses([line.split("\t") for line in result.stdout.splitlines()])


@pytest.mark.parametrize("stored", ["tile/entries/000.p/5", "tile/0/000.p/5", "tile/0/000.p/3"])
def test_oversized_tile_in_the_copy_is_refused_without_reading_it_whole(deployment: Deployment, stored: str) -> None:
    """A copy can hold a tile of any size (here 1 GiB, sparse); the audit reads no more of it than the tile it checks
    can hold, so it reports the tile in 256 MiB of address space instead of failing with MemoryError."""
    with open(deployment.log.path_of(stored), "r+b") as tile:
        tile.truncate(1 << 30)
    status, found = audit_in_limited_memory(deployment, 256)
    assert status == 1
    assert found[stored] in {"INVALID", "MODIFIED"}


def test_oversized_checkpoint_in_the_copy_is_invalid_not_a_memory_error(deployment: Deployment) -> None:
    with open(deployment.log.log_dir / "checkpoint", "r+b") as checkpoint:
        checkpoint.truncate(1 << 30)
    status, found = audit_in_limited_memory(deployment, 256)
    assert status == 1
    assert found["checkpoint"] == "INVALID"


def test_archive_replaced_by_one_huge_line_is_modified_not_a_memory_error(deployment: Deployment) -> None:
    """An archive in the copy that is one 160 MiB line (sparse zeros) is hashed in chunks and found MODIFIED; its
    lines are read only once its bytes are the ones the signed log names."""
    with open(deployment.archive(2), "r+b") as archive:
        archive.truncate(160 << 20)
    status, found = audit_in_limited_memory(deployment, 128)
    assert status == 1
    assert found[deployment.session(2)] == "MODIFIED"


def test_archive_that_changes_between_its_two_reads_is_modified(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read (the whole file's hash) saw the archived bytes; the lines read to verify are others."""
    archive = deployment.archive(1)
    archived = hashlib.sha256(archive.read_bytes())
    archive.write_bytes(archive.read_bytes().replace(b'"test-agent"', b'"evil-agent"', 1))
    monkeypatch.setattr(hashlib, "file_digest", lambda stream, name: archived)
    status, lines = run(capsys, deployment.args())
    assert status == 1
    line = next(line for line in lines if line[0] == deployment.session(1))
    assert line[1:] == ["MODIFIED", f"{deployment.session(1)}.jsonl changed while it was being audited"]


@pytest.mark.parametrize("replaced", ["archive", "tile/0/000.p/5", "checkpoint"])
def test_a_fifo_in_the_copy_is_reported_not_waited_on_for_ever(deployment: Deployment, replaced: str) -> None:
    """Whoever made the copy can put a FIFO where an archive, a tile or the checkpoint should be: opening it for
    reading waits for a writer that never comes, so the audit hung. It is now reported as unreadable."""
    target = deployment.archive(1) if replaced == "archive" else deployment.log.path_of(replaced)
    target.unlink()
    os.mkfifo(target)
    script = Path(sys.executable).parent / "agentops-log-audit"
    result = subprocess.run([str(script), *deployment.args()], capture_output=True, text=True, timeout=60, check=False)
    if replaced == "checkpoint":
        assert result.returncode == 2
        assert "not a regular file" in result.stderr
        return
    found = statuses([line.split("\t") for line in result.stdout.splitlines()])
    assert result.returncode == 1
    assert "not a regular file" in result.stdout
    if replaced == "archive":
        assert found[deployment.session(1)] == "MISSING"
