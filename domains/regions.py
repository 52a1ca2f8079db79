"""The commission's region table as ``regions.registry/v1`` records, one per district.

Source: the commission's own tables (not the ministry's codes, which differ for
about 1% of villages): ``sirekap_wilayah_ppwp.csv`` (``kode, tingkat, parent,
sirekap_id, nama, n_tps``; tingkat 1 province, 2 regency, 3 district, 4 village)
and ``sirekap_tps_ppwp.csv.gz`` (``kode`` = 10-digit village + 3-digit station).
Overseas rows (province ``99``) are not domestic regions and are left out.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["DEFAULT_TPS", "DEFAULT_WILAYAH", "district_bodies"]

DEFAULT_WILAYAH = Path("../shared/data/sirekap2024/sirekap_wilayah_ppwp.csv")
DEFAULT_TPS = Path("../shared/data/sirekap2024/sirekap_tps_ppwp.csv.gz")
SOURCE = "KPU Sirekap 2024 wilayah and TPS tables (pemilu/ppwp)"


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def district_bodies(
    wilayah: Path, tps: Path, prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(district code, registry body) for every domestic district under ``prefix``.

    Raises:
        OSError: a file cannot be read.
        ValueError: a row that does not have the expected columns.
    """
    names: dict[str, str] = {}
    villages: dict[str, dict[str, Any]] = {}
    with _open(wilayah) as handle:
        for row in csv.DictReader(handle):
            code, level = row["kode"], row["tingkat"]
            if not code.isdigit() or code.startswith("99"):
                continue
            names[code] = row["nama"]
            if level == "4" and code.startswith(prefix[:10]):
                villages[code] = {"name": row["nama"], "tps": []}
    with _open(tps) as handle:
        for row in csv.DictReader(handle):
            code = row["kode"]
            village = villages.get(code[:10])
            if village is not None and len(code) == 13 and code.startswith(prefix):
                village["tps"].append(int(code[10:]))
    by_district: dict[str, dict[str, Any]] = {}
    for code, village in sorted(villages.items()):
        if not code.startswith(prefix) and not prefix.startswith(code):
            continue
        district = code[:6]
        body = by_district.setdefault(
            district,
            {
                "province": {"code": district[:2], "name": names.get(district[:2], "")},
                "regency": {"code": district[:4], "name": names.get(district[:4], "")},
                "district": {"name": names.get(district, "")},
                "villages": {},
                "source": SOURCE,
            },
        )
        body["villages"][code] = {
            "name": village["name"],
            "tps": sorted(village["tps"]),
        }
    for district, body in sorted(by_district.items()):
        if not all(body[k]["name"] for k in ("province", "regency", "district")):
            raise ValueError(f"district {district}: a parent region has no name")
        yield district, body
