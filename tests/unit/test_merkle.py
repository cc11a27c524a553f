"""Specification of cortex.ledger.merkle: RFC 9162 tree hashes, proofs and store-backed provers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.ledger.merkle import (
    SubtreeKey,
    completed_subtrees,
    consistency_proof,
    consistency_proof_from_subtrees,
    extend_frontier,
    frontier_keys,
    frontier_root,
    inclusion_proof,
    inclusion_proof_from_subtrees,
    last_leaf,
    leaf_hash,
    merkle_root,
    node_hash,
    range_hash,
    root_from_subtrees,
    subtree_keys_for_consistency,
    subtree_keys_for_inclusion,
    subtree_keys_for_root,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 128
EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# ---- RFC 6962 reference tree (certificate-transparency merkle_tree_test, transparency-dev) ----

REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [  # REFERENCE_ROOTS[n - 1] is the root of the first n leaves
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, proof). The upstream tables number leaves from 1.
REFERENCE_INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
REFERENCE_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# ---- a generic test tree of MAX_SIZE entries and its store of complete subtrees ----

ENTRIES = [b"cortex entry %d" % i for i in range(MAX_SIZE)]
LEAF_HASHES = [leaf_hash(entry) for entry in ENTRIES]
ROOTS = [merkle_root(ENTRIES[:n]) for n in range(MAX_SIZE + 1)]


def _build_store(leaves: Sequence[bytes]) -> dict[SubtreeKey, bytes]:
    """Append ``leaves`` one by one, storing every node `completed_subtrees` reports."""
    store: dict[SubtreeKey, bytes] = {}
    for index, leaf in enumerate(leaves):
        for level, node, digest in completed_subtrees(index, leaf, lambda lv, i: store[(lv, i)]):
            store[(level, node)] = digest
    return store


STORE = _build_store(LEAF_HASHES)


def _getter(tree_size: int, reads: list[SubtreeKey] | None = None) -> Callable[[int, int], bytes]:
    """A store lookup for a tree of ``tree_size`` that refuses nodes not complete within it.

    The store holds nodes of the full MAX_SIZE tree, so a prover that reads a node that only
    exists in a later, larger tree is caught here.
    """

    def get(level: int, index: int) -> bytes:
        assert (index + 1) << level <= tree_size, f"({level}, {index}) not in tree {tree_size}"
        if reads is not None:
            reads.append((level, index))
        return STORE[(level, index)]

    return get


def _key_budget(tree_size: int) -> int:
    """2 * ceil(log2(n)) + 2; for n >= 1, ceil(log2(n)) == (n - 1).bit_length()."""
    return 2 * (tree_size - 1).bit_length() + 2


# ---- independent oracles: literal transcriptions of RFC 9162 ----


def _split(size: int) -> int:
    return 1 << ((size - 1).bit_length() - 1)


def _rfc_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1 over leaf hashes, by the literal recursion."""
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_rfc_mth(hashes[:k]), _rfc_mth(hashes[k:]))


def _rfc_path_sides(index: int, size: int) -> list[str]:
    """For PATH(index, D[size]) of RFC 9162 §2.1.3.1: on which side each sibling sits."""
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*_rfc_path_sides(index, k), "right"]
    return [*_rfc_path_sides(index - k, size - k), "left"]


def _rfc_verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step (fn/sn form)."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def _rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (fn/sn form). Only for 0 < first < second."""
    assert 0 < first < second
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


def _flip(data: bytes, position: int, mask: int) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


# ============================================================================================
# Hashing and roots
# ============================================================================================


def test_leaf_and_node_hashes_are_domain_separated_sha256() -> None:
    left, right = b"L" * 32, b"R" * 32
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(left + right) != node_hash(left, right)


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert merkle_root([]).hex() == EMPTY_ROOT_HEX
    assert root_from_subtrees(0, _getter(0)).hex() == EMPTY_ROOT_HEX


@pytest.mark.parametrize("size", range(1, 9))
def test_root_of_every_prefix_of_the_rfc6962_reference_tree_matches_the_reference(
    size: int,
) -> None:
    assert merkle_root(REFERENCE_LEAVES[:size]).hex() == REFERENCE_ROOTS[size - 1]


def test_merkle_root_equals_the_literal_rfc_recursion_for_sizes_up_to_128() -> None:
    for size in range(1, MAX_SIZE + 1):
        assert ROOTS[size] == _rfc_mth(LEAF_HASHES[:size]), size


def test_merkle_root_of_100k_entries_equals_the_root_built_by_appending_subtrees() -> None:
    entries = [i.to_bytes(4, "big") for i in range(100_000)]
    store = _build_store([leaf_hash(e) for e in entries])
    assert merkle_root(entries) == root_from_subtrees(100_000, lambda lv, i: store[(lv, i)])


# ============================================================================================
# Reference proof vectors
# ============================================================================================


@pytest.mark.parametrize(("index", "size", "expected"), REFERENCE_INCLUSION_PROOFS)
def test_inclusion_proofs_of_the_reference_tree_match_the_reference_vectors(
    index: int, size: int, expected: list[str]
) -> None:
    leaves = REFERENCE_LEAVES[:size]
    proof = inclusion_proof(leaves, index)
    assert [h.hex() for h in proof] == expected
    root = bytes.fromhex(REFERENCE_ROOTS[size - 1])
    assert verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
    store = _build_store([leaf_hash(e) for e in leaves])
    assert inclusion_proof_from_subtrees(index, size, lambda lv, i: store[(lv, i)]) == proof


@pytest.mark.parametrize(("old_size", "new_size", "expected"), REFERENCE_CONSISTENCY_PROOFS)
def test_consistency_proofs_of_the_reference_tree_match_the_reference_vectors(
    old_size: int, new_size: int, expected: list[str]
) -> None:
    leaves = REFERENCE_LEAVES[:new_size]
    proof = consistency_proof(leaves, old_size)
    assert [h.hex() for h in proof] == expected
    old_root = bytes.fromhex(REFERENCE_ROOTS[old_size - 1])
    new_root = bytes.fromhex(REFERENCE_ROOTS[new_size - 1])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    store = _build_store([leaf_hash(e) for e in leaves])
    get = lambda lv, i: store[(lv, i)]  # noqa: E731
    assert consistency_proof_from_subtrees(old_size, new_size, get) == proof


def test_consistency_proof_6_to_7_is_the_hand_derived_subproof() -> None:
    # Not an upstream vector: SUBPROOF(6, D[7], true) unrolled by hand per RFC 9162 §2.1.4.1 is
    # [MTH(D[4:6]), MTH(D[6:7]), MTH(D[0:4])]; MTH(D[4:6]) is the first element of the
    # reference 6 -> 8 proof and MTH(D[0:4]) the reference root of size 4.
    expected = [
        bytes.fromhex(REFERENCE_CONSISTENCY_PROOFS[2][2][0]),
        leaf_hash(REFERENCE_LEAVES[6]),
        bytes.fromhex(REFERENCE_ROOTS[3]),
    ]
    assert consistency_proof(REFERENCE_LEAVES[:7], 6) == expected


# ============================================================================================
# Completeness: honest proofs verify (exhaustive up to 128 leaves)
# ============================================================================================


def test_inclusion_proof_verifies_for_every_leaf_of_trees_up_to_128() -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            proof = inclusion_proof(ENTRIES[:size], index)
            assert len(proof) == len(_rfc_path_sides(index, size))
            assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size]), (
                index,
                size,
            )
            assert _rfc_verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


def test_consistency_proof_verifies_for_every_pair_of_sizes_up_to_128() -> None:
    for new_size in range(1, MAX_SIZE + 1):
        for old_size in range(1, new_size + 1):
            proof = consistency_proof(ENTRIES[:new_size], old_size)
            old_root, new_root = ROOTS[old_size], ROOTS[new_size]
            assert verify_consistency(old_size, new_size, old_root, new_root, proof), (
                old_size,
                new_size,
            )
            if old_size < new_size:
                assert _rfc_verify_consistency(old_size, new_size, old_root, new_root, proof)


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    assert consistency_proof(ENTRIES[:5], 5) == []
    assert verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])


def test_consistency_from_the_empty_tree_needs_an_empty_proof_and_ignores_the_roots() -> None:
    # Documented transparency-dev/merkle behaviour: every tree extends the empty tree.
    assert consistency_proof(ENTRIES[:9], 0) == []
    assert consistency_proof_from_subtrees(0, 9, _getter(9)) == []
    assert verify_consistency(0, 9, ROOTS[0], ROOTS[9], [])
    assert verify_consistency(0, 9, ROOTS[3], ROOTS[9], [])
    assert not verify_consistency(0, 9, ROOTS[0], ROOTS[9], [ROOTS[9]])
    assert verify_consistency(0, 0, ROOTS[0], ROOTS[0], [])
    assert not verify_consistency(0, 0, ROOTS[0], ROOTS[1], [])


def test_reference_provers_reject_out_of_range_arguments() -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(ENTRIES[:4], 4)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(ENTRIES[:4], -1)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(ENTRIES[:4], 5)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(ENTRIES[:4], -1)


# ============================================================================================
# Soundness: tampered inclusion proofs fail
# ============================================================================================

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def inclusion_cases(draw: st.DrawFn, min_size: int = 1) -> tuple[int, int, list[bytes]]:
    size = draw(st.integers(min_value=min_size, max_value=MAX_SIZE))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return index, size, inclusion_proof(ENTRIES[:size], index)


@settings(max_examples=300, deadline=None)
@given(case=inclusion_cases(min_size=2), data=st.data())
def test_inclusion_fails_when_any_byte_of_any_proof_element_changes(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    index, size, proof = case
    element = data.draw(st.integers(0, len(proof) - 1))
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    tampered = list(proof)
    tampered[element] = _flip(proof[element], position, mask)
    assert not verify_inclusion(LEAF_HASHES[index], index, size, tampered, ROOTS[size])


@settings(max_examples=300, deadline=None)
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_fails_when_the_root_or_the_leaf_changes(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    index, size, proof = case
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, position, mask))
    assert not verify_inclusion(_flip(leaf, position, mask), index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(case=inclusion_cases(min_size=2), data=st.data())
def test_inclusion_fails_for_any_other_index(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    index, size, proof = case
    other = data.draw(st.integers(-(2**70), 2**70).filter(lambda i: i != index))
    assert not verify_inclusion(LEAF_HASHES[index], other, size, proof, ROOTS[size])


@settings(max_examples=300, deadline=None)
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_fails_when_a_proof_element_is_dropped_or_added(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    index, size, proof = case
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    extra = data.draw(st.binary(min_size=32, max_size=32) | st.sampled_from(proof or [root]))
    at = data.draw(st.integers(0, len(proof)))
    assert not verify_inclusion(leaf, index, size, [*proof[:at], extra, *proof[at:]], root)
    if proof:
        drop = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_inclusion(leaf, index, size, proof[:drop] + proof[drop + 1 :], root)


@settings(max_examples=500, deadline=None)
@given(case=inclusion_cases(), other_size=st.integers(-5, 4 * MAX_SIZE))
def test_inclusion_under_another_size_verifies_only_if_the_path_shape_is_unchanged(
    case: tuple[int, int, list[bytes]], other_size: int
) -> None:
    index, size, proof = case
    if other_size == size:
        return
    result = verify_inclusion(LEAF_HASHES[index], index, other_size, proof, ROOTS[size])
    if index >= other_size:
        assert result is False
        return
    same_shape = _rfc_path_sides(index, other_size) == _rfc_path_sides(index, size)
    assert result is same_shape
    assert result is _rfc_verify_inclusion(
        LEAF_HASHES[index], index, other_size, proof, ROOTS[size]
    )


def test_inclusion_binds_the_tree_size_only_through_the_path_shape() -> None:
    # Inherent to RFC 9162: leaf 0 has the path shape [right, right] in trees of 3 and 4
    # leaves, so the size-3 proof also checks out against the size-3 root when the size is
    # claimed to be 4. Sizes and roots must therefore come from the same signed checkpoint.
    proof = inclusion_proof(ENTRIES[:3], 0)
    assert verify_inclusion(LEAF_HASHES[0], 0, 4, proof, ROOTS[3])
    assert not verify_inclusion(LEAF_HASHES[0], 0, 5, proof, ROOTS[3])


# ============================================================================================
# Soundness: tampered consistency proofs fail
# ============================================================================================


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[int, int, list[bytes]]:
    """Pairs 0 < old_size < new_size <= 128 with their (non-empty) proofs."""
    new_size = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    old_size = draw(st.integers(min_value=1, max_value=new_size - 1))
    return old_size, new_size, consistency_proof(ENTRIES[:new_size], old_size)


@settings(max_examples=300, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_consistency_fails_when_any_byte_of_any_proof_element_changes(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    old_size, new_size, proof = case
    element = data.draw(st.integers(0, len(proof) - 1))
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    tampered = list(proof)
    tampered[element] = _flip(proof[element], position, mask)
    assert not verify_consistency(old_size, new_size, ROOTS[old_size], ROOTS[new_size], tampered)


@settings(max_examples=300, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_consistency_fails_when_either_root_changes(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    old_size, new_size, proof = case
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    old_root, new_root = ROOTS[old_size], ROOTS[new_size]
    assert not verify_consistency(
        old_size, new_size, _flip(old_root, position, mask), new_root, proof
    )
    assert not verify_consistency(
        old_size, new_size, old_root, _flip(new_root, position, mask), proof
    )
    assert not verify_consistency(old_size, new_size, new_root, old_root, proof)


@settings(max_examples=300, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_consistency_fails_when_a_proof_element_is_dropped_or_added(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    old_size, new_size, proof = case
    old_root, new_root = ROOTS[old_size], ROOTS[new_size]
    extra = data.draw(st.binary(min_size=32, max_size=32) | st.sampled_from([*proof, old_root]))
    at = data.draw(st.integers(0, len(proof)))
    longer = [*proof[:at], extra, *proof[at:]]
    assert not verify_consistency(old_size, new_size, old_root, new_root, longer)
    drop = data.draw(st.integers(0, len(proof) - 1))
    shorter = proof[:drop] + proof[drop + 1 :]
    assert not verify_consistency(old_size, new_size, old_root, new_root, shorter)


@settings(max_examples=500, deadline=None)
@given(
    case=consistency_cases(),
    claimed=st.tuples(st.integers(-3, MAX_SIZE), st.integers(-3, MAX_SIZE)),
)
def test_consistency_under_other_sizes_fails_unless_the_rfc_verifier_also_accepts(
    case: tuple[int, int, list[bytes]], claimed: tuple[int, int]
) -> None:
    old_size, new_size, proof = case
    claimed_old, claimed_new = claimed
    if claimed == (old_size, new_size):
        return
    old_root, new_root = ROOTS[old_size], ROOTS[new_size]
    result = verify_consistency(claimed_old, claimed_new, old_root, new_root, proof)
    if not 0 < claimed_old < claimed_new:
        assert result is False  # proof is non-empty and the roots differ
        return
    assert result is _rfc_verify_consistency(claimed_old, claimed_new, old_root, new_root, proof)
    if len(consistency_proof(ENTRIES[:claimed_new], claimed_old)) != len(proof):
        assert result is False


def test_consistency_binds_the_new_size_only_through_the_proof_shape() -> None:
    # Inherent to RFC 9162 (as for inclusion): the 2 -> 4 proof is [MTH(D[2:4])], which has
    # the same shape as a 2 -> 3 proof, so it also checks out for a claimed new size of 3.
    proof = consistency_proof(ENTRIES[:4], 2)
    assert verify_consistency(2, 3, ROOTS[2], ROOTS[4], proof)
    assert not verify_consistency(2, 5, ROOTS[2], ROOTS[4], proof)


# ============================================================================================
# Robustness: verifiers never raise and reject malformed input
# ============================================================================================

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.binary(min_size=32, max_size=32),
    st.lists(st.binary(max_size=40), max_size=8),
    st.lists(st.binary(min_size=32, max_size=32), max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=4),
)


@settings(max_examples=500, deadline=None)
@given(leaf=garbage, index=garbage, size=garbage, proof=garbage, root=garbage)
def test_verify_inclusion_never_raises_on_arbitrary_input(
    leaf: object, index: object, size: object, proof: object, root: object
) -> None:
    result = verify_inclusion(leaf, index, size, proof, root)  # type: ignore[arg-type]
    assert isinstance(result, bool)


@settings(max_examples=500, deadline=None)
@given(old=garbage, new=garbage, old_root=garbage, new_root=garbage, proof=garbage)
def test_verify_consistency_never_raises_on_arbitrary_input(
    old: object, new: object, old_root: object, new_root: object, proof: object
) -> None:
    result = verify_consistency(old, new, old_root, new_root, proof)  # type: ignore[arg-type]
    assert isinstance(result, bool)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(-(2**70), 2**70),
    size=st.integers(-(2**70), 2**70),
    leaf=st.binary(min_size=32, max_size=32),
    root=st.binary(min_size=32, max_size=32),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=80),
)
def test_verify_inclusion_of_random_hashes_never_raises_and_rejects_bad_positions(
    index: int, size: int, leaf: bytes, root: bytes, proof: list[bytes]
) -> None:
    result = verify_inclusion(leaf, index, size, proof, root)
    assert isinstance(result, bool)
    if index < 0 or size <= 0 or index >= size:
        assert result is False


@settings(max_examples=300, deadline=None)
@given(
    old=st.integers(-(2**70), 2**70),
    new=st.integers(-(2**70), 2**70),
    old_root=st.binary(min_size=32, max_size=32),
    new_root=st.binary(min_size=32, max_size=32),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=80),
)
def test_verify_consistency_of_random_hashes_never_raises_and_rejects_bad_sizes(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    result = verify_consistency(old, new, old_root, new_root, proof)
    assert isinstance(result, bool)
    if old < 0 or new < old:
        assert result is False


@settings(max_examples=200, deadline=None)
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_rejects_hashes_of_the_wrong_length(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    index, size, proof = case
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    length = data.draw(st.integers(0, 64).filter(lambda n: n != 32))
    bad = (leaf + root)[:length]
    assert not verify_inclusion(bad, index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, bad)
    if proof:
        element = data.draw(st.integers(0, len(proof) - 1))
        tampered = list(proof)
        tampered[element] = (proof[element] + root)[:length]
        assert not verify_inclusion(leaf, index, size, tampered, root)


@settings(max_examples=200, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_consistency_rejects_hashes_of_the_wrong_length(
    case: tuple[int, int, list[bytes]], data: st.DataObject
) -> None:
    old_size, new_size, proof = case
    old_root, new_root = ROOTS[old_size], ROOTS[new_size]
    length = data.draw(st.integers(0, 64).filter(lambda n: n != 32))
    assert not verify_consistency(old_size, new_size, (old_root * 2)[:length], new_root, proof)
    assert not verify_consistency(old_size, new_size, old_root, (new_root * 2)[:length], proof)
    element = data.draw(st.integers(0, len(proof) - 1))
    tampered = list(proof)
    tampered[element] = (proof[element] * 2)[:length]
    assert not verify_consistency(old_size, new_size, old_root, new_root, tampered)


@pytest.mark.parametrize(
    "args",
    [
        (LEAF_HASHES[0], True, 1, [], ROOTS[1]),  # bool is not an index
        (LEAF_HASHES[0], 0, True, [], ROOTS[1]),
        (LEAF_HASHES[0], 0, 0, [], ROOTS[0]),  # nothing is in the empty tree
        (LEAF_HASHES[0], -1, 1, [], ROOTS[1]),
        (LEAF_HASHES[0], 0, 1, None, ROOTS[1]),
        (LEAF_HASHES[0], 0, 1, b"", ROOTS[1]),  # bytes is a sequence, but not of hashes
        (LEAF_HASHES[0], 0, 1, [], bytearray(ROOTS[2])),
        (LEAF_HASHES[0], 0, 1.0, [], ROOTS[1]),
    ],
)
def test_verify_inclusion_returns_false_for_malformed_arguments(args: tuple[object, ...]) -> None:
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


def test_verify_accepts_bytearray_hashes_and_tuple_proofs() -> None:
    leaf, root5, root3 = bytearray(LEAF_HASHES[3]), bytearray(ROOTS[5]), bytearray(ROOTS[3])
    proof = tuple(inclusion_proof(ENTRIES[:5], 3))
    assert verify_inclusion(leaf, 3, 5, proof, root5)  # type: ignore[arg-type]
    cproof = tuple(consistency_proof(ENTRIES[:5], 3))
    assert verify_consistency(3, 5, root3, ROOTS[5], cproof)  # type: ignore[arg-type]


# ============================================================================================
# Store helpers
# ============================================================================================


def test_completed_subtrees_store_exactly_the_complete_aligned_subtrees() -> None:
    expected_keys = {
        (level, index)
        for level in range(MAX_SIZE.bit_length())
        for index in range(MAX_SIZE >> level)
    }
    assert set(STORE) == expected_keys
    for (level, index), digest in STORE.items():
        leaves = LEAF_HASHES[index << level : (index + 1) << level]
        assert digest == _rfc_mth(leaves), (level, index)


def test_completed_subtrees_lists_the_leaf_first_then_its_parents_while_the_index_is_odd() -> None:
    for leaf_index in range(MAX_SIZE):
        nodes = completed_subtrees(
            leaf_index, LEAF_HASHES[leaf_index], lambda lv, i: STORE[(lv, i)]
        )
        assert nodes[0] == (0, leaf_index, LEAF_HASHES[leaf_index])
        trailing_ones = (leaf_index ^ (leaf_index + 1)).bit_length() - 1
        assert [(lv, i) for lv, i, _ in nodes] == [
            (lv, leaf_index >> lv) for lv in range(trailing_ones + 1)
        ]


def test_completed_subtrees_reads_only_left_siblings() -> None:
    reads: list[SubtreeKey] = []

    def left(level: int, index: int) -> bytes:
        reads.append((level, index))
        return STORE[(level, index)]

    completed_subtrees(7, LEAF_HASHES[7], left)
    assert reads == [(0, 6), (1, 2), (2, 0)]


def test_completed_subtrees_rejects_a_negative_index_or_a_malformed_leaf() -> None:
    with pytest.raises(ValueError, match="negative"):
        completed_subtrees(-1, LEAF_HASHES[0], lambda lv, i: STORE[(lv, i)])
    with pytest.raises(ValueError, match="32 bytes"):
        completed_subtrees(0, b"short", lambda lv, i: STORE[(lv, i)])


def test_range_hash_equals_the_root_of_every_aligned_range_up_to_128() -> None:
    for start in range(MAX_SIZE):
        for end in range(start + 1, MAX_SIZE + 1):
            top = 1 << ((end - start).bit_length() - 1)
            if start % top:
                continue
            expected = merkle_root(ENTRIES[start:end])
            assert range_hash(start, end, _getter(end)) == expected, (start, end)


@pytest.mark.parametrize(("start", "end"), [(3, 3), (5, 2), (-1, 1), (1, 3), (2, 6), (4, 12)])
def test_range_hash_rejects_empty_negative_and_misaligned_ranges(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="range"):
        range_hash(start, end, _getter(MAX_SIZE))


def test_root_from_subtrees_equals_merkle_root_for_sizes_up_to_128() -> None:
    for size in range(MAX_SIZE + 1):
        reads: list[SubtreeKey] = []
        assert root_from_subtrees(size, _getter(size, reads)) == ROOTS[size]
        assert set(reads) == subtree_keys_for_root(size)
        assert len(reads) == size.bit_count()


def test_inclusion_proof_from_subtrees_equals_the_reference_for_all_sizes_up_to_128() -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            reads: list[SubtreeKey] = []
            proof = inclusion_proof_from_subtrees(index, size, _getter(size, reads))
            assert proof == inclusion_proof(ENTRIES[:size], index), (index, size)
            keys = subtree_keys_for_inclusion(index, size)
            assert set(reads) == keys
            assert len(keys) <= _key_budget(size)


def test_consistency_proof_from_subtrees_equals_the_reference_for_all_pairs_up_to_128() -> None:
    for new_size in range(MAX_SIZE + 1):
        for old_size in range(new_size + 1):
            reads: list[SubtreeKey] = []
            proof = consistency_proof_from_subtrees(old_size, new_size, _getter(new_size, reads))
            assert proof == consistency_proof(ENTRIES[:new_size], old_size), (old_size, new_size)
            keys = subtree_keys_for_consistency(old_size, new_size)
            assert set(reads) == keys
            assert len(keys) <= _key_budget(max(new_size, 1))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=2**62))
def test_keys_touched_stay_within_2_log2_n_plus_2_for_huge_trees(
    data: st.DataObject, size: int
) -> None:
    index = data.draw(st.integers(0, size - 1))
    old_size = data.draw(st.integers(0, size))
    budget = _key_budget(size)
    for key_set in (
        subtree_keys_for_inclusion(index, size),
        subtree_keys_for_consistency(old_size, size),
        subtree_keys_for_root(size),
    ):
        assert len(key_set) <= budget
        assert all((node + 1) << level <= size for level, node in key_set)


def test_store_provers_match_the_reference_deep_inside_a_100k_tree() -> None:
    entries = [i.to_bytes(4, "big") for i in range(100_000)]
    store = _build_store([leaf_hash(e) for e in entries])
    get = lambda lv, i: store[(lv, i)]  # noqa: E731
    size = 99_999
    assert inclusion_proof_from_subtrees(77_777, size, get) == inclusion_proof(
        entries[:size], 77_777
    )
    assert consistency_proof_from_subtrees(65_537, size, get) == consistency_proof(
        entries[:size], 65_537
    )


def test_store_provers_reject_invalid_arguments() -> None:
    get = _getter(MAX_SIZE)
    for index, size in [(-1, 4), (4, 4), (0, 0)]:
        with pytest.raises(ValueError, match="out of range"):
            inclusion_proof_from_subtrees(index, size, get)
        with pytest.raises(ValueError, match="out of range"):
            subtree_keys_for_inclusion(index, size)
    for old_size, new_size in [(-1, 4), (5, 4)]:
        with pytest.raises(ValueError, match="old_size <= new_size"):
            consistency_proof_from_subtrees(old_size, new_size, get)
        with pytest.raises(ValueError, match="old_size <= new_size"):
            subtree_keys_for_consistency(old_size, new_size)
    with pytest.raises(ValueError, match="negative"):
        root_from_subtrees(-1, get)


def test_store_provers_reject_a_stored_hash_of_the_wrong_length() -> None:
    def corrupt(level: int, index: int) -> bytes:
        return b"\x00" * 31

    with pytest.raises(ValueError, match="not a 32-byte hash"):
        root_from_subtrees(5, corrupt)
    with pytest.raises(ValueError, match="not a 32-byte hash"):
        inclusion_proof_from_subtrees(0, 5, corrupt)
    with pytest.raises(ValueError, match="not a 32-byte hash"):
        consistency_proof_from_subtrees(3, 5, corrupt)


def test_extend_frontier_completes_the_same_nodes_and_keeps_the_right_edge() -> None:
    """Appending leaf after leaf through the frontier gives the nodes `completed_subtrees`
    gives from all stored nodes, and the frontier's hashes fold to the tree's root."""
    stored: dict[tuple[int, int], bytes] = {}
    frontier: tuple[tuple[int, int, bytes], ...] = ()
    entries = [f"entry {n}".encode() for n in range(37)]
    leaves = [leaf_hash(entry) for entry in entries]
    for n, leaf in enumerate(leaves):
        done, frontier = extend_frontier(frontier, n, leaf)
        assert done == completed_subtrees(n, leaf, lambda lv, i: stored[(lv, i)])
        stored.update({(lv, i): h for lv, i, h in done})
        assert all(last_leaf(lv, i) == n for lv, i, _ in done)
        root = frontier[-1][2]
        for _, _, left in reversed(frontier[:-1]):
            root = node_hash(left, root)
        assert root == merkle_root(entries[: n + 1])
        assert [(lv, i) for lv, i, _ in frontier] == frontier_keys(n + 1)
        assert frontier_root(frontier, n + 1) == root


def test_frontier_keys_are_the_subtrees_a_root_reads_largest_first() -> None:
    assert frontier_keys(0) == []
    for size in range(1, 300):
        keys = frontier_keys(size)
        assert keys == sorted(subtree_keys_for_root(size), key=lambda key: -key[0]), size
        assert sum(1 << level for level, _ in keys) == size
