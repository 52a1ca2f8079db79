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

A station's reading is a tally only with all five numbers (``pas1, pas2, sah,
tSah, jum``); one the source has not read yet is pending, and one that lacks a
number (the crowd often read the pairs' votes but not ``jum``) is incomplete,
reported with what it lacks and what it has.

The 2019 presidential ballot had two pairs; they are candidates ``1`` and ``2``
(``pas1``, ``pas2``) of ``candidates_ppwp_2019.json``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from domains.inputs import BadLine, OnBad, Reading, csv_rows, json_lines, report_bad

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


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _node_problem(node: Mapping[str, Any]) -> str | None:
    """What ``node`` lacks to be a node of the tree, or None."""
    if not _whole(node.get("id")) or node["id"] < 0:
        return "id: expected a whole number"
    depth = node.get("depth")
    if not _whole(depth) or not 0 <= depth <= 4:
        return "depth: expected 0 (nation) to 4 (village)"
    if not isinstance(node.get("name"), str) or not node["name"].strip():
        return "name: expected the region's name"
    parents = node.get("parentIds", [])
    if not isinstance(parents, list) or not all(_whole(p) for p in parents):
        return "parentIds: expected a list of node ids"
    names = node.get("parentNames", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "parentNames: expected a list of names"
    children = node.get("children") or []
    if not isinstance(children, list) or not all(
        isinstance(c, list) and c for c in children
    ):
        return "children: expected a list of [id or station number, …]"
    if depth == 4:
        for index, child in enumerate(children):
            if not _whole(child[0]):
                return (
                    f"children[{index}]: expected [station number, …], "
                    f"found {str(child[0])[:20]!r} as the station number"
                )
        if not isinstance(node.get("kpu"), list | dict | None):
            return "kpu: expected the Situng readings (a list or an object)"
        if not isinstance(node.get("data"), dict | None):
            return "data: expected the crowd's readings (an object)"
    return None


def read_nodes(path: Path, on_bad: OnBad = None) -> dict[int, dict[str, Any]]:
    """Every node of a JSONL extract (gzip or not, told by its bytes), by id.

    Raises:
        OSError: the file cannot be read.
        MalformedInput: a line that is not a node document (unless ``on_bad``
            takes it), or gzip data that is corrupt or cut short.
    """
    nodes: dict[int, dict[str, Any]] = {}
    lines: dict[int, int] = {}
    for number, node in json_lines(path, on_bad):
        problem = _node_problem(node)
        if problem is None and node["id"] in nodes:
            problem = f"node {node['id']} again (first on line {lines[node['id']]})"
        if problem is not None:
            report_bad(
                on_bad, BadLine(path, number, f"not a KawalPemilu node: {problem}")
            )
            continue
        nodes[node["id"]] = node
        lines[node["id"]] = number
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
        MalformedInput: the table lacks the ``kode``, ``parent`` or ``nama``
            column, or a row is not CSV of the header's width.
    """
    children: dict[str, dict[str, str]] = {}
    result = Matching()
    for _, (kode, above, nama) in csv_rows(wilayah, ("kode", "parent", "nama")):
        siblings = children.setdefault(above, {})
        key = _normal(nama)
        # two siblings of one name: neither can be matched by name
        siblings[key] = "" if key in siblings else kode
        result.names[kode] = nama
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


def _numbers(reading: object) -> tuple[dict[str, int], list[str]]:
    """The five numbers a tally needs that ``reading`` has, and those it lacks."""
    fields = reading if isinstance(reading, Mapping) else {}
    found = {name: fields[name] for name in _FIELDS if _whole(fields.get(name))}
    return found, [name for name in _FIELDS if name not in found]


def _pages(photos: object) -> list[dict[str, Any]]:
    """The latest photo of each page of the presidential form (C1, type 1)."""
    latest: dict[int, tuple[int, str]] = {}
    for url, photo in photos.items() if isinstance(photos, Mapping) else ():
        c1 = photo.get("c1") if isinstance(photo, Mapping) else None
        if not isinstance(c1, Mapping) or c1.get("type") != 1:
            continue
        halaman = str(c1.get("halaman"))
        # ASCII digits only ("²".isdigit() is true), few enough for int()
        short = len(halaman) <= 3 and halaman.isascii() and halaman.isdigit()
        page = int(halaman) if short else 0
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
) -> tuple[object, Mapping[str, Any]]:
    """The source's reading of a station (None: none yet), and the crowd's entry."""
    if source == "kpu":
        kpu = node.get("kpu")
        if isinstance(kpu, list):
            return (kpu[number] if number < len(kpu) else None), {}
        return (kpu or {}).get(str(number)), {}
    crowd = (node.get("data") or {}).get(str(number))
    if not isinstance(crowd, Mapping):
        return None, {}
    total = crowd.get("sum")
    if isinstance(total, Mapping) and total.get("pending"):
        return None, crowd
    return total, crowd


def _published_at(crowd: Mapping[str, Any]) -> str | None:
    stamp = crowd.get("ts")
    if not _whole(stamp):
        return None
    try:
        when = dt.datetime.fromtimestamp(stamp / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return when.isoformat(timespec="seconds")


def tally_bodies(
    nodes: Mapping[int, Mapping[str, Any]], matching: Matching, source: str = "kpu"
) -> Iterator[Reading]:
    """The reading of every station: its machine-reading tally body, or why not.

    ``source`` is ``kpu`` (the commission's Situng numbers) or ``kawalpemilu``
    (the crowd's reading of the photos, with the photos as form pages). ``why``
    is ``complete``; ``pending`` when the source has no reading of the station
    yet (the crowd's marked ``pending``); or ``incomplete`` when its reading
    lacks one of ``pas1, pas2, sah, tSah, jum`` (``detail`` says which, and
    what it has).

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
                yield Reading(station, None, "pending")
                continue
            found, missing = _numbers(reading)
            if missing:
                detail = {"missing": missing, "found": found}
                yield Reading(station, None, "incomplete", detail)
                continue
            body: dict[str, Any] = {
                "stage": "machine_reading",
                "votes": {"1": found["pas1"], "2": found["pas2"]},
                "valid": found["sah"],
                "invalid": found["tSah"],
                "total": found["jum"],
            }
            pages = _pages(crowd.get("photos"))
            if pages:
                body["form"] = pages
            origin: dict[str, Any] = {
                "system": SOURCES[source],
                "url": NODE_URL.format(id=int(node["id"])),
            }
            published = _published_at(crowd)
            if published is not None:
                origin["published_at"] = published
            body["source"] = origin
            yield Reading(station, body, "complete")
