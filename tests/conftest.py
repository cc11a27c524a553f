"""Shared fixtures: real data directories on disk, real engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import cortex
from cortex import Cortex, CortexSync, Settings
from cortex.search.embedder import MiniLMEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a freshly initialised, text-only data directory in a temporary folder.

    Tests that need the embedding model use the session's `embedder` fixture instead of loading
    it per engine.
    """
    result = Settings.load(tmp_path / "home", checkpoint_every=1000, embedder="none")
    cortex.init_home(result)
    return result


@pytest.fixture
def memory(settings: Settings) -> Iterator[CortexSync]:
    """A blocking handle on a fresh store."""
    with cortex.connect(settings) as handle:
        yield handle


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Cortex]:
    """An async engine on a fresh store."""
    async with await cortex.open(settings) as opened:
        yield opened


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2 embedder, loaded once for the whole test session."""
    return MiniLMEmbedder()


@pytest.fixture
def searchable(settings: Settings, embedder: MiniLMEmbedder) -> Iterator[CortexSync]:
    """A blocking handle on a fresh store with the real embedding model."""
    with cortex.connect(settings, embedder=embedder) as handle:
        yield handle
