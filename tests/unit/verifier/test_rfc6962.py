"""RFC 6962 hashing: every interior node carries the 0x01 prefix, batched or not."""

from __future__ import annotations

import hashlib

import pytest

from verifier.rfc6962 import hash_children, hash_leaf, hash_pairs

NODES = [hashlib.sha256(b"node %d" % i).digest() for i in range(7)]


def test_hash_children_is_sha256_of_node_prefix_left_right():
    left, right = NODES[0], NODES[1]
    assert hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 6, 7])
def test_hash_pairs_matches_hash_children(count):
    nodes = NODES[:count]
    want = [hash_children(nodes[i], nodes[i + 1]) for i in range(0, count - 1, 2)]
    assert hash_pairs(nodes) == want
    assert len(want) == count // 2  # an odd last node is left out


def test_hash_pairs_uses_the_node_prefix():
    a, b, c, d = NODES[:4]
    assert hash_pairs([a, b, c, d]) == [
        hashlib.sha256(b"\x01" + a + b).digest(),
        hashlib.sha256(b"\x01" + c + d).digest(),
    ]


def test_leaf_posing_as_node_rejected():
    # A 64-byte leaf that is two node hashes does not hash like their parent.
    a, b = NODES[:2]
    assert hash_leaf(a + b) != hash_pairs([a, b])[0]
    assert hash_pairs([a, b])[0] != hashlib.sha256(a + b).digest()
