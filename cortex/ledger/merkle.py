"""RFC 9162 Merkle Tree Hash, inclusion and consistency proofs (pure functions, no I/O).

Two families of functions live here:

* Reference functions over the full list of entries (`merkle_root`, `inclusion_proof`,
  `consistency_proof`). They transcribe the recursive definitions of RFC 9162 §2.1 and are
  O(n) in the number of entries: they exist to define the expected bytes and for small trees.
* Store helpers (`range_hash`, `*_from_subtrees`, `subtree_keys_*`, `completed_subtrees`)
  that produce byte-identical results while reading only O(log n) hashes of complete,
  aligned subtrees from a store.

Terminology. The node at ``(level, index)`` is the root of the complete subtree covering
leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a
node exists in a tree of size ``n`` iff ``(index + 1) * 2**level <= n``. Nodes that would
straddle the right edge of the tree are *ephemeral*: their hash is MTH of the clipped range
and is derived from complete subtrees by `range_hash`.

Verification (`verify_inclusion`, `verify_consistency`) follows RFC 9162 §2.1.3.2 and
§2.1.4.2, restated as two chaining phases: a proof for leaf ``index`` in a tree of size ``n``
is split into an *inner* part (levels where the path to ``index`` and the path to leaf
``n - 1`` differ: the sibling may sit on either side) and a *border* part (levels where the
path runs along the right border of the tree: siblings, when present, are always on the
left). Verifiers return ``False`` on any malformed input and never raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "Frontier",
    "SubtreeKey",
    "completed_subtrees",
    "consistency_proof",
    "consistency_proof_from_subtrees",
    "extend_frontier",
    "frontier_keys",
    "frontier_root",
    "inclusion_proof",
    "inclusion_proof_from_subtrees",
    "last_leaf",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "range_hash",
    "root_from_subtrees",
    "subtree_keys_for_consistency",
    "subtree_keys_for_inclusion",
    "subtree_keys_for_root",
    "verify_consistency",
    "verify_inclusion",
]

SubtreeKey = tuple[int, int]
"""A stored node address ``(level, index)``; see the module docstring."""

_HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_EMPTY_ROOT = hashlib.sha256(b"").digest()
_DUMMY_HASH = bytes(_HASH_SIZE)

_NodeGetter = Callable[[int, int], bytes]


# --------------------------------------------------------------------------------------------
# Hashing (RFC 9162 §2.1.1)
# --------------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 leaf hash ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + bytes(left) + bytes(right)).digest()


# --------------------------------------------------------------------------------------------
# Bit helpers
# --------------------------------------------------------------------------------------------


def _split_point(size: int) -> int:
    """Return k, the largest power of two strictly smaller than ``size`` (RFC 9162 §2.1.1).

    Requires ``size >= 2``.
    """
    return 1 << ((size - 1).bit_length() - 1)


def _trailing_zeros(value: int) -> int:
    """Return the number of trailing zero bits of ``value``. Requires ``value > 0``."""
    return (value & -value).bit_length() - 1


def _decomp_inclusion(index: int, size: int) -> tuple[int, int]:
    """Split the inclusion path of leaf ``index`` in a tree of ``size`` leaves.

    Returns ``(inner, border)``: the proof of RFC 9162 §2.1.3.1 consists of ``inner`` siblings
    at levels ``0 .. inner - 1`` (below the level where the paths to ``index`` and to
    ``size - 1`` merge) followed by ``border`` left siblings met along the right border above
    it. Requires ``0 <= index < size``.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


# --------------------------------------------------------------------------------------------
# Reference construction over full entry lists (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1)
# --------------------------------------------------------------------------------------------


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return MTH over already-hashed leaves (RFC 9162 §2.1.1). Requires ``len(hashes) >= 1``.

    Hashes level by level, promoting an unpaired last node unchanged. This yields the same
    tree as the RFC's split at the largest power of two below n (every left-hand split is a
    complete, aligned subtree, which pairwise hashing builds identically), in O(n) hashes.
    """
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(entries: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) of RFC 9162 §2.1.1; the empty tree hashes to ``SHA-256(b"")``."""
    if not entries:
        return _EMPTY_ROOT
    return _root_of_hashes([leaf_hash(entry) for entry in entries])


def _path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return PATH(m, D[n]) of RFC 9162 §2.1.3.1 over leaf hashes.

    Requires ``0 <= index < len(hashes)``.
    """
    if len(hashes) == 1:
        return []
    k = _split_point(len(hashes))
    if index < k:
        return [*_path(index, hashes[:k]), _root_of_hashes(hashes[k:])]
    return [*_path(index - k, hashes[k:]), _root_of_hashes(hashes[:k])]


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof PATH(index, D[n]) of RFC 9162 §2.1.3.1, leaf to root.

    Requires ``0 <= index < len(entries)``; raises ``ValueError`` otherwise.
    """
    if not 0 <= index < len(entries):
        raise ValueError(f"leaf index {index} out of range for a tree of {len(entries)} entries")
    return _path(index, [leaf_hash(entry) for entry in entries])


def _subproof(old_size: int, hashes: Sequence[bytes], old_root_known: bool) -> list[bytes]:
    """Return SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1 over leaf hashes.

    ``old_root_known`` is the RFC's ``b``: whether MTH(D[0:m]) of the current subtree is
    already known to the verifier (true only while descending along the left edge).
    Requires ``0 < old_size <= len(hashes)``.
    """
    size = len(hashes)
    if old_size == size:
        return [] if old_root_known else [_root_of_hashes(hashes)]
    k = _split_point(size)
    if old_size <= k:
        return [*_subproof(old_size, hashes[:k], old_root_known), _root_of_hashes(hashes[k:])]
    return [*_subproof(old_size - k, hashes[k:], False), _root_of_hashes(hashes[:k])]


def consistency_proof(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the consistency proof PROOF(old_size, D[n]) of RFC 9162 §2.1.4.1.

    Requires ``0 <= old_size <= len(entries)``; raises ``ValueError`` otherwise. The proof is
    empty when ``old_size == 0`` (every tree extends the empty tree; the RFC leaves this case
    undefined and we follow transparency-dev/merkle) and when ``old_size == len(entries)``.
    """
    if not 0 <= old_size <= len(entries):
        raise ValueError(f"old size {old_size} out of range for a tree of {len(entries)} entries")
    if old_size in (0, len(entries)):
        return []
    return _subproof(old_size, [leaf_hash(entry) for entry in entries], True)


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2, §2.1.4.2)
# --------------------------------------------------------------------------------------------


def _is_size(value: object) -> bool:
    """Whether ``value`` is a non-negative int (``bool`` is rejected)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _as_hash(value: object) -> bytes | None:
    """Return ``value`` as bytes if it is a 32-byte ``bytes`` or ``bytearray``, else ``None``."""
    if isinstance(value, bytes | bytearray) and len(value) == _HASH_SIZE:
        return bytes(value)
    return None


def _as_proof(proof: object) -> list[bytes] | None:
    """Return ``proof`` as a list of 32-byte hashes, or ``None`` if it is not one."""
    if isinstance(proof, bytes | bytearray | memoryview | str) or not isinstance(proof, Sequence):
        return None
    hashes: list[bytes] = []
    for item in proof:
        h = _as_hash(item)
        if h is None:
            return None
        hashes.append(h)
    return hashes


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Fold inner-proof siblings into ``seed`` going up from level 0.

    At level ``i`` the sibling is on the right iff bit ``i`` of ``index`` is 0 (RFC 9162
    §2.1.3.2 step 4b). Requires ``len(proof)`` to be the inner size from `_decomp_inclusion`.
    """
    for level, sibling in enumerate(proof):
        on_left = (index >> level) & 1
        seed = node_hash(sibling, seed) if on_left else node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Fold only the left siblings of the inner proof into ``seed``.

    Used by consistency verification to recompute the old root: right siblings of the path to
    the old tree's last leaf lie beyond the old tree and are skipped (RFC 9162 §2.1.4.2 step
    6b, the update of ``fr``).
    """
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold border siblings into ``seed``; on the right border every sibling is on the left."""
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Verify an RFC 9162 §2.1.3.2 inclusion proof of ``leaf_hash`` at ``index``.

    Returns ``True`` iff ``0 <= index < tree_size``, ``proof`` has exactly the length the
    generator produces for ``(index, tree_size)``, and inner chaining followed by border-right
    chaining of ``leaf_hash`` reproduces ``root``. Never raises: malformed arguments (wrong
    types, negative sizes, hashes that are not 32 bytes) yield ``False``.

    Note (inherent to RFC 9162): ``tree_size`` is bound only through the proof's shape, so a
    proof may also verify under another size whose path has the same shape. Take the
    ``(tree_size, root)`` pair together from a trusted, signed checkpoint.
    """
    seed = _as_hash(leaf_hash)
    expected_root = _as_hash(root)
    hashes = _as_proof(proof)
    if seed is None or expected_root is None or hashes is None:
        return False
    if not (_is_size(index) and _is_size(tree_size)) or index >= tree_size:
        return False
    inner, border = _decomp_inclusion(index, tree_size)
    if len(hashes) != inner + border:
        return False
    computed = _chain_inner(seed, hashes[:inner], index)
    computed = _chain_border_right(computed, hashes[inner:])
    return computed == expected_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Verify an RFC 9162 §2.1.4.2 consistency proof between two tree heads.

    Returns ``True`` iff the tree of ``old_size`` leaves with ``old_root`` is a prefix of the
    tree of ``new_size`` leaves with ``new_root`` according to ``proof``:

    * ``old_size == new_size``: the proof must be empty and the roots equal.
    * ``old_size == 0``: the proof must be empty; the roots are not compared (every tree
      extends the empty tree). This follows transparency-dev/merkle; RFC 9162 leaves it open.
    * ``0 < old_size < new_size``: the proof is the suffix of the inclusion proof of leaf
      ``old_size - 1`` in the new tree, starting at level ``shift`` (the number of trailing
      zero bits of ``old_size``), preceded by the node at that level unless the old tree is
      exactly that complete subtree (then ``old_root`` is the seed). The old root is rebuilt
      from the seed by inner-right then border-right chaining, the new root by inner then
      border-right chaining.

    Never raises: malformed arguments (wrong types, negative or decreasing sizes, hashes that
    are not 32 bytes) yield ``False``. As for inclusion, sizes are bound only through the
    proof's shape; take them from trusted checkpoints together with the roots.
    """
    first = _as_hash(old_root)
    second = _as_hash(new_root)
    hashes = _as_proof(proof)
    if first is None or second is None or hashes is None:
        return False
    if not (_is_size(old_size) and _is_size(new_size)) or new_size < old_size:
        return False
    if old_size == new_size:
        return not hashes and first == second
    if old_size == 0:
        return not hashes
    if not hashes:
        return False

    inner, border = _decomp_inclusion(old_size - 1, new_size)
    shift = _trailing_zeros(old_size)
    inner -= shift  # shift < inner whenever old_size < new_size
    if old_size == 1 << shift:
        seed, rest = first, hashes
    else:
        seed, rest = hashes[0], hashes[1:]
    if len(rest) != inner + border:
        return False

    mask = (old_size - 1) >> shift
    computed_old = _chain_inner_right(seed, rest[:inner], mask)
    computed_old = _chain_border_right(computed_old, rest[inner:])
    if computed_old != first:
        return False
    computed_new = _chain_inner(seed, rest[:inner], mask)
    computed_new = _chain_border_right(computed_new, rest[inner:])
    return computed_new == second


# --------------------------------------------------------------------------------------------
# Store helpers: the same proofs from O(log n) complete, aligned subtrees
# --------------------------------------------------------------------------------------------


def _fetch(get: _NodeGetter, level: int, index: int) -> bytes:
    """Read the stored hash of node ``(level, index)``; ``ValueError`` if it is not 32 bytes."""
    value = _as_hash(get(level, index))
    if value is None:
        raise ValueError(f"stored hash for node ({level}, {index}) is not a {_HASH_SIZE}-byte hash")
    return value


def _decompose_range(start: int, end: int) -> list[SubtreeKey]:
    """Return the complete subtrees tiling ``[start, end)``, largest (leftmost) first.

    They are the binary decomposition of ``end - start`` into descending powers of two.
    Requires ``0 <= start < end`` and ``start`` a multiple of the largest power of two
    ``<= end - start``, so that every piece is aligned.
    """
    size = end - start
    keys: list[SubtreeKey] = []
    offset = start
    for level in range(size.bit_length() - 1, -1, -1):
        if (size >> level) & 1:
            keys.append((level, offset >> level))
            offset += 1 << level
    return keys


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes right to left: ``h0 . (h1 . (... . hk))``.

    For the descending decomposition of a range this is exactly the RFC 9162 §2.1.1 split:
    the left part is the largest power of two strictly below the size. Requires a non-empty
    sequence.
    """
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(start: int, end: int, get: Callable[[int, int], bytes]) -> bytes:
    """Return MTH(D[start:end]) (RFC 9162 §2.1.1) from stored complete subtrees only.

    Requires ``0 <= start < end`` and ``start`` a multiple of the largest power of two
    ``<= end - start`` (true of every range arising in the RFC recursion, where ``start`` is
    aligned to a power of two ``>= end - start``); raises ``ValueError`` otherwise. Reads
    ``popcount(end - start)`` nodes, each complete within ``[start, end)``.
    """
    if start < 0 or end <= start:
        raise ValueError(f"range [{start}, {end}) is empty or negative")
    top = 1 << ((end - start).bit_length() - 1)
    if start % top:
        raise ValueError(f"range [{start}, {end}) is not aligned to {top}")
    return _fold_right([_fetch(get, level, index) for level, index in _decompose_range(start, end)])


def _inner_sibling(level: int, node: int, tree_size: int, get: _NodeGetter) -> bytes:
    """Hash of the sibling of node ``(level, node)`` in a tree of ``tree_size`` leaves.

    A left sibling is complete; a right sibling may be ephemeral (clipped at ``tree_size``).
    Requires the sibling's first leaf to be ``< tree_size``.
    """
    start = (node ^ 1) << level
    return range_hash(start, min(start + (1 << level), tree_size), get)


def _border_siblings(index: int, from_level: int, get: _NodeGetter) -> list[bytes]:
    """Left siblings along the right border, from ``from_level`` up (RFC 9162 §2.1.3.1).

    Each one is the complete node just left of the path wherever bit ``level`` of ``index``
    is set.
    """
    return [
        _fetch(get, level, (index >> level) - 1)
        for level in range(from_level, index.bit_length())
        if (index >> level) & 1
    ]


def inclusion_proof_from_subtrees(
    index: int, tree_size: int, get: Callable[[int, int], bytes]
) -> list[bytes]:
    """Return the RFC 9162 §2.1.3.1 inclusion proof, read from stored subtrees.

    Byte-identical to ``inclusion_proof(entries[:tree_size], index)``. Only nodes complete
    within ``tree_size`` are read, O(log n) of them. Requires ``0 <= index < tree_size``;
    raises ``ValueError`` otherwise.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} out of range for a tree of {tree_size} entries")
    inner, _ = _decomp_inclusion(index, tree_size)
    proof = [_inner_sibling(level, index >> level, tree_size, get) for level in range(inner)]
    proof.extend(_border_siblings(index, inner, get))
    return proof


def consistency_proof_from_subtrees(
    old_size: int, new_size: int, get: Callable[[int, int], bytes]
) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 consistency proof, read from stored subtrees.

    Byte-identical to ``consistency_proof(entries[:new_size], old_size)``: empty when
    ``old_size`` is 0 or ``new_size``; otherwise the node of size ``2**shift`` ending at
    ``old_size`` (omitted when it is the whole old tree), then the inclusion path of leaf
    ``old_size - 1`` from level ``shift`` up. Requires ``0 <= old_size <= new_size``; raises
    ``ValueError`` otherwise.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    if old_size in (0, new_size):
        return []
    last = old_size - 1
    inner, _ = _decomp_inclusion(last, new_size)
    shift = _trailing_zeros(old_size)
    proof: list[bytes] = []
    if old_size != 1 << shift:
        proof.append(_fetch(get, shift, last >> shift))
    proof.extend(
        _inner_sibling(level, last >> level, new_size, get) for level in range(shift, inner)
    )
    proof.extend(_border_siblings(last, inner, get))
    return proof


def root_from_subtrees(tree_size: int, get: Callable[[int, int], bytes]) -> bytes:
    """Return MTH(D[tree_size]) (RFC 9162 §2.1.1) from ``popcount(tree_size)`` stored nodes.

    The empty tree hashes to ``SHA-256(b"")``. Requires ``tree_size >= 0``; raises
    ``ValueError`` otherwise.
    """
    if tree_size < 0:
        raise ValueError(f"tree size {tree_size} is negative")
    if tree_size == 0:
        return _EMPTY_ROOT
    return range_hash(0, tree_size, get)


def _recorded_keys(run: Callable[[_NodeGetter], object]) -> set[SubtreeKey]:
    """Return every key ``run`` passes to its getter (which answers with a dummy hash)."""
    keys: set[SubtreeKey] = set()

    def record(level: int, index: int) -> bytes:
        keys.add((level, index))
        return _DUMMY_HASH

    run(record)
    return keys


def subtree_keys_for_inclusion(index: int, tree_size: int) -> set[SubtreeKey]:
    """Exactly the keys `inclusion_proof_from_subtrees` reads; same preconditions."""
    return _recorded_keys(lambda get: inclusion_proof_from_subtrees(index, tree_size, get))


def subtree_keys_for_consistency(old_size: int, new_size: int) -> set[SubtreeKey]:
    """Exactly the keys `consistency_proof_from_subtrees` reads; same preconditions."""
    return _recorded_keys(lambda get: consistency_proof_from_subtrees(old_size, new_size, get))


def subtree_keys_for_root(tree_size: int) -> set[SubtreeKey]:
    """Exactly the keys `root_from_subtrees` reads; same preconditions."""
    return _recorded_keys(lambda get: root_from_subtrees(tree_size, get))


Frontier = tuple[tuple[int, int, bytes], ...]
"""The complete subtrees on a tree's right edge, left to right, as (level, index, hash)."""


def last_leaf(level: int, index: int) -> int:
    """The last leaf that node (level, index) covers (the stores key their nodes by it, so that
    key order is the order in which nodes complete)."""
    return ((index + 1) << level) - 1


def extend_frontier(
    frontier: Frontier, leaf_index: int, leaf: bytes
) -> tuple[list[tuple[int, int, bytes]], Frontier]:
    """Append leaf ``leaf_index`` to a tree whose right edge is ``frontier``: the nodes that
    become complete (as ``completed_subtrees``, each left sibling taken from the frontier) and
    the new frontier. The frontier must be that of a tree of ``leaf_index`` leaves.

    The left sibling at each level is on the frontier: its entries are the set bits of
    ``leaf_index``, so the last one is at level 0 when the index is odd, the one before it at
    level 1 when the parent's index is odd, and so on. Every node they complete leaves it.
    """
    nodes = completed_subtrees(leaf_index, leaf, lambda level, _: frontier[-1 - level][2])
    return nodes, (*frontier[: len(frontier) - len(nodes) + 1], nodes[-1])


def frontier_keys(tree_size: int) -> list[SubtreeKey]:
    """(level, index) of the complete subtrees on the right edge of a tree of ``tree_size``
    leaves, left to right (one per set bit of the size, largest first): a frontier's keys."""
    keys: list[SubtreeKey] = []
    start = 0
    for level in range(tree_size.bit_length() - 1, -1, -1):
        if tree_size & (1 << level):
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def frontier_root(frontier: Frontier, tree_size: int) -> bytes:
    """MTH of the ``tree_size`` leaves whose right edge is ``frontier`` (its nodes are the only
    ones ``root_from_subtrees`` reads: one per set bit of the size)."""
    nodes = {(level, index): h for level, index, h in frontier}
    return root_from_subtrees(tree_size, lambda level, index: nodes[(level, index)])


def completed_subtrees(
    leaf_index: int, leaf: bytes, left_siblings: Callable[[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """Return the nodes that become complete when leaf ``leaf_index`` is appended.

    The result is ``(0, leaf_index, leaf)`` followed, while the node index is odd, by its
    parent ``node_hash(left sibling, node)`` one level up (RFC 9162 §2.1.1 node hash). The
    left siblings are read through ``left_siblings(level, index)`` and must already be
    stored. Requires ``leaf_index >= 0`` and a 32-byte ``leaf``; raises ``ValueError``
    otherwise.
    """
    if leaf_index < 0:
        raise ValueError(f"leaf index {leaf_index} is negative")
    current = _as_hash(leaf)
    if current is None:
        raise ValueError(f"leaf hash must be {_HASH_SIZE} bytes")
    level, index = 0, leaf_index
    nodes = [(level, index, current)]
    while index & 1:
        current = node_hash(_fetch(left_siblings, level, index - 1), current)
        level, index = level + 1, index >> 1
        nodes.append((level, index, current))
    return nodes
