"""The guided demo that `make run` shows works on a fresh data directory, twice in a row."""

from __future__ import annotations

from pathlib import Path

import pytest

import cortex
from cortex import demo


def test_demo_stores_proves_and_verifies_on_a_fresh_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    cortex.init_home(cortex.Settings.load(home))
    assert demo.main(["--home", str(home)]) == 0
    assert demo.main(["--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert out.count("verified") == 2
    assert "-> OK" in out
    with cortex.connect(home) as memory:
        assert memory.stats().facts == 8  # 3 stored + 1 superseding version, per run
        assert memory.verify().ok


def test_demo_on_an_uninitialised_home_says_to_run_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.main(["--home", str(tmp_path / "none")]) == 4
    assert "cortex init" in capsys.readouterr().out
