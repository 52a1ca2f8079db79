"""C2SP tlog-tiles wire format: tile paths, hash tiles and entry bundles.

A level-L tile holds up to 256 consecutive hashes of complete subtrees of 256**L
leaves; a partial tile of width W (1..255) is written ``.p/<W>``. Tile indices are
split into three-digit groups, every group but the last prefixed ``x``
(1234067 -> ``x001/x234/067``). Entry bundles are entries each prefixed with a
big-endian uint16 length, which caps an entry at 65,535 bytes.

Pure: paths and bytes in, values out. Which tiles a tree of a given size has is
tree arithmetic and lives in ``ledger.tree.tiles`` (server) and the audit code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from verifier.errors import MalformedInput
from verifier.rfc6962 import HASH_SIZE

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_WIDTH",
    "encode_index",
    "entries_path",
    "format_entry_bundle",
    "parse_entry_bundle",
    "parse_tile",
    "parse_tile_path",
    "tile_path",
]

TILE_WIDTH = 256
MAX_ENTRY_SIZE = 0xFFFF
MAX_TILE_LEVEL = 63

_PATH = re.compile(
    r"\Atile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?\Z"
)


def encode_index(index: int) -> str:
    """Encode a tile index as three-digit groups, all but the last prefixed 'x'.

    Raises:
        ValueError: ``index`` is negative.
    """
    if index < 0:
        raise ValueError(f"tile index must be >= 0, found {index}")
    text = str(index)
    text = "0" * (-len(text) % 3) + text
    groups = [text[i : i + 3] for i in range(0, len(text), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _with_width(base: str, width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width must be 1..{TILE_WIDTH}, found {width}")
    return base if width == TILE_WIDTH else f"{base}.p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/<L>/<N>[.p/<W>]``.

    Raises:
        ValueError: level, index or width out of range.
    """
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level must be 0..{MAX_TILE_LEVEL}, found {level}")
    return _with_width(f"tile/{level}/{encode_index(index)}", width)


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/entries/<N>[.p/<W>]``.

    Raises:
        ValueError: index or width out of range.
    """
    return _with_width(f"tile/entries/{encode_index(index)}", width)


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """Parse a tile path into (level or None for entries, index, width).

    Raises:
        MalformedInput: not a canonical tlog-tiles path.
    """
    match = _PATH.match(path)
    if match is None:
        raise MalformedInput(f"tile path: not a tlog-tiles path: {path[:80]!r}")
    groups = match["index"].split("/")
    if len(groups) > 1 and groups[0] == "x000":
        raise MalformedInput(f"tile path: leading zero group in {path[:80]!r}")
    index = int("".join(g.lstrip("x") for g in groups))
    width = int(match["width"]) if match["width"] else TILE_WIDTH
    if width > TILE_WIDTH - 1 and match["width"]:
        raise MalformedInput(f"tile path: partial width must be 1..255, found {width}")
    level = None if match["level"] == "entries" else int(match["level"])
    if level is not None and level > MAX_TILE_LEVEL:
        raise MalformedInput(f"tile path: level {level} out of range")
    return level, index, width


def parse_tile(data: bytes, width: int) -> list[bytes]:
    """Split a hash tile of ``width`` hashes into 32-byte hashes.

    Raises:
        MalformedInput: the tile is not exactly ``width`` hashes long.
    """
    if len(data) != width * HASH_SIZE:
        raise MalformedInput(
            f"tile: expected {width * HASH_SIZE} bytes for width {width}, "
            f"found {len(data)}"
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def format_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate entries, each behind a big-endian uint16 length.

    Raises:
        ValueError: an entry is longer than 65,535 bytes.
    """
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry of {len(entry)} bytes exceeds {MAX_ENTRY_SIZE}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Split an entry bundle into entries; with ``width``, require exactly that many.

    Raises:
        MalformedInput: a truncated length or entry, or the wrong number of entries.
    """
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise MalformedInput(f"entry bundle: truncated length at byte {pos}")
        length = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + length > len(data):
            raise MalformedInput(f"entry bundle: entry {len(entries)} truncated")
        entries.append(data[pos : pos + length])
        pos += length
        if len(entries) > TILE_WIDTH:
            raise MalformedInput("entry bundle: more than 256 entries")
    if width is not None and len(entries) != width:
        raise MalformedInput(
            f"entry bundle: expected {width} entries, found {len(entries)}"
        )
    return entries
