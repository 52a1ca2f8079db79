"""Reading any C2SP tlog-tiles log, and proving from its tiles.

An observer needs proofs the log cannot choose: ``TileHashes`` reads hash tiles
for one tree size and builds inclusion and consistency proofs (RFC 6962 section
2.1.1 and 2.1.2, PATH and PROOF) from them. Every proof built here is then
verified against *signed* roots with ``verifier.proof_check``: a log that serves
tiles that do not match its checkpoints fails there, whatever the tiles say.

A tile at level L holds the hashes of complete subtrees of 256**L leaves. The
hash of a complete subtree of 2**h leaves is read from the level h // 8 tile and,
when h is not a multiple of 8, folded from the 2**(h % 8) stored hashes below it.

``TileLog`` fetches ``checkpoint``, tiles and entry bundles under a URL prefix
with the standard library; anything else with a ``fetch(path) -> bytes`` works.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

from verifier.errors import MalformedInput
from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_pairs
from verifier.tile_format import (
    TILE_WIDTH,
    entries_path,
    parse_entry_bundle,
    parse_tile,
    tile_path,
)

__all__ = ["READ_AHEAD", "FetchError", "TileHashes", "TileLog", "http_fetch"]

TILE_HEIGHT = 8
USER_AGENT = "saksi-verify"
MAX_RESPONSE = 1 << 24  # the largest tile is 8 KiB, a full bundle under 17 MiB
READ_AHEAD = 4  # entry bundles a long read fetches while earlier ones are checked


class FetchError(Exception):
    """The log could not be read (network, HTTP status): not a verdict on it.

    Attributes:
        status: the HTTP status, when there was one.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def http_fetch(base: str, timeout: float = 30.0) -> Callable[[str], bytes]:
    """A ``fetch(path)`` reading ``<base>/<path>`` over HTTP(S)."""
    if not base.startswith(("http://", "https://")):
        raise FetchError(f"not an http(s) URL: {base[:80]}")
    base = base.rstrip("/")

    def fetch(path: str) -> bytes:
        url = f"{base}/{path}"
        request = urllib.request.Request(url, headers={"user-agent": USER_AGENT})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                data = response.read(MAX_RESPONSE + 1)
                declared = response.headers.get("content-length", "")
        except urllib.error.HTTPError as e:
            raise FetchError(f"{url}: HTTP {e.code}", e.code) from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            # OSError: refused, reset, timed out; HTTPException: the answer was
            # cut off or garbled (IncompleteRead, BadStatusLine).
            raise FetchError(f"cannot reach {url}: {type(e).__name__}: {e}") from e
        if len(data) > MAX_RESPONSE:
            raise FetchError(f"{url}: response larger than {MAX_RESPONSE} bytes")
        # A read of at most N bytes returns what came before the connection
        # closed, without IncompleteRead: an answer cut off (a server killed
        # mid-answer) is a fetch failure, never a short tile to judge.
        if declared.isdigit() and len(data) < int(declared):
            raise FetchError(
                f"cannot read {url}: the answer was cut off after {len(data)} "
                f"of {declared} bytes"
            )
        return bytes(data)

    return fetch


class TileLog:
    """The read side of a tlog-tiles log: checkpoint, hash tiles, entry bundles."""

    def __init__(self, fetch: Callable[[str], bytes]) -> None:
        self.fetch = fetch

    def checkpoint(self) -> bytes:
        """The log's latest signed checkpoint, as served (not yet verified)."""
        return self.fetch("checkpoint")

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        """The hashes of one tile, exactly ``width`` of them.

        Raises:
            FetchError: the tile could not be read.
            MalformedInput: it is not ``width`` hashes long.
        """
        return parse_tile(self.fetch(tile_path(level, index, width)), width)

    def bundle(self, index: int, width: int) -> list[bytes]:
        """The entries of one entry bundle, exactly ``width`` of them."""
        return parse_entry_bundle(self.fetch(entries_path(index, width)), width)

    def entries(
        self, start: int, end: int, ahead: int = 0
    ) -> Iterator[tuple[int, list[bytes]]]:
        """Entries [start, end) a bundle at a time: (index of the first, entries).

        ``end`` is the tree size the bundle widths are for. With ``ahead`` > 0,
        up to that many further bundles are fetched while the caller works on
        one (threads; ``fetch`` must allow it, as ``http_fetch`` does): a
        busy log's answer time then overlaps the caller's work. The bundles
        still come in order, and a fetch's error comes where its bundle would.
        """
        tiles = range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH)

        def bundle(tile: int) -> list[bytes]:
            return self.bundle(tile, min(TILE_WIDTH, end - tile * TILE_WIDTH))

        if ahead <= 0 or len(tiles) < 2:
            fetched: Iterator[list[bytes]] = map(bundle, tiles)
        else:
            fetched = _fetched_ahead(bundle, tiles, ahead)
        for tile, got in zip(tiles, fetched, strict=True):
            first = max(start, tile * TILE_WIDTH)
            yield first, got[first - tile * TILE_WIDTH :]

    def entry(self, index: int, size: int) -> bytes:
        """Entry ``index`` of the tree of ``size`` (which fixes bundle widths)."""
        if not 0 <= index < size:
            raise MalformedInput(f"entry {index} is outside a tree of {size}")
        tile = index // TILE_WIDTH
        width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        return self.bundle(tile, width)[index % TILE_WIDTH]


def _fetched_ahead(
    fetch: Callable[[int], list[bytes]], tiles: range, ahead: int
) -> Iterator[list[bytes]]:
    """``fetch`` of each tile, in order, with up to ``ahead`` more under way."""
    pool = ThreadPoolExecutor(min(ahead, len(tiles)), "saksi-fetch")
    pending: deque[Future[list[bytes]]] = deque()
    later = iter(tiles)
    try:
        for tile in islice(later, ahead + 1):
            pending.append(pool.submit(fetch, tile))
        while pending:
            got = pending.popleft().result()
            for tile in islice(later, 1):
                pending.append(pool.submit(fetch, tile))
            yield got
    finally:
        # Stopped early (an error, or the caller closed the generator): what
        # was not started is dropped; fetches under way end by their timeout.
        pool.shutdown(wait=False, cancel_futures=True)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class TileHashes:
    """Subtree hashes and proofs of the tree of ``size``, read from its tiles.

    Proofs for any smaller tree come from the same tiles: a complete subtree's
    hash never changes as the tree grows.
    """

    def __init__(self, log: TileLog, size: int, cache: int = 64) -> None:
        self.log = log
        self.size = size
        self._tiles: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._cache = cache

    def _stored(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key in self._tiles:
            self._tiles.move_to_end(key)
            return self._tiles[key]
        complete = self.size >> (TILE_HEIGHT * level)  # nodes stored at this level
        width = min(TILE_WIDTH, complete - index * TILE_WIDTH)
        if width <= 0:
            raise MalformedInput(
                f"tile {level}/{index} is beyond a tree of {self.size}"
            )
        hashes = self.log.tile(level, index, width)
        self._tiles[key] = hashes
        if len(self._tiles) > self._cache:
            self._tiles.popitem(last=False)
        return hashes

    def node(self, height: int, index: int) -> bytes:
        """The hash of leaves [index * 2**height, (index + 1) * 2**height)."""
        if (index + 1) << height > self.size:
            raise MalformedInput(
                f"subtree {height}/{index} is not complete in a tree of {self.size}"
            )
        level, below = divmod(height, TILE_HEIGHT)
        first = index << below  # the first stored hash under this node
        tile = self._stored(level, first // TILE_WIDTH)
        offset = first % TILE_WIDTH
        nodes = tile[offset : offset + (1 << below)]
        while len(nodes) > 1:
            nodes = hash_pairs(nodes)
        return nodes[0]

    def root(self, start: int = 0, end: int | None = None) -> bytes:
        """MTH of leaves [start, end): the root of the tree of ``end`` when start=0.

        ``start`` must begin a subtree of the RFC 6962 split of [start, end).
        """
        end = self.size if end is None else end
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self.node(n.bit_length() - 1, start // n)
        k = _split(n)
        return hash_children(self.root(start, start + k), self.root(start + k, end))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]), leaf's sibling first (RFC 6962 2.1.1)."""
        if not 0 <= index < size <= self.size:
            raise MalformedInput(f"no entry {index} in a tree of {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self.root(start + k, end))
                end = start + k
            else:
                proof.append(self.root(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """PROOF(old, D[0:new]) (RFC 6962 2.1.2); empty when old is 0 or new."""
        if not 0 <= old <= new <= self.size:
            raise MalformedInput(f"no consistency proof from {old} to {new}")
        if old in (0, new):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, new, True
        while old != end:
            k = _split(end - start)
            if old - start <= k:
                proof.append(self.root(start + k, end))
                end = start + k
            else:
                proof.append(self.root(start, start + k))
                start += k
                whole = False
        if not whole:
            proof.append(self.root(start, end))
        proof.reverse()
        return proof
