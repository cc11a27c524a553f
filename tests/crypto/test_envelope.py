"""The envelope primitives: sealing round trips, and every binding that must make opening fail."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.crypto.cipher import EnvelopeCipher
from cortex.crypto.envelope import (
    KdfParams,
    MasterKey,
    derive_master_key,
    field_aad,
    open_field,
    seal_field,
)
from cortex.errors import ConfigError, DecryptionError, WrongKey

_KEY = AESGCM(bytes(range(32)))
_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(),
    tenant=_NAMES,
    fact_id=_NAMES,
    field=st.sampled_from(["content", "meta"]),
    version=st.integers(min_value=1, max_value=2**31),
)
def test_a_sealed_field_opens_to_exactly_its_plaintext(
    text: str, tenant: str, fact_id: str, field: str, version: int
) -> None:
    sealed = seal_field(_KEY, version, tenant, fact_id, field, text)
    assert sealed.isascii()
    assert open_field(_KEY, version, tenant, fact_id, field, sealed) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1), tenant=_NAMES, other=_NAMES)
def test_a_sealed_field_does_not_open_for_another_tenant(
    text: str, tenant: str, other: str
) -> None:
    sealed = seal_field(_KEY, 1, tenant, "F1", "content", text)
    if other != tenant:
        with pytest.raises(DecryptionError):
            open_field(_KEY, 1, other, "F1", "content", sealed)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    first = seal_field(_KEY, 1, "acme", "F1", "content", "same text")
    second = seal_field(_KEY, 1, "acme", "F1", "content", "same text")
    assert first != second  # a fresh nonce each time: equal facts do not look equal on disk


@pytest.mark.parametrize(
    ("tenant", "fact_id", "field", "version"),
    [
        ("other", "F1", "content", 1),
        ("acme", "F2", "content", 1),
        ("acme", "F1", "meta", 1),
        ("acme", "F1", "content", 2),
    ],
)
def test_a_ciphertext_moved_to_another_tenant_fact_field_or_version_fails(
    tenant: str, fact_id: str, field: str, version: int
) -> None:
    sealed = seal_field(_KEY, 1, "acme", "F1", "content", "the launch code is 0000")
    with pytest.raises(DecryptionError) as caught:
        open_field(_KEY, version, tenant, fact_id, field, sealed)
    assert caught.value.fact_id == fact_id
    assert fact_id in str(caught.value)


def test_every_flipped_byte_of_a_ciphertext_is_detected() -> None:
    sealed = seal_field(_KEY, 1, "acme", "F1", "content", "short secret")
    raw = base64.b64decode(sealed)
    for index in range(len(raw)):
        damaged = bytearray(raw)
        damaged[index] ^= 0x01
        with pytest.raises(DecryptionError):
            open_field(_KEY, 1, "acme", "F1", "content", base64.b64encode(damaged).decode())


def test_the_associated_data_is_canonical_json_naming_where_the_value_belongs() -> None:
    assert field_aad("acme", "01J", "content", 3) == (
        b'{"fact":"01J","field":"content","purpose":"cortex/field","tenant":"acme","version":3}'
    )


def test_a_wrapped_data_key_is_bound_to_its_tenant_and_version() -> None:
    master = MasterKey.generate()
    data_key = AESGCM.generate_key(bit_length=256)
    wrapped = master.wrap(data_key, "acme", 2)
    assert master.unwrap(wrapped, "acme", 2) == data_key
    for tenant, version in (("other", 2), ("acme", 1)):
        with pytest.raises(WrongKey):
            master.unwrap(wrapped, tenant, version)
    with pytest.raises(WrongKey):
        MasterKey.generate().unwrap(wrapped, "acme", 2)


def test_the_check_value_accepts_its_own_master_key_only() -> None:
    master = MasterKey.generate()
    check = master.make_check()
    assert master.opens(check)
    assert not MasterKey.generate().opens(check)
    assert not master.opens(check[:-1] + bytes([check[-1] ^ 1]))
    assert repr(master) == "MasterKey(<secret>)"


def test_a_passphrase_derives_the_same_key_from_the_stored_parameters_only() -> None:
    params = KdfParams(salt=b"s" * 16, time_cost=1, memory_kib=8192, lanes=1)
    again = KdfParams.from_json(params.to_json())
    assert again == params
    key = derive_master_key("pass phrase", again)
    check = key.make_check()
    assert derive_master_key("pass phrase", params).opens(check)
    assert not derive_master_key("pass phrase!", params).opens(check)
    salted = KdfParams(salt=b"t" * 16, time_cost=1, memory_kib=8192, lanes=1)
    assert not derive_master_key("pass phrase", salted).opens(check)


def test_malformed_or_weakened_passphrase_parameters_are_refused() -> None:
    with pytest.raises(ConfigError):
        KdfParams.from_json('{"alg":"scrypt"}')
    weak = KdfParams(salt=b"s" * 4).to_json()
    with pytest.raises(ConfigError):
        KdfParams.from_json(weak)


def test_the_cipher_keeps_a_bounded_number_of_data_keys() -> None:
    master = MasterKey.generate()
    cipher = EnvelopeCipher(master, master.make_check(), max_keys=3)
    wrapped = {t: cipher.new_key(t, 1) for t in ("a", "b", "c", "d")}
    assert not cipher.has_key("a", 1)  # the least recently used key was let go
    assert all(cipher.has_key(t, 1) for t in ("b", "c", "d"))
    cipher.load_key("a", 1, wrapped["a"])  # and comes back from its wrapped form
    sealed = cipher.seal("a", 1, "F", "content", "back again")
    assert cipher.open("a", 1, "F", "content", sealed) == "back again"
    with pytest.raises(ConfigError):
        cipher.seal("zzz", 1, "F", "content", "no key loaded")
