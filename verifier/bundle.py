"""Log bundles: a log's checkpoint and entry bundles in one file, for offline audits.

A bundle is an uncompressed POSIX tar whose members are named by their
tlog-tiles paths (``checkpoint``, ``tile/entries/x001/234``, ...), so reading it
is reading the log: ``bundle_fetch`` gives the ``fetch(path)`` a ``TileLog``
takes. Nothing in a bundle is trusted: the audit verifies the checkpoint with
the pinned key and recomputes its root from the entries.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

from verifier.tile_client import FetchError, TileLog
from verifier.tile_format import TILE_WIDTH, entries_path

__all__ = ["bundle_fetch", "write_bundle"]


def write_bundle(
    log: TileLog,
    note: bytes,
    size: int,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write checkpoint ``note`` (of tree ``size``) and the entries under it.

    The file is written beside ``out``, then renamed.
    """
    temp = out.with_name(f".{out.name}.partial")
    with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "checkpoint", note)
        for tile in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
            path = entries_path(tile, width)
            _add(tar, path, log.fetch(path))
            if progress is not None:
                progress(tile * TILE_WIDTH + width)
    with temp.open("rb") as f:
        os.fsync(f.fileno())
    temp.replace(out)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def bundle_fetch(path: Path) -> tuple[Callable[[str], bytes], Callable[[], None]]:
    """(``fetch(path)`` reading the bundle's members, a function closing it).

    Raises:
        FetchError: the file is not a readable tar.
    """
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by the caller)
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError) as e:
        raise FetchError(f"{path}: not a readable bundle ({e})") from e

    def fetch(name: str) -> bytes:
        member = members.get(name)
        if member is None:
            raise FetchError(f"{path}: no {name} in the bundle", 404)
        handle = tar.extractfile(member)
        if handle is None:
            raise FetchError(f"{path}: {name} is not a file", 404)
        return handle.read()

    return fetch, tar.close
