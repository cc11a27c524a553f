"""Missing and wrong keys, and ciphertexts altered or moved in the database: typed errors."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path

import apsw
import pytest

import cortex
from cortex import Settings
from cortex.crypto.envelope import MasterKey
from cortex.crypto.keys import write_private_file
from cortex.errors import ConfigError, Conflict, DecryptionError, IntegrityError, WrongKey
from cortex.store.sqlite import SqliteStore
from tests.crypto.conftest import PASSPHRASE


def _sql(database: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = apsw.Connection(str(database))
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def _two_facts(settings: Settings) -> tuple[str, str]:
    with cortex.connect(settings) as memory:
        first = memory.store("first secret: the gate code is 4711", meta={"n": 1})
        second = memory.store("second secret: the boat is blue", meta={"n": 2})
    return first.id, second.id


def test_the_master_key_file_is_private_and_never_replaced(encrypted: Settings) -> None:
    path = encrypted.master_key_path
    before = path.read_bytes()
    assert len(before) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cortex.init_home(encrypted, encrypt=True)  # again: a no-op
    assert path.read_bytes() == before


def test_a_missing_key_file_refuses_to_open_naming_the_file(encrypted: Settings) -> None:
    encrypted.master_key_path.unlink()
    with pytest.raises(ConfigError, match=r"master key file .*master\.key is missing") as caught:
        cortex.connect(encrypted)
    assert not isinstance(caught.value, WrongKey)


def test_another_key_file_is_the_wrong_key(encrypted: Settings) -> None:
    encrypted.master_key_path.unlink()
    write_private_file(encrypted.master_key_path, MasterKey.generate().material)
    with pytest.raises(WrongKey, match="does not open this store"):
        cortex.connect(encrypted)


def test_a_key_file_readable_by_others_is_refused(encrypted: Settings) -> None:
    os.chmod(encrypted.master_key_path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        cortex.connect(encrypted)


def test_a_passphrase_store_opens_with_its_passphrase_only(
    passphrase_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cortex.connect(passphrase_home) as memory:
        fact = memory.store("kept under a passphrase")
    assert not passphrase_home.master_key_path.exists()  # no key file: the passphrase is the key
    monkeypatch.delenv("CORTEX_PASSPHRASE")
    with pytest.raises(ConfigError, match="set the environment variable CORTEX_PASSPHRASE"):
        cortex.connect(passphrase_home)
    monkeypatch.setenv("CORTEX_PASSPHRASE", PASSPHRASE + "x")
    with pytest.raises(WrongKey, match="passphrase in CORTEX_PASSPHRASE does not open"):
        cortex.connect(passphrase_home)
    monkeypatch.setenv("MY_VAULT_PASS", PASSPHRASE)
    other_variable = passphrase_home.with_overrides(passphrase_env="MY_VAULT_PASS")
    with cortex.connect(other_variable) as memory:
        assert memory.get(fact.id).content == "kept under a passphrase"


def test_a_flipped_byte_in_the_content_column_is_a_decryption_error_naming_the_fact(
    encrypted: Settings,
) -> None:
    first, second = _two_facts(encrypted)
    ((sealed,),) = _sql(encrypted.database_path, "SELECT content FROM facts WHERE id = ?", (first,))
    raw = bytearray(base64.b64decode(str(sealed)))
    raw[-5] ^= 0x40
    _sql(
        encrypted.database_path,
        "UPDATE facts SET content = ? WHERE id = ?",
        (base64.b64encode(raw).decode(), first),
    )
    with cortex.connect(encrypted) as memory:
        with pytest.raises(DecryptionError, match=first) as caught:
            memory.get(first)
        assert caught.value.fact_id == first
        assert caught.value.field == "content"
        assert memory.get(second).content == "second secret: the boat is blue"
        report = memory.verify()
    assert not report.ok
    assert [(p.kind, p.seq) for p in report.problems] == [("content_changed", 0)]


def test_a_ciphertext_copied_into_another_row_does_not_decrypt_there(encrypted: Settings) -> None:
    first, second = _two_facts(encrypted)
    _sql(
        encrypted.database_path,
        "UPDATE facts SET content = (SELECT content FROM facts WHERE id = ?),"
        " meta = (SELECT meta FROM facts WHERE id = ?) WHERE id = ?",
        (first, first, second),
    )
    with cortex.connect(encrypted) as memory:
        with pytest.raises(DecryptionError, match=second) as caught:
            memory.get(second)
        assert caught.value.fact_id == second
        assert memory.get(first).content == "first secret: the gate code is 4711"
        with pytest.raises(DecryptionError):
            memory.list(limit=10)
        report = memory.verify()
    assert [p.kind for p in report.problems] == ["content_changed"]


def test_a_ciphertext_moved_to_another_tenant_does_not_decrypt_there(encrypted: Settings) -> None:
    with cortex.connect(encrypted) as memory:
        mine = memory.store("acme's secret plan", tenant="acme")
        theirs = memory.store("globex's harmless note", tenant="globex")
    _sql(
        encrypted.database_path,
        "UPDATE facts SET content = (SELECT content FROM facts WHERE id = ?) WHERE id = ?",
        (mine.id, theirs.id),
    )
    with cortex.connect(encrypted) as memory, pytest.raises(DecryptionError, match=theirs.id):
        memory.get(theirs.id, tenant="globex")


def test_a_row_put_back_in_the_clear_is_an_integrity_error(encrypted: Settings) -> None:
    first, _ = _two_facts(encrypted)
    _sql(
        encrypted.database_path,
        "UPDATE facts SET content = 'first secret: the gate code is 4711', meta = '{\"n\":1}',"
        " key_version = NULL WHERE id = ?",
        (first,),
    )
    with cortex.connect(encrypted) as memory:
        with pytest.raises(IntegrityError, match="in the clear"):
            memory.get(first)
        assert [p.kind for p in memory.verify().problems] == ["content_changed"]


def test_a_deleted_data_key_is_named_when_its_facts_are_read(encrypted: Settings) -> None:
    first, _ = _two_facts(encrypted)
    _sql(encrypted.database_path, "DELETE FROM data_keys")
    with cortex.connect(encrypted) as memory, pytest.raises(ConfigError, match="data key 1"):
        memory.get(first)


def test_the_store_itself_refuses_an_encrypted_database_without_a_cipher(
    encrypted: Settings,
) -> None:
    async def open_plain() -> None:
        store = await SqliteStore.open(encrypted.database_path, create=False)
        await store.close()

    with pytest.raises(ConfigError, match="is encrypted"):
        asyncio.run(open_plain())


def test_a_store_with_data_in_the_clear_cannot_be_encrypted_afterwards(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(settings)
    with cortex.connect(settings) as memory:
        memory.store("plain old fact")
    with pytest.raises(Conflict, match="holds data in the clear"):
        cortex.init_home(settings, encrypt=True)
    assert not settings.master_key_path.exists()  # no orphan key was left behind
    with cortex.connect(settings) as memory:
        assert not memory.engine.encrypted


def test_an_empty_store_can_be_encrypted_by_init_again(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "home", embedder="none")
    assert cortex.init_home(settings).encryption is None
    assert cortex.init_home(settings, encrypt=True).encryption == "file"
    with cortex.connect(settings) as memory:
        assert memory.engine.encrypted
        fact = memory.store("sealed from the first fact on")
    ((version,),) = _sql(
        settings.database_path, "SELECT key_version FROM facts WHERE id = ?", (fact.id,)
    )
    assert version == 1
