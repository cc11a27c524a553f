"""`cortex serve` and `cortex keys`: real processes, real ports, the SDK client against them."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import cortex
from cortex.cli import app
from cortex.client import Client

CORTEX = str(Path(sys.executable).with_name("cortex"))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return {**env, "CORTEX_HOME": str(home), "CORTEX_EMBEDDER": "none"}


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env=_env(home)).invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _serving(home: Path, *extra: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [CORTEX, "serve", "--port", str(port), "--log-level", "warning", *extra],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "cortex serve did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, process.communicate()[1].decode()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    cortex.init_home(cortex.Settings.load(path, embedder="none"))
    return path


def test_keys_create_prints_the_key_once_and_list_and_revoke_show_records(home: Path) -> None:
    code, out, err = _cli(home, "keys", "create", "--tenant", "acme", "--role", "writer")
    assert code == 0
    key = out.strip()
    assert key.startswith("ctx_")
    assert "Authorization: Bearer" in err
    key_id = key.split("_")[1]
    code, out, _ = _cli(home, "keys", "list", "--json")
    records = json.loads(out)
    assert [(r["key_id"], r["tenant"], r["role"], r["state"]) for r in records] == [
        (key_id, "acme", "writer", "active")
    ]
    assert key not in out
    assert _cli(home, "keys", "revoke", key_id)[0] == 0
    assert json.loads(_cli(home, "keys", "list", "--json")[1])[0]["state"] == "revoked"
    assert _cli(home, "keys", "revoke", "0000000000000000")[0] == 3


def test_keys_create_if_missing_makes_the_first_admin_key_only_once(home: Path) -> None:
    args = ("keys", "create", "--tenant", "default", "--role", "admin", "--if-missing")
    code, first, err = _cli(home, *args)
    assert code == 0
    assert first.strip().startswith("ctx_")
    assert "curl -H 'Authorization: Bearer ctx_" in err
    code, second, err = _cli(home, *args)
    assert code == 0
    assert second == ""
    assert "none created" in err
    assert len(json.loads(_cli(home, "keys", "list", "--json")[1])) == 1


def test_keys_create_refuses_a_bad_role_and_a_past_expiry(home: Path) -> None:
    assert _cli(home, "keys", "create", "--tenant", "acme", "--role", "root")[0] == 2
    past = ("--expires", "2001-01-01")
    assert _cli(home, "keys", "create", "--tenant", "acme", *past)[0] == 2


def test_keys_create_binds_an_agent_and_list_shows_it(home: Path) -> None:
    args = ("keys", "create", "--tenant", "acme", "--role", "writer", "--agent", "planner")
    code, out, err = _cli(home, *args)
    assert code == 0
    assert "agent planner" in err
    code, listed, _ = _cli(home, "keys", "list")
    assert code == 0
    assert "planner" in listed
    records = json.loads(_cli(home, "keys", "list", "--json")[1])
    assert [(r["key_id"], r["agent"]) for r in records] == [(out.strip().split("_")[1], "planner")]
    code, _, err = _cli(home, "keys", "create", "--tenant", "acme", "--agent", "key-abc")
    assert code == 2
    assert "'key-'" in err
    assert _cli(home, "keys", "create", "--tenant", "acme", "--agent", "no spaces")[0] == 2


def test_a_key_store_from_before_agents_gains_the_column(home: Path) -> None:
    """service.db files made before keys could name an agent open, keep their keys and work."""
    settings = cortex.Settings.load(home)
    (settings.service_database_path).unlink(missing_ok=True)
    with sqlite3.connect(settings.service_database_path) as conn:
        conn.executescript(
            """CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, tenant TEXT NOT NULL,
            role TEXT NOT NULL, project TEXT, created TEXT NOT NULL, expires TEXT,
            revoked TEXT, key_hmac TEXT NOT NULL);
            INSERT INTO api_keys VALUES
              ('00112233445566ff', 'acme', 'reader', NULL, '2026-01-01T00:00:00Z', NULL, NULL,
               'x');"""
        )
    conn.close()
    code, _, _ = _cli(home, "keys", "create", "--tenant", "acme", "--agent", "planner")
    assert code == 0
    records = json.loads(_cli(home, "keys", "list", "--json")[1])
    assert next((r["key_id"], r["agent"]) for r in records) == ("00112233445566ff", None)
    assert records[1]["agent"] == "planner"


@pytest.mark.parametrize(
    "command", [("serve",), ("keys", "create"), ("keys", "list"), ("keys", "revoke")]
)
def test_help_explains_with_an_example(home: Path, command: tuple[str, ...]) -> None:
    code, out, _ = _cli(home, *command, "--help")
    assert code == 0
    assert "Example" in out
    assert f"cortex {' '.join(command)}" in out


def test_serve_without_an_initialised_home_says_to_run_init(tmp_path: Path) -> None:
    code, _, err = _cli(tmp_path / "none", "serve")
    assert code == 4
    assert "cortex init" in err


def test_serve_answers_the_sdk_and_stops_cleanly_on_interrupt(home: Path) -> None:
    code, out, _ = _cli(home, "keys", "create", "--tenant", "acme", "--role", "admin")
    assert code == 0
    with _serving(home) as url, Client(url, out.strip()) as client:
        fact = client.store("served by cortex serve")
        assert client.get(fact.id) == fact
        metrics = httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {out.strip()}"}
        ).text
        assert "cortex_http_open_connections" in metrics
    with cortex.connect(cortex.Settings.load(home, embedder="none")) as memory:
        assert memory.get(fact.id, tenant="acme").content == "served by cortex serve"


def test_serve_with_two_workers_shares_one_store(home: Path) -> None:
    key = _cli(home, "keys", "create", "--tenant", "acme", "--role", "writer")[1].strip()
    with _serving(home, "--workers", "2") as url:
        ids = []
        for number in range(8):
            with Client(url, key) as client:  # a new connection each time: both workers serve
                ids.append(client.store(f"worker fact {number}").id)
        with Client(url, key) as client:
            listed = {f.id for f in client.list(limit=100).items}
            assert set(ids) <= listed
            assert client.verify().ok
