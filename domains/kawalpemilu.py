"""The 2019 KawalPemilu extract as region registry and tally records.

Source: the node tree KawalPemilu published at ``kawal-c1.appspot.com/api/c/<id>``
(one JSON document per node, one per line). A node has ``id``, ``name``,
``depth`` (0 nation, 1 province, 2 regency, 3 district, 4 village),
``parentIds`` and ``parentNames``; at depth 4, ``children`` is
``[[tps number, n1, n2], …]``, ``kpu`` holds the commission's Situng numbers per
station (a list indexed by station number: ``{pas1, pas2, sah, tSah, jum}``)
and ``data[<tps>].sum`` the crowd's own reading of the form photos, with
``data[<tps>].photos`` the photos it read.

KawalPemilu's ids are its own, not region codes. A log names regions by the
commission's codes, so each node is matched by name to the commission's region
table, level by level under its matched parent: an exact match of the normalised
name first (case, spaces and punctuation ignored; ``SATU``/``DUA``/``TIGA``… read
as Roman numerals, as the commission writes them), else the one clearly closest
spelling among its siblings (2019 and 2024 spellings differ: ``PAHUWATO`` and
``POHUWATO``). What does not match is reported, never guessed.

The 2019 presidential ballot had two pairs; they are candidates ``1`` and ``2``
(``pas1``, ``pas2``) of ``candidates_ppwp_2019.json``.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CANDIDATES_2019",
    "SOURCES",
    "Matching",
    "district_bodies",
    "match_regions",
    "read_nodes",
    "tally_bodies",
]

CANDIDATES_2019 = Path(__file__).parent / "data" / "candidates_ppwp_2019.json"
SOURCES = {"kpu": "situng2019", "kawalpemilu": "kawalpemilu2019"}
REGISTRY_SOURCE = (
    "KawalPemilu 2019 extract (stations as of 2019), region codes and names "
    "from the KPU Sirekap wilayah table"
)
NODE_URL = "https://kawal-c1.appspot.com/api/c/{id}"
_NUMERALS = {"SATU": "I", "DUA": "II", "TIGA": "III", "EMPAT": "IV", "LIMA": "V"}
_CLOSE = 0.8  # similarity a spelling variant must reach
_MARGIN = 0.1  # ... and by which it must beat the next sibling
_FIELDS = ("pas1", "pas2", "sah", "tSah", "jum")


def read_nodes(path: Path) -> dict[int, dict[str, Any]]:
    """Every node of a JSONL (optionally gzip) extract, by KawalPemilu id.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line is not a node document.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    nodes: dict[int, dict[str, Any]] = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                node = json.loads(line)
                nodes[int(node["id"])] = node
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"line {number}: not a KawalPemilu node") from e
    return nodes


def _normal(name: str) -> str:
    words = re.findall(r"[A-Z0-9]+", name.upper())
    return "".join(_NUMERALS.get(w, w) for w in words)


@dataclass
class Matching:
    """KawalPemilu node id -> the commission's region code (and its name)."""

    codes: dict[int, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    # (node id, "PROVINCE / REGENCY / …") of each node left unmatched
    unmatched: list[tuple[int, str]] = field(default_factory=list)
    # (node id, 2019 name, commission name) of each spelling variant accepted
    variants: list[tuple[int, str, str]] = field(default_factory=list)


def _closest(name: str, siblings: Mapping[str, str]) -> str | None:
    scored = sorted(
        ((difflib.SequenceMatcher(None, name, k).ratio(), k) for k in siblings),
        reverse=True,
    )
    if not scored or scored[0][0] < _CLOSE:
        return None
    if len(scored) > 1 and scored[0][0] - scored[1][0] < _MARGIN:
        return None
    return siblings[scored[0][1]] or None


def match_regions(nodes: Mapping[int, Mapping[str, Any]], wilayah: Path) -> Matching:
    """Match every node below the nation to the commission's region table.

    Raises:
        OSError: the table cannot be read.
        KeyError: the table lacks the ``kode``, ``parent`` or ``nama`` column.
    """
    children: dict[str, dict[str, str]] = {}
    result = Matching()
    with wilayah.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            siblings = children.setdefault(row["parent"], {})
            key = _normal(row["nama"])
            # two siblings of one name: neither can be matched by name
            siblings[key] = "" if key in siblings else row["kode"]
            result.names[row["kode"]] = row["nama"]
    taken: set[str] = set()
    for node in sorted(nodes.values(), key=lambda n: (n["depth"], n["id"])):
        if node["depth"] == 0:
            continue
        parents = node.get("parentIds") or [0]
        parent = "" if parents[-1] == 0 else result.codes.get(parents[-1])
        where = " / ".join([*node.get("parentNames", [])[1:], node["name"]])
        if parent is None:
            result.unmatched.append((node["id"], where))
            continue
        siblings = children.get(parent, {})
        name = _normal(node["name"])
        code = siblings.get(name)
        if code is None:
            code = _closest(name, siblings)
            if code and code not in taken:
                result.variants.append((node["id"], node["name"], result.names[code]))
        if not code or code in taken:
            result.unmatched.append((node["id"], where))
            continue
        taken.add(code)
        result.codes[node["id"]] = code
    return result


def _villages(
    nodes: Mapping[int, Mapping[str, Any]], matching: Matching
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for node_id, code in sorted(matching.codes.items(), key=lambda item: item[1]):
        node = nodes[node_id]
        if node["depth"] == 4 and len(code) == 10:
            yield code, node


def district_bodies(
    nodes: Mapping[int, Mapping[str, Any]], matching: Matching
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(district code, ``regions.registry/v1`` body) with the 2019 stations."""
    names = matching.names
    by_district: dict[str, dict[str, Any]] = {}
    for code, node in _villages(nodes, matching):
        stations = sorted(
            {int(c[0]) for c in node.get("children") or [] if 1 <= int(c[0]) <= 999}
        )
        district = code[:6]
        body = by_district.setdefault(
            district,
            {
                "province": {"code": code[:2], "name": names[code[:2]]},
                "regency": {"code": code[:4], "name": names[code[:4]]},
                "district": {"name": names[district]},
                "villages": {},
                "source": REGISTRY_SOURCE,
            },
        )
        body["villages"][code] = {"name": names[code], "tps": stations}
    yield from sorted(by_district.items())


def _numbers(reading: object) -> dict[str, int] | None:
    if not isinstance(reading, Mapping):
        return None
    numbers: dict[str, int] = {}
    for name in _FIELDS:
        value = reading.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        numbers[name] = value
    return numbers


def _pages(photos: object) -> list[dict[str, Any]]:
    """The latest photo of each page of the presidential form (C1, type 1)."""
    latest: dict[int, tuple[int, str]] = {}
    for url, photo in photos.items() if isinstance(photos, Mapping) else ():
        c1 = photo.get("c1") if isinstance(photo, Mapping) else None
        if not isinstance(c1, Mapping) or c1.get("type") != 1:
            continue
        page = int(str(c1.get("halaman"))) if str(c1.get("halaman")).isdigit() else 0
        secure = re.sub(r"^http://", "https://", str(url))
        if not 1 <= page <= 50 or not re.fullmatch(r"https://\S{1,492}", secure):
            continue
        ts = photo.get("ts") if isinstance(photo.get("ts"), int) else 0
        if page not in latest or ts > latest[page][0]:
            latest[page] = (ts, secure)
    return [
        {"page": page, "sha256": None, "url": url}
        for page, (_, url) in sorted(latest.items())
    ]


def _station_reading(
    node: Mapping[str, Any], number: int, source: str
) -> tuple[dict[str, int] | None, Mapping[str, Any]]:
    if source == "kpu":
        kpu = node.get("kpu")
        if isinstance(kpu, list):
            reading = kpu[number] if number < len(kpu) else None
        else:
            reading = (kpu or {}).get(str(number))
        return _numbers(reading), {}
    crowd = (node.get("data") or {}).get(str(number))
    if not isinstance(crowd, Mapping):
        return None, {}
    total = crowd.get("sum") or {}
    if total.get("pending"):
        return None, crowd
    return _numbers(total), crowd


def tally_bodies(
    nodes: Mapping[int, Mapping[str, Any]], matching: Matching, source: str = "kpu"
) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    """(station code, machine-reading tally body or None, why) for every station.

    ``source`` is ``kpu`` (the commission's Situng numbers) or ``kawalpemilu``
    (the crowd's reading of the photos, with the photos as form pages). ``why``
    is ``complete``, or ``pending`` when the source has no full reading yet.

    Raises:
        ValueError: an unknown source.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: use kpu or kawalpemilu")
    for code, node in _villages(nodes, matching):
        for child in node.get("children") or []:
            number = int(child[0])
            if not 1 <= number <= 999:
                continue
            reading, crowd = _station_reading(node, number, source)
            station = f"{code}{number:03d}"
            if reading is None:
                yield station, None, "pending"
                continue
            body: dict[str, Any] = {
                "stage": "machine_reading",
                "votes": {"1": reading["pas1"], "2": reading["pas2"]},
                "valid": reading["sah"],
                "invalid": reading["tSah"],
                "total": reading["jum"],
            }
            pages = _pages(crowd.get("photos"))
            if pages:
                body["form"] = pages
            origin: dict[str, Any] = {
                "system": SOURCES[source],
                "url": NODE_URL.format(id=int(node["id"])),
            }
            if isinstance(crowd.get("ts"), int):
                stamp = dt.datetime.fromtimestamp(crowd["ts"] / 1000, dt.UTC)
                origin["published_at"] = stamp.isoformat(timespec="seconds")
            body["source"] = origin
            yield station, body, "complete"
