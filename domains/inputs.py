"""The election data files as the importers read them: strictly, line by line.

A file is read as gzip when it starts with the gzip magic bytes, whatever its
name. A line that is not what its format needs is a ``BadLine`` (file, line
number, reason): it stops the read with ``MalformedInput``, or, for a caller
that passes ``on_bad``, is handed to it and the read goes on. A gzip stream that
is corrupt or cut short always stops the read. Default data files are found
under ``SAKSI_DATA_DIR`` or the checkout's ``../shared/data``, never relative to
the current directory. What a line must hold is for each format's reader;
``Reading`` is what the results readers make of each polling station.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

__all__ = [
    "DATA_DIR_VARIABLE",
    "BadLine",
    "MalformedInput",
    "OnBad",
    "Reading",
    "csv_rows",
    "data_dir",
    "json_lines",
    "open_binary",
    "report_bad",
    "text_lines",
]

GZIP_MAGIC = b"\x1f\x8b"
DATA_DIR_VARIABLE = "SAKSI_DATA_DIR"
# <project root>/../shared/data: where a checkout finds the shared data.
_CHECKOUT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of an input file that its format cannot use (line 0: the file)."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line else ""
        return f"{self.path}{where}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        """The line as a JSON object: file, line, reason."""
        return {"file": str(self.path), "line": self.line, "reason": self.reason}


class MalformedInput(ValueError):
    """An input file is not in the format it is read as; ``bad`` says where."""

    def __init__(self, bad: BadLine) -> None:
        super().__init__(str(bad))
        self.bad = bad


OnBad = Callable[[BadLine], None] | None


class Reading(NamedTuple):
    """One polling station's reading: its tally body, or None and why not.

    ``why`` is ``complete``, ``pending`` (the source has no reading yet),
    ``incomplete`` (a reading without all the numbers a tally needs: ``detail``
    has ``missing``, the fields absent or not whole numbers, and ``found``, the
    numbers it has) or ``no data`` (nothing readable was published).
    """

    station: str
    body: dict[str, Any] | None
    why: str
    detail: Mapping[str, Any] | None = None


def report_bad(on_bad: OnBad, bad: BadLine) -> None:
    """Hand ``bad`` to ``on_bad``, or stop the read if there is none.

    Raises:
        MalformedInput: ``on_bad`` is None.
    """
    if on_bad is None:
        raise MalformedInput(bad)
    on_bad(bad)


def open_binary(path: Path) -> IO[bytes]:
    """``path`` opened for reading, decompressed if it starts as gzip does.

    Raises:
        OSError: the file cannot be opened (missing, a directory, no permission).
    """
    with path.open("rb") as probe:
        magic = probe.read(len(GZIP_MAGIC))
    if magic == GZIP_MAGIC:
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return path.open("rb")


def _gzip_broken(path: Path, line: int, error: Exception) -> MalformedInput:
    return MalformedInput(
        BadLine(path, line, f"the gzip data is corrupt or cut short ({error})")
    )


def text_lines(path: Path, on_bad: OnBad = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line that is not blank.

    Raises:
        OSError: the file cannot be read.
        MalformedInput: a line that is not UTF-8 (unless ``on_bad`` takes it),
            or gzip data that is corrupt or cut short.
    """
    number = 0
    with open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError as e:
                    where = f"byte {e.start + 1}"
                    report_bad(on_bad, BadLine(path, number, f"not UTF-8 ({where})"))
                    continue
                if text.strip():
                    yield number, text
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise _gzip_broken(path, number + 1, e) from e


def json_lines(
    path: Path, on_bad: OnBad = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every line of a JSON Lines file (gzip or not).

    Raises:
        OSError: the file cannot be read.
        MalformedInput: a line that is not a JSON object (unless ``on_bad``
            takes it), or gzip data that is corrupt or cut short.
    """
    for number, text in text_lines(path, on_bad):
        try:
            value = json.loads(text)
        except ValueError as e:
            report_bad(on_bad, BadLine(path, number, f"not JSON ({e})"))
            continue
        except RecursionError:
            report_bad(on_bad, BadLine(path, number, "not JSON (nested too deep)"))
            continue
        if not isinstance(value, dict):
            found = type(value).__name__
            report_bad(
                on_bad, BadLine(path, number, f"expected a JSON object, found {found}")
            )
            continue
        yield number, value


def csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, the values of ``columns``) of every row of a CSV file.

    The first line names the columns; it must name each of ``columns`` (others
    are ignored) and every row must have as many fields as it.

    Raises:
        OSError: the file cannot be read.
        MalformedInput: no header, a missing column, a row of the wrong width,
            text that is not UTF-8 or not CSV, or broken gzip data.
    """
    with io.TextIOWrapper(
        open_binary(path), encoding="utf-8-sig", newline=""
    ) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                expected = ", ".join(columns)
                raise MalformedInput(
                    BadLine(path, 1, f"empty: expected a header naming {expected}")
                )
            missing = [c for c in columns if c not in header]
            if missing:
                raise MalformedInput(
                    BadLine(
                        path,
                        1,
                        f"no column {', '.join(repr(c) for c in missing)} in the "
                        f"header (expected {', '.join(columns)}; "
                        f"found {', '.join(header)[:200]})",
                    )
                )
            where = [header.index(c) for c in columns]
            width = len(header)
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    raise MalformedInput(
                        BadLine(
                            path,
                            reader.line_num,
                            f"{len(row)} fields, the header names {width}",
                        )
                    )
                yield reader.line_num, [row[i] for i in where]
        except UnicodeDecodeError as e:
            raise MalformedInput(
                BadLine(path, reader.line_num + 1, "not UTF-8 text")
            ) from e
        except csv.Error as e:
            raise MalformedInput(
                BadLine(path, reader.line_num, f"not CSV ({e})")
            ) from e
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise _gzip_broken(path, reader.line_num + 1, e) from e


def data_dir(environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """Where default data files are, and what said so.

    ``SAKSI_DATA_DIR`` if set, else ``../shared/data`` beside the project this
    package was installed from (a checkout): never the current directory.
    """
    env = os.environ if environ is None else environ
    configured = env.get(DATA_DIR_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser().resolve(), DATA_DIR_VARIABLE
    return _CHECKOUT_DATA, "the project's ../shared/data"
