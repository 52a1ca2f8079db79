"""Shared test helpers: paths to ../shared, vector loading, fixed test keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
VECTORS = SHARED / "vectors"

# Tests only: deterministic Ed25519 seeds. Never use a fixed seed outside tests.
TEST_SEED = bytes(range(32))


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]
