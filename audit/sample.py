"""The operator's side of an audit sample: plan records, and the draw from the database.

``plan_body`` builds an ``audit.plan/v1`` body (``verifier.sample``) whose
seed is a tree the log has not reached yet; ``sample_local`` draws a logged
plan's sample from the operator's own database, through the verifier's code
(``verifier.sample_check``) over the stored tiles: every entry it draws from is
proven against the signed checkpoint and audited, exactly as an observer's
``saksi-verify sample`` does over HTTP, so the two give the same sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.errors import LedgerError
from ledger.read.reader import LogReader
from ledger.recordlog import ReadOnlyLog
from verifier.body_schema import check
from verifier.cosignature import NO_WITNESSES, WitnessPolicy
from verifier.sample import APR, FIXED, PLAN, check_plan_body
from verifier.sample_check import recompute_sample
from verifier.tile_client import FetchError, TileLog
from verifier.tile_format import parse_tile_path

__all__ = ["check_plan", "local_tiles", "plan_body", "sample_local"]


def local_tiles(reader: LogReader) -> TileLog:
    """A log's tlog-tiles read side, served from its database in this process."""

    def fetch(path: str) -> bytes:
        try:
            if path == "checkpoint":
                return reader.checkpoint()
            level, index, width = parse_tile_path(path)
            if level is None:
                return reader.entry_bundle(index, width)
            return reader.tile(level, index, width)
        except LedgerError as e:
            raise FetchError(f"{path}: {e}") from e

    return TileLog(fetch)


def plan_body(
    *,
    purpose: str,
    ballot: str,
    unit: str,
    strata: int,
    seed_size: int,
    size: int | None = None,
    risk_limit: str | None = None,
    max_shift: str | None = None,
    min_per_stratum: int = 0,
) -> dict[str, Any]:
    """A plan's body: ``size`` for a fixed sample, else the risk limit method."""
    body: dict[str, Any] = {
        "purpose": purpose,
        "ballot": ballot,
        "unit": unit,
        "strata": strata,
        "method": FIXED if size is not None else APR,
        "seed_size": seed_size,
    }
    if size is not None:
        body["size"] = size
    else:
        body["risk_limit"] = risk_limit
        body["max_shift"] = max_shift
    if min_per_stratum:
        body["min_per_stratum"] = min_per_stratum
    return body


def check_plan(subject: str, body: dict[str, Any]) -> None:
    """Refuse a plan before it is signed: what the log and the verifier refuse.

    Raises:
        SchemaViolation, PlanRefused: the plan is not one a sample can use.
    """
    check(PLAN, body, subject)
    check_plan_body(PLAN.region_of(subject) or "", body)


def sample_local(
    log: ReadOnlyLog,
    plan_index: int,
    *,
    policy: WitnessPolicy = NO_WITNESSES,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The sample of the plan at ``plan_index``, drawn from the database.

    Raises:
        VerificationError: as ``recompute_sample``.
        FetchError: the database could not be read.
    """
    tiles = local_tiles(log.reader)
    return recompute_sample(
        tiles,
        tiles.checkpoint(),
        log.verifier_key,
        log.origin,
        plan_index,
        policy=policy,
        workers=workers,
        progress=progress,
    )
