"""Shared fixtures: real data directories on disk, real engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import cortex
from cortex import Cortex, CortexSync, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a freshly initialised data directory in a temporary folder."""
    result = Settings.load(tmp_path / "home", checkpoint_every=1000)
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
