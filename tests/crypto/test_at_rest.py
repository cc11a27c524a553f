"""What an encrypted store leaves on disk: a byte scan of every file under the data directory.

`encrypted_search = "none"` (the default) must leave no trace of a fact's content or meta in the
database, its WAL or the index files. `"full"` keeps the words in the full-text index: the test
records exactly that leak (docs/encryption.md documents it).
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

import cortex
from cortex import Settings
from cortex.engine import verify_export_sync
from cortex.errors import SearchDisabled
from cortex.search.embedder import MiniLMEmbedder
from tests.crypto.conftest import SECRET

META_SECRET = "Obsidian-Pangolin-Ledger-51e0d2"
# The parts of SECRET as the text index would keep them (lowercased words).
SECRET_WORDS = ("quixotically", "zephyrous", "marmalade", "7f3a9c")


def _files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def _occurrences(home: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """For each needle (as UTF-8, any case), the files under `home` whose bytes contain it."""
    found: dict[str, list[str]] = {}
    for path in _files(home):
        data = path.read_bytes().lower()
        for needle in needles:
            if needle.lower().encode() in data:
                found.setdefault(needle, []).append(path.name)
    return found


def _store_secrets(settings: Settings) -> str:
    with cortex.connect(settings) as memory:
        fact = memory.store(
            f"The vault combination is {SECRET}, tell no one",
            tags=["ops"],
            meta={"note": META_SECRET},
        )
        memory.store_many([{"content": f"filler fact number {i}"} for i in range(50)])
        return fact.id


def _checkpoint_wal(database: Path) -> None:
    conn = apsw.Connection(str(database))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def test_with_search_off_no_file_under_the_home_holds_the_content_or_meta(
    encrypted: Settings,
) -> None:
    needles = (SECRET, META_SECRET, *SECRET_WORDS)
    with cortex.connect(encrypted) as memory:
        fact = memory.store(
            f"The vault combination is {SECRET}, tell no one", meta={"note": META_SECRET}
        )
        # Scanned while the engine is open: the write is still in the WAL.
        assert Path(f"{encrypted.database_path}-wal").stat().st_size > 0
        assert _occurrences(encrypted.home, needles) == {}
        assert memory.get(fact.id).content.startswith("The vault combination is " + SECRET)
    _checkpoint_wal(encrypted.database_path)
    assert _occurrences(encrypted.home, needles) == {}
    assert len(_files(encrypted.home)) >= 3  # the scan did look at the database and keys


def test_with_full_search_the_text_index_keeps_the_words_but_not_the_text_or_meta(
    tmp_path: Path,
) -> None:
    settings = Settings.load(tmp_path / "home", embedder="none", encrypted_search="full")
    cortex.init_home(settings, encrypt=True)
    _store_secrets(settings)
    _checkpoint_wal(settings.database_path)
    found = _occurrences(settings.home, (SECRET, META_SECRET, *SECRET_WORDS))
    # The documented leak of "full": the full-text index holds each word of the content
    # (FTS5 keeps terms in the clear to match them), in the database file.
    assert found.get("7f3a9c") == ["cortex.db"]
    # The content as written and the meta never appear: those columns are encrypted.
    assert SECRET not in found
    assert META_SECRET not in found
    with cortex.connect(settings) as memory:
        (hit,) = memory.search("zephyrous marmalade", mode="text")
        assert SECRET in hit.fact.content


def test_vector_search_works_and_text_search_is_refused_with_search_vector(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    settings = Settings.load(tmp_path / "home", encrypted_search="vector")
    cortex.init_home(settings, encrypt=True)
    with cortex.connect(settings, embedder=embedder) as memory:
        memory.store(f"The vault combination is {SECRET}", meta={"note": META_SECRET})
        memory.store("Bananas ripen faster next to apples")
        hits = memory.search("what opens the safe?", k=1)
        assert SECRET in hits[0].fact.content
        with pytest.raises(SearchDisabled, match="text search is off"):
            memory.search("vault", mode="text")
    _checkpoint_wal(settings.database_path)
    assert _occurrences(settings.home, (SECRET, META_SECRET, *SECRET_WORDS)) == {}


def test_search_and_reindex_are_refused_with_search_off(encrypted: Settings) -> None:
    with cortex.connect(encrypted) as memory:
        memory.store("something to find")
        with pytest.raises(SearchDisabled, match="encrypted_search"):
            memory.search("something")
        with pytest.raises(SearchDisabled):
            memory.reindex(full=True)


def test_ledger_digests_cover_the_plaintext_so_exports_verify_unchanged(
    encrypted: Settings, tmp_path: Path
) -> None:
    fact_id = _store_secrets(encrypted)
    ungated = encrypted.with_overrides(gated_actions=())  # export without an admin's approval
    with cortex.connect(ungated) as memory:
        fact = memory.get(fact_id)
        report = memory.verify()
        proof = memory.inclusion_proof(fact_id)
        bundle = tmp_path / "export.jsonl.gz"
        memory.export(bundle)
    assert report.ok
    assert report.facts == 51
    assert proof.seq == fact.seq
    assert verify_export_sync(bundle).ok
    # The export is for auditors: it holds the plaintext (the digest covers it).
    with cortex.connect(encrypted) as memory:
        assert fact.digest().hex() in str(memory.history(fact_id)[0].transactions[0].payload)
