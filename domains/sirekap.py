"""The commission's public per-TPS JSON (Sirekap ``hhcw``) as tally bodies.

One document per polling station, as published at
``https://sirekap-obj-data.kpu.go.id/pemilu/hhcw/ppwp/{2}/{4}/{6}/{10}/{13}.json``:
``chart`` (votes per candidate id), ``administrasi`` (registered voters, voters
by list and sex, valid, invalid and total votes), ``images`` (the form photos),
``ts``, ``status_suara``/``status_adm``. Only complete documents (``chart`` and
``administrasi`` with all its numbers) are results; the rest are pending (not
published yet) or incomplete (reported with the numbers they lack). The numbers
go into the record exactly as published: a form that does not add up is
evidence as written.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from domains.inputs import (
    BadLine,
    MalformedInput,
    OnBad,
    Reading,
    json_lines,
    open_binary,
    report_bad,
)

__all__ = ["Station", "read_stations", "tally_body"]

_FILES = ("*.json", "*.json.gz")
_ADMIN_GROUPS = (
    "pemilih_dpt",
    "pengguna_dpt",
    "pengguna_dptb",
    "pengguna_non_dpt",
    "pengguna_total",
)
_ADMIN_FIELDS = (
    "suara_sah",
    "suara_tidak_sah",
    "suara_total",
    *(f"{group}_{sex}" for group in _ADMIN_GROUPS for sex in "lpj"),
)


@dataclass(frozen=True, slots=True)
class Station:
    """One polling station's published document (``data`` None: unreadable)."""

    code: str
    data: Mapping[str, Any] | None
    url: str | None = None


def _station_code(value: object) -> str | None:
    code = str(value) if isinstance(value, str | int) else ""
    return code if len(code) == 13 and code.isdigit() else None


def _document(data: object, path: Path, line: int, on_bad: OnBad) -> bool:
    """Whether ``data`` is a station document (an object, or null: no data)."""
    if data is None or isinstance(data, dict):
        return True
    found = type(data).__name__
    report_bad(
        on_bad, BadLine(path, line, f"data: expected a JSON object, found {found}")
    )
    return False


_UNREADABLE = object()


def _read_file(file: Path, on_bad: OnBad) -> object:
    """One station's JSON file (gzip or not); ``report_bad`` if unreadable."""
    try:
        with open_binary(file) as handle:
            raw = handle.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        # As for every input file: broken gzip stops the read (not ``on_bad``).
        raise MalformedInput(
            BadLine(file, 0, f"the gzip data is corrupt or cut short ({e})")
        ) from e
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        report_bad(on_bad, BadLine(file, 0, "not UTF-8 text"))
    except json.JSONDecodeError as e:
        report_bad(on_bad, BadLine(file, e.lineno, f"not JSON ({e.msg})"))
    except (ValueError, RecursionError) as e:  # a number too long, nested too deep
        report_bad(on_bad, BadLine(file, 0, f"not JSON ({e})"[:200]))
    return _UNREADABLE


def read_stations(path: Path, on_bad: OnBad = None) -> Iterator[Station]:
    """Stations from a JSONL file, or from a directory of per-TPS JSON files.

    A JSONL line is ``{"kode_tps", "data"[, "url"]}``: ``kode_tps`` is the
    13-digit station code and ``data`` the published document (an object, or
    null when nothing was published). In a directory, each ``<13 digits>.json``
    file (at any depth, ``.json.gz`` too) is one station's document. Files are
    read as gzip when their first bytes say so, whatever their name.

    Raises:
        OSError: the path cannot be read.
        MalformedInput: a line or file that is not that (unless ``on_bad``
            takes it), or gzip data that is corrupt or cut short.
    """
    if path.is_dir():
        files = sorted({f for pattern in _FILES for f in path.rglob(pattern)})
        for file in files:
            code = file.name.split(".", 1)[0]
            if len(code) != 13 or not code.isdigit():
                continue
            data = _read_file(file, on_bad)
            if data is not _UNREADABLE and _document(data, file, 0, on_bad):
                yield Station(code, data if isinstance(data, dict) else None)
        return
    for number, doc in json_lines(path, on_bad):
        station = _station_code(doc.get("kode_tps"))
        if station is None:
            found = json.dumps(doc.get("kode_tps"))[:40]
            report_bad(
                on_bad,
                BadLine(
                    path,
                    number,
                    f"kode_tps: expected a 13-digit station code, found {found}",
                ),
            )
            continue
        data = doc.get("data")
        if not _document(data, path, number, on_bad):
            continue
        url = doc.get("url")
        yield Station(
            station,
            data if isinstance(data, dict) else None,
            url if isinstance(url, str) and url.startswith("https://") else None,
        )


def _lpj(admin: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {
        "male": admin[f"{prefix}_l"],
        "female": admin[f"{prefix}_p"],
        "total": admin[f"{prefix}_j"],
    }


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def tally_body(station: Station) -> Reading:
    """The machine-reading tally body of a station, or None and why not.

    The reason is ``pending`` (``chart`` or ``administrasi`` not published
    yet), ``incomplete`` (``administrasi`` lacks a number; ``detail`` names
    each ``administrasi.<field>`` missing) or ``no data`` (nothing readable
    was published).
    """
    data = station.data
    if data is None:
        return Reading(station.code, None, "no data")
    chart, admin = data.get("chart"), data.get("administrasi")
    if not isinstance(chart, dict) or not isinstance(admin, dict):
        return Reading(station.code, None, "pending")
    missing = [f for f in _ADMIN_FIELDS if not _whole(admin.get(f))]
    if missing:
        found = {f: admin[f] for f in _ADMIN_FIELDS if f not in missing}
        detail = {
            "missing": [f"administrasi.{f}" for f in missing],
            "found": {f"administrasi.{f}": n for f, n in found.items()},
        }
        return Reading(station.code, None, "incomplete", detail)
    votes = {
        str(cid): n for cid, n in chart.items() if str(cid).isdigit() and n is not None
    }
    body: dict[str, Any] = {
        "stage": "machine_reading",
        "votes": votes,
        "valid": admin["suara_sah"],
        "invalid": admin["suara_tidak_sah"],
        "total": admin["suara_total"],
        "registered": {"dpt": _lpj(admin, "pemilih_dpt")},
        "voters": {
            "dpt": _lpj(admin, "pengguna_dpt"),
            "dptb": _lpj(admin, "pengguna_dptb"),
            "dpk": _lpj(admin, "pengguna_non_dpt"),
            "total": _lpj(admin, "pengguna_total"),
        },
    }
    pages = [
        {"page": number, "sha256": None, "url": url}
        for number, url in enumerate(data.get("images") or [], start=1)
        if isinstance(url, str) and url.startswith("https://") and len(url) <= 500
    ]
    if pages:
        body["form"] = pages
    source: dict[str, Any] = {"system": "sirekap"}
    if station.url:
        source["url"] = station.url
    if isinstance(data.get("ts"), str):
        source["published_at"] = data["ts"][:40]
    body["source"] = source
    return Reading(station.code, body, "complete")
