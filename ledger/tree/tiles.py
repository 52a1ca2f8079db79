"""Tile coordinates for C2SP tlog-tiles (256-wide hash tiles at every level).

A level-L tile stores hashes of complete subtrees of 256**L leaves. For a tree of
``size`` leaves, level L has ``size // 256**(L+1)`` full tiles and, when
``(size // 256**L) % 256`` is non-zero, one partial tile of that width. Paths and
byte formats live in ``verifier.tile_format``; this module only does the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.tile_format import TILE_WIDTH

__all__ = ["TILE_HEIGHT", "TILE_WIDTH", "TileCoord", "level_width", "tiles_for_size"]

TILE_HEIGHT = 8  # log2(TILE_WIDTH): tree levels per tile level


@dataclass(frozen=True, slots=True)
class TileCoord:
    """One tile: level, index within the level, width (256 = full)."""

    level: int
    index: int
    width: int

    @property
    def full(self) -> bool:
        """True for a complete, immutable 256-wide tile."""
        return self.width == TILE_WIDTH


def level_width(size: int, level: int) -> int:
    """Number of hashes stored at tile level ``level`` for a tree of ``size``."""
    return size >> (TILE_HEIGHT * level)


def tiles_for_size(size: int) -> list[TileCoord]:
    """Every tile a tree of ``size`` leaves publishes, level by level."""
    coords: list[TileCoord] = []
    level = 0
    while True:
        count = level_width(size, level)
        if count == 0:
            break
        full, partial = divmod(count, TILE_WIDTH)
        coords.extend(TileCoord(level, index, TILE_WIDTH) for index in range(full))
        if partial:
            coords.append(TileCoord(level, full, partial))
        if count < TILE_WIDTH:
            break
        level += 1
    return coords
