"""A deliberately naive, recursive RFC 6962 implementation: the tests' oracle.

Straight from RFC 6962 section 2.1 (MTH, PATH, PROOF/SUBPROOF), with no tiles, no
caching and no cleverness, so it can check ``ledger.integrate`` and
``ledger.read.proof_builder``. Tests only: it holds every leaf in memory.
"""

from __future__ import annotations

import hashlib


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = _k(n)
    return node(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, hashes[:k]), mth(hashes[k:])]
    return [*path(m - k, hashes[k:]), mth(hashes[:k])]


def subproof(m: int, hashes: list[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [mth(hashes)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, hashes[:k], complete), mth(hashes[k:])]
    return [*subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def proof(m: int, hashes: list[bytes]) -> list[bytes]:
    return subproof(m, hashes, True)
