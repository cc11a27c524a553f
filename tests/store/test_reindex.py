"""`reindex` rebuilds derived search data from the facts: after a model change, resumably."""

from __future__ import annotations

from collections.abc import Sequence

import apsw
import numpy as np
import pytest
from numpy.typing import NDArray

import cortex
from cortex import Settings
from cortex.search.embedder import MiniLMEmbedder


class _OtherModel:
    """A different (toy) embedder: deterministic unit vectors from a hash of the text."""

    model_id = "test/other-model"
    dim = 384

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(abs(hash(text)) % (2**32))
            vector = rng.standard_normal(self.dim).astype(np.float32)
            out[i] = vector / np.linalg.norm(vector)
        return out


CONTENTS = [f"Service {name} is owned by team {team}" for name, team in [
    ("billing", "payments"), ("search", "discovery"), ("login", "identity"), ("maps", "geo"),
    ("chat", "messaging"),
]]  # fmt: skip


def test_a_model_change_is_reported_and_reindex_fixes_it(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    with cortex.connect(settings, embedder=_OtherModel()) as old:
        old.store_many([{"content": c} for c in CONTENTS])
    with cortex.connect(settings, embedder=embedder) as memory:
        with pytest.raises(cortex.ConfigError, match="cortex reindex"):
            memory.search("who owns identity?", mode="vector")
        seen: list[tuple[int, int]] = []
        assert memory.reindex(batch=2, progress=lambda done, total: seen.append((done, total))) == 5
        assert seen == [(2, 5), (4, 5), (5, 5)]
        assert "login" in memory.search("who owns identity?", mode="vector")[0].fact.content
        assert memory.reindex() == 0  # nothing left to do
        assert memory.verify().ok  # the ledger is untouched by indexing


def test_facts_stored_without_an_embedder_become_searchable_by_meaning(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    with cortex.connect(settings) as text_only:
        text_only.store_many([{"content": c} for c in CONTENTS])
        with pytest.raises(cortex.ValidationError, match="full rebuild"):
            text_only.reindex()
    with cortex.connect(settings, embedder=embedder) as memory:
        assert memory.search("who owns identity?", mode="vector") == []
        assert memory.reindex() == 5
        assert "login" in memory.search("who owns identity?", mode="vector")[0].fact.content


def test_an_interrupted_reindex_resumes_where_it_stopped(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    with cortex.connect(settings) as text_only:
        text_only.store_many([{"content": c} for c in CONTENTS])

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(done: int, total: int) -> None:
        raise Interrupted

    with cortex.connect(settings, embedder=embedder) as memory:
        with pytest.raises(Interrupted):
            memory.reindex(batch=2, progress=stop_after_first_batch)
        assert memory.reindex(batch=2) == 3


def test_a_full_reindex_rebuilds_a_damaged_text_index(memory: cortex.CortexSync) -> None:
    memory.store_many([{"content": c} for c in CONTENTS])
    conn = apsw.Connection(str(memory.settings.database_path))
    conn.execute("DELETE FROM fact_text")
    conn.close()
    assert memory.search("identity", mode="text") == []
    assert memory.reindex(full=True) == 5
    assert "login" in memory.search("identity", mode="text")[0].fact.content
