"""`make bench` runs every script in benchmarks/; this one (a few seconds over moto) drives the real ingest and seal
handlers, so a change to how handlers expose their clients breaks it where no other test looks. Its figures are not
checked here: speed and cost are the benchmarks' business, never a test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.paths import REPO_ROOT


def test_the_storage_benchmark_runs_the_real_handlers_and_prints_one_json_object() -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "storage_cost.py")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    figures = json.loads(completed.stdout)  # one object: the handlers' metric lines go elsewhere
    assert figures["sessions"] > 0
    assert figures["sealer_requests"]["kms:Sign"] >= figures["sessions"]  # every session was sealed
    assert figures["s3_archive_bytes_per_event"] > 0
