"""The installed `cortex` script as a real process: exit codes, stdin, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

CORTEX = Path(sys.executable).parent / "cortex"


def _run(home: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env["CORTEX_EMBEDDER"] = "none"
    env["CORTEX_HOME"] = str(home)
    return subprocess.run(
        [str(CORTEX), *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory initialised by the real `cortex init`."""
    path = tmp_path / "home"
    assert _run(path, "init").returncode == 0
    return path


def test_the_console_script_is_installed() -> None:
    assert CORTEX.exists(), f"{CORTEX} is missing: install the package (pip install -e .)"


def test_jsonl_on_stdin_is_stored_and_listed(home: Path) -> None:
    lines = b'{"content": "from a pipe"}\n{"content": "and another", "tags": ["pipe"]}\n'

    stored = _run(home, "store", "--file", "-", input=lines)
    listed = _run(home, "list", "--tag", "pipe", "--json")

    assert stored.returncode == 0, stored.stderr
    assert len(stored.stdout.split()) == 2
    assert [item["content"] for item in json.loads(listed.stdout)["items"]] == ["and another"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get", "01JNZ3Q8V4K2M7T9X1B5C6D8EF"], 3),
        (["list", "--as-of", "not-a-time"], 2),
        (["store", "x", "--meta", "{"], 2),
        (["list", "--bogus"], 2),
        (["verify"], 0),
    ],
)
def test_exit_codes(home: Path, args: list[str], code: int) -> None:
    assert _run(home, *args).returncode == code


def test_errors_are_one_line_on_stderr_without_a_traceback(home: Path, tmp_path: Path) -> None:
    results = [
        _run(home, "get", "01JNZ3Q8V4K2M7T9X1B5C6D8EF"),
        _run(home, "store", "--file", "-", input=b'{"content": "a"}\n{"content": \n'),
        _run(tmp_path / "uninitialised", "list"),
    ]

    for result in results:
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1
    assert "line 2" in results[1].stderr
    assert "cortex init" in results[2].stderr
    assert results[2].returncode == 4


def test_verify_after_tampering_exits_1(home: Path) -> None:
    fact_id = _run(home, "store", "to be tampered with").stdout.strip()
    connection = apsw.Connection(str(home / "cortex.db"))
    connection.execute("UPDATE facts SET content = 'x' WHERE id = ?", (fact_id,))
    connection.close()

    result = _run(home, "verify")

    assert result.returncode == 1
    assert "content_changed" in result.stdout
