"""The benchmark scripts still run: each quick mode exits 0 and prints its one JSON line.

Figures are not checked here (performance is measured by running the scripts, not by tests);
what is checked is that a change to the engine did not break a script that measures it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    return json.loads(lines[0]), done.stderr


@pytest.mark.parametrize(
    ("script", "args", "keys"),
    [
        ("ingest.py", ["--quick"], {"batched", "env", "durability"}),
        ("ledger.py", ["--quick"], {"build", "consistency", "env"}),
        ("consensus.py", ["--quick"], {"cold_read_s", "after_one_vote", "env"}),
        ("purge.py", ["-n", "2000"], {"purge", "fts_merge", "environment"}),
    ],
)
def test_a_small_run_prints_one_json_line_of_figures(
    script: str, args: list[str], keys: set[str]
) -> None:
    figures, _ = _run(script, *args)

    assert keys <= set(figures)


def test_shield_bench_reports_quality_and_speed_and_says_when_public_cases_are_missing(
    tmp_path: Path,
) -> None:
    figures, log = _run("shield.py", "--quick", "--public", str(tmp_path / "absent"))

    assert {"recall", "fpr", "precision"} <= set(figures["fixture"])
    assert figures["public"] is None
    assert "not found; skipped" in log
    assert figures["throughput"]["bulk_fixture_text"]["findings"] > 0
    assert {"fixture_recall", "bulk_mb_per_s", "screen_us_per_fact"} <= set(figures["targets"])
