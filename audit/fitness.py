"""The fitness-test checklist: SECURITY.md's controls, tests and this log's evidence.

SECURITY.md's threat table (its "Threat model" section: threat | control | how
it is tested) is read as it is; each row keeps the tests it names (the code
spans of its last column). A row whose control an audit of the log itself
exercises is linked to the numbered checks (or the report's sections) that show
it for this log, with their figures; the others are controls of the operator's
side, proven by the tests named, which the report lists without a figure of
its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EVIDENCE", "Control", "controls"]

# The start of a threat's wording in SECURITY.md -> the audit checks (by name)
# or report sections ("witnesses", "samples", "forensics") that show it here.
EVIDENCE: dict[str, tuple[str, ...]] = {
    "edit, delete, reorder or truncate rows": ("tree",),
    "write outside a key's role or region": ("signatures", "authorization"),
    "one admin takes over the registry": ("authorization", "keys"),
    "replay, duplicate, lost update, silent overwrite": (
        "revision-chain",
        "duplicate-payload",
    ),
    "malformed or hostile input": ("entry-format", "schema"),
    "a station, recap committee or reading system writes": (
        "authorization",
        "recap-children",
        "recap-sum",
    ),
    "a total changed without a visible correction": ("stale-recaps", "forensics"),
    "a split view or a rewrite shown to some observers only": ("tree", "witnesses"),
    "a log that forks and hides it from its witnesses": ("witnesses",),
    "an operator who re-signs a tampered tree": (
        "signatures",
        "authorization",
        "revision-chain",
        "recap-sum",
    ),
    "leaf posing as interior node": ("tree",),
    "forged or malformed checkpoint": ("tree", "witnesses"),
    "an audit sample chosen by someone": ("samples",),
}

_ROW = re.compile(r"^\|(?P<threat>[^|]+)\|(?P<control>[^|]+)\|(?P<tests>[^|]+)\|\s*$")
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Control:
    """One row of the threat table, with what shows it in an audit report."""

    threat: str
    control: str
    tests: tuple[str, ...]
    evidence: tuple[str, ...]


def controls(security_md: Path) -> list[Control]:
    """The threat table's rows, in order (empty when the file has none).

    Raises:
        OSError: the file cannot be read.
    """
    rows = []
    section = ""
    for line in security_md.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if section != "Threat model":
            continue
        match = _ROW.match(line.strip())
        if match is None:
            continue
        threat = match["threat"].strip()
        if threat in ("threat", "---") or set(threat) <= {"-", " "}:
            continue
        evidence = next((v for k, v in EVIDENCE.items() if threat.startswith(k)), ())
        rows.append(
            Control(
                threat=threat,
                control=match["control"].strip(),
                tests=tuple(_CODE.findall(match["tests"])),
                evidence=evidence,
            )
        )
    return rows
