"""Fixtures for encryption at rest: encrypted data directories (key file or passphrase)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.config import CONFIG_FILE_NAME, GATE_ACTIONS

PASSPHRASE = "correct horse battery staple, but longer"
# A string that appears nowhere else: any byte match in the files is a leak of the fact.
SECRET = "Quixotically-Zephyrous-Marmalade-7f3a9c"


def without_rotation_gate(home: Path) -> None:
    """Write the home's cortex.toml so that key rotations run without approval: these tests
    are about the keys; tests/crypto/test_rotation_gate.py covers rotations through the gate."""
    actions = [a for a in GATE_ACTIONS if a not in ("rotate_master", "rotate_data")]
    listed = ", ".join(f'"{a}"' for a in actions)
    (home / CONFIG_FILE_NAME).write_text(f"gated_actions = [{listed}]\n")


@pytest.fixture
def encrypted(tmp_path: Path) -> Settings:
    """A new data directory encrypted with a master key file (search off: the default)."""
    home = tmp_path / "home"
    result = cortex.init_home(Settings.load(home, embedder="none"), encrypt=True)
    assert result.encryption == "file"
    without_rotation_gate(home)
    return Settings.load(home, embedder="none")


@pytest.fixture
def vault(encrypted: Settings) -> Iterator[CortexSync]:
    """A blocking handle on the encrypted store."""
    with cortex.connect(encrypted) as handle:
        yield handle


@pytest.fixture
def passphrase_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A new data directory whose master key comes from $CORTEX_PASSPHRASE (set here)."""
    monkeypatch.setenv("CORTEX_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "home"
    result = cortex.init_home(Settings.load(home, embedder="none"), passphrase=PASSPHRASE)
    assert result.encryption == "passphrase"
    without_rotation_gate(home)
    return Settings.load(home, embedder="none")
