"""The commission's region table as ``regions.registry/v1`` records, one per district.

Source: the commission's own tables (not the ministry's codes, which differ for
about 1% of villages): ``sirekap_wilayah_ppwp.csv`` (``kode, tingkat, parent,
sirekap_id, nama, n_tps``; tingkat 1 province, 2 regency, 3 district, 4 village)
and ``sirekap_tps_ppwp.csv.gz`` (``kode`` = 10-digit village + 3-digit station).
Overseas rows (province ``99``) are not domestic regions and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domains.inputs import BadLine, MalformedInput, csv_rows, data_dir

__all__ = [
    "DEFAULT_TPS",
    "DEFAULT_WILAYAH",
    "TPS_COLUMNS",
    "TPS_FILE",
    "WILAYAH_COLUMNS",
    "WILAYAH_FILE",
    "district_bodies",
]

# Under the data directory (``domains.inputs.data_dir``).
WILAYAH_FILE = "sirekap2024/sirekap_wilayah_ppwp.csv"
TPS_FILE = "sirekap2024/sirekap_tps_ppwp.csv.gz"
# As found when this module is imported; the CLI looks again when it runs.
DEFAULT_WILAYAH = data_dir()[0] / WILAYAH_FILE
DEFAULT_TPS = data_dir()[0] / TPS_FILE
WILAYAH_COLUMNS = ("kode", "tingkat", "nama")
TPS_COLUMNS = ("kode",)
SOURCE = "KPU Sirekap 2024 wilayah and TPS tables (pemilu/ppwp)"
_LEVELS = {2: "province", 4: "regency", 6: "district"}


def district_bodies(
    wilayah: Path, tps: Path, prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(district code, registry body) for every domestic district under ``prefix``.

    Either table may be gzip (told by its first bytes, not its name).

    Raises:
        OSError: a file cannot be read.
        MalformedInput: a table without the expected columns (``kode, tingkat,
            nama``; ``kode``), a row of the wrong width, text that is not
            UTF-8 CSV, or a district whose parent regions have no row.
    """
    names: dict[str, str] = {}
    villages: dict[str, dict[str, Any]] = {}
    for _, (code, level, name) in csv_rows(wilayah, WILAYAH_COLUMNS):
        if not code.isdigit() or code.startswith("99"):
            continue
        names[code] = name
        if level == "4" and code.startswith(prefix[:10]):
            villages[code] = {"name": name, "tps": []}
    for _, (code,) in csv_rows(tps, TPS_COLUMNS):
        village = villages.get(code[:10])
        if (
            village is not None
            and len(code) == 13
            and code.isdigit()
            and code.startswith(prefix)
        ):
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
        unnamed = [
            f"{_LEVELS[length]} {district[:length]}"
            for length in (2, 4, 6)
            if not names.get(district[:length])
        ]
        if unnamed:
            raise MalformedInput(
                BadLine(
                    wilayah,
                    0,
                    f"no row names the {' or '.join(unnamed)} above its villages "
                    "(expected a row with that kode and a nama)",
                )
            )
        yield district, body
