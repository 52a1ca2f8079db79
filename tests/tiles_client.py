"""A minimal C2SP tlog-tiles client written from ../shared/SPECS.md alone.

Tests use it to show that a reader who knows nothing of Saksi can follow the log:
it imports nothing from this repository (standard library and PyNaCl only), so it
checks the server's formats independently of the code that produced them.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from dataclasses import dataclass

import nacl.signing

DASH = "\u2014"


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(entry: bytes) -> bytes:
    return h(b"\x00" + entry)


def node(left: bytes, right: bytes) -> bytes:
    return h(b"\x01" + left + right)


def mth(hashes: list[bytes]) -> bytes:
    """Root over already-hashed leaves (split at the largest power of two < n)."""
    if not hashes:
        return h(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def index_path(n: int) -> str:
    groups = []
    while True:
        groups.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])


@dataclass
class Checkpoint:
    origin: str
    size: int
    root: bytes


class TilesClient:
    """Reads a tlog-tiles log at ``prefix`` (ending in /) with a pinned key."""

    def __init__(self, prefix: str, vkey: str) -> None:
        self.prefix = prefix
        name, keyid_hex, key_b64 = vkey.split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 1, "Ed25519 verifier key"
        self.name = name
        self.keyid = bytes.fromhex(keyid_hex)
        self.public = raw[1:]
        assert h(name.encode() + b"\n" + b"\x01" + self.public)[:4] == self.keyid

    def get(self, path: str) -> bytes:
        url = self.prefix + path
        assert url.startswith("http://")
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.read()

    def checkpoint(self) -> Checkpoint:
        note = self.get("checkpoint").decode("utf-8")
        text, _, sigs = note.partition("\n\n")
        text += "\n"
        verified = False
        for line in sigs.splitlines():
            dash, name, blob = line.split(" ")
            assert dash == DASH
            raw = base64.b64decode(blob)
            if name == self.name and raw[:4] == self.keyid:
                nacl.signing.VerifyKey(self.public).verify(text.encode(), raw[4:])
                verified = True
        assert verified, "no signature by the pinned key"
        origin, size, root = text.splitlines()[:3]
        return Checkpoint(origin, int(size), base64.b64decode(root))

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        suffix = "" if width == 256 else f".p/{width}"
        data = self.get(f"tile/{level}/{index_path(index)}{suffix}")
        assert len(data) == 32 * width
        return [data[i : i + 32] for i in range(0, len(data), 32)]

    def bundle(self, index: int, width: int) -> list[bytes]:
        suffix = "" if width == 256 else f".p/{width}"
        data = self.get(f"tile/entries/{index_path(index)}{suffix}")
        entries, pos = [], 0
        while pos < len(data):
            length = int.from_bytes(data[pos : pos + 2], "big")
            entries.append(data[pos + 2 : pos + 2 + length])
            pos += 2 + length
        assert len(entries) == width
        return entries

    def level_hashes(self, level: int, size: int) -> list[bytes]:
        """All hashes stored at ``level`` for a tree of ``size`` leaves."""
        count = size // 256**level
        hashes: list[bytes] = []
        for index in range(0, (count + 255) // 256):
            width = min(256, count - index * 256)
            hashes += self.tile(level, index, width)
        return hashes

    def root_from_tiles(self, size: int) -> bytes:
        """Recompute the root from the tiles: every level's hashes, bottom up.

        Level-L tiles hold roots of complete 256^L-leaf subtrees; the right edge
        that no tile covers is rebuilt from the level below.
        """
        leaves = self.level_hashes(0, size)
        assert len(leaves) == size
        # Level-1 hashes must be the roots of each full group of 256 leaves.
        if size >= 256:
            for i, got in enumerate(self.level_hashes(1, size)):
                assert got == mth(leaves[i * 256 : i * 256 + 256])
        return mth(leaves)

    def entries(self, size: int) -> list[bytes]:
        out: list[bytes] = []
        for index in range(0, (size + 255) // 256):
            out += self.bundle(index, min(256, size - index * 256))
        return out


def inclusion_proof(hashes: list[bytes], index: int) -> list[bytes]:
    """RFC 6962 PATH(index, D[n]) over leaf hashes (for checking a server's proof)."""
    if len(hashes) <= 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if index < k:
        return [*inclusion_proof(hashes[:k], index), mth(hashes[k:])]
    return [*inclusion_proof(hashes[k:], index - k), mth(hashes[:k])]


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof, root) -> bool:
    """RFC 9162 section 2.1.3.2, as SPECS.md words it."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
