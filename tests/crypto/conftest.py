"""Fixtures for encryption at rest: encrypted data directories (key file or passphrase)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cortex
from cortex import CortexSync, Settings

PASSPHRASE = "correct horse battery staple, but longer"
# A string that appears nowhere else: any byte match in the files is a leak of the fact.
SECRET = "Quixotically-Zephyrous-Marmalade-7f3a9c"


@pytest.fixture
def encrypted(tmp_path: Path) -> Settings:
    """A new data directory encrypted with a master key file (search off: the default)."""
    settings = Settings.load(tmp_path / "home", embedder="none")
    result = cortex.init_home(settings, encrypt=True)
    assert result.encryption == "file"
    return settings


@pytest.fixture
def vault(encrypted: Settings) -> Iterator[CortexSync]:
    """A blocking handle on the encrypted store."""
    with cortex.connect(encrypted) as handle:
        yield handle


@pytest.fixture
def passphrase_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A new data directory whose master key comes from $CORTEX_PASSPHRASE (set here)."""
    monkeypatch.setenv("CORTEX_PASSPHRASE", PASSPHRASE)
    settings = Settings.load(tmp_path / "home", embedder="none")
    result = cortex.init_home(settings, passphrase=PASSPHRASE)
    assert result.encryption == "passphrase"
    return settings
