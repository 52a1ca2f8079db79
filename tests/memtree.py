"""An in-memory tiled tree for pure tests of integrate + proofs (no database)."""

from __future__ import annotations

from ledger.integrate import TreeState, integrate
from ledger.read.proof_builder import FullTileCache, NodeReader


class MemTree:
    def __init__(self) -> None:
        self.state = TreeState.empty()
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.cache = FullTileCache(64)

    def append(self, leaf_hashes: list[bytes]) -> None:
        self.state, full = integrate(self.state, leaf_hashes)
        for tile in full:
            self.tiles[(tile.level, tile.index)] = tile.hashes

    def reader(self) -> NodeReader:
        return NodeReader(
            self.state.size,
            self.state.partials,
            lambda level, index: self.tiles[(level, index)],
            self.cache,
        )
