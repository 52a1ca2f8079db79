"""The commission's public per-TPS JSON (Sirekap ``hhcw``) as tally bodies.

One document per polling station, as published at
``https://sirekap-obj-data.kpu.go.id/pemilu/hhcw/ppwp/{2}/{4}/{6}/{10}/{13}.json``:
``chart`` (votes per candidate id), ``administrasi`` (registered voters, voters
by list and sex, valid, invalid and total votes), ``images`` (the form photos),
``ts``, ``status_suara``/``status_adm``. Only complete documents (both ``chart``
and ``administrasi``) are results; the rest are pending. The numbers go into the
record exactly as published: a form that does not add up is evidence as written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Station", "read_stations", "tally_body"]


@dataclass(frozen=True, slots=True)
class Station:
    """One polling station's published document (``data`` None: unreadable)."""

    code: str
    data: Mapping[str, Any] | None
    url: str | None = None


def read_stations(path: Path) -> Iterator[Station]:
    """Stations from a JSONL file, or from a directory of per-TPS JSON files.

    A JSONL line is ``{"kode_tps", "data"[, "url"]}``; in a directory, each
    ``<13 digits>.json`` file (at any depth) is one station's document.

    Raises:
        OSError: the path cannot be read.
    """
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            code = file.stem
            if len(code) != 13 or not code.isdigit():
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except ValueError:
                data = None
            yield Station(code, data if isinstance(data, dict) else None)
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                code = str(doc["kode_tps"])
            except (ValueError, KeyError, TypeError):
                continue
            data = doc.get("data")
            url = doc.get("url")
            yield Station(
                code,
                data if isinstance(data, dict) else None,
                url if isinstance(url, str) and url.startswith("https://") else None,
            )


def _lpj(admin: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {
        "male": admin[f"{prefix}_l"],
        "female": admin[f"{prefix}_p"],
        "total": admin[f"{prefix}_j"],
    }


def tally_body(station: Station) -> tuple[dict[str, Any] | None, str]:
    """The machine-reading tally body of a station, or None and why not.

    The reason is ``pending`` (results not complete yet) or ``no data``
    (nothing readable was published).
    """
    data = station.data
    if data is None:
        return None, "no data"
    chart, admin = data.get("chart"), data.get("administrasi")
    if not isinstance(chart, dict) or not isinstance(admin, dict):
        return None, "pending"
    votes = {
        str(cid): n for cid, n in chart.items() if str(cid).isdigit() and n is not None
    }
    try:
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
    except KeyError:
        return None, "pending"
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
    return body, "complete"
