"""BENCHMARKS.md is made of sections, one per benchmark, each rewritten by its run."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Each section below is written by the command it names, on the machine it\n"
    "names; how to read the figures is in bench/README.md.\n"
)


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or add) the section ``name`` of the report at ``path``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin not in current:
        # A report from before sections existed is replaced whole.
        current = HEADER if "<!--" not in current else current
        path.write_text(current.rstrip() + "\n\n" + block, encoding="utf-8")
        return
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    path.write_text(pattern.sub(lambda _m: block, current), encoding="utf-8")


def machine(what: str) -> str:
    """``Machine: ...; measured ...`` and ``what`` (how the run was set up)."""
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {what}"
    )
