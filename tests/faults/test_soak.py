"""R5 and R6: a soak of steady writes and reads, everything verified, resources flat.

``bench.hammer`` runs ``saksi serve`` (SQLite, with a real witness) under a
steady load: writers at a fixed rate repeating a tenth of their envelopes,
random readers checking inclusion proofs and tiles, a full reader recomputing
every witnessed root from entry 0, and an observer checking each checkpoint's
consistency with the last and proving every receipt in a witnessed checkpoint.
The server's memory and open files are sampled all along.

Small in the suite (20 s); 30 minutes under ``python -m bench.fitness``.
"""

from __future__ import annotations

from pathlib import Path

from bench.hammer import Plan, hammer, served_log
from tests.evidence import FULL, scale

MERGE_DELAY = 60.0  # RELIABILITY.md R6: the proposed maximum merge delay, seconds


def test_soak_verifies_everything_and_stays_flat(tmp_path: Path, evidence) -> None:
    plan = Plan(
        writers=scale(16, 64),
        appends=10**9,  # bounded by time
        seconds=scale(20, 1800),
        write_rate=scale(150, 300),
        read_rate=scale(150, 300),
        readers=scale(2, 4),
        sample_every=scale(1, 10),
    )
    with served_log("sqlite", tmp_path) as served:
        figures = hammer(served, plan)
        check = served.check()
    errors = figures["errors"]
    assert figures["ok"], figures
    assert check["ok"], check
    assert figures["acked"] > 0
    assert figures["reads"] > 0
    assert figures["receipt_failures"] == 0, errors
    assert figures["read_failures"] == 0, errors
    assert figures["inclusion_failures"] == 0, errors
    assert figures["forks"] == 0, errors
    assert figures["inclusion_verified"] == figures["acked"]
    assert figures["full_read_mismatches"] == 0, errors
    assert figures["repeats"] > 0, errors
    assert figures["repeat_mismatches"] == 0, errors
    assert figures["tree_growth"] == figures["distinct_payloads"]
    assert not errors, errors
    assert figures["merge_delay_max_s"] <= MERGE_DELAY, figures["merge_delay_max_s"]
    res = figures["resources"]
    # Flat: the last quarter of the run holds no more files open than the first
    # (a few for the witness's and the readers' connections), and memory has
    # not kept growing beyond what SQLite's page caches take as the database
    # grows (32 MiB per connection at most: ledger/storage/engine.py).
    assert res["open_files_last"] <= res["open_files_first"] + 8, res
    assert res["rss_mib_last"] <= res["rss_mib_first"] * (1.5 if FULL else 2.0), res
    evidence.record(
        "R6",
        attempts=figures["acked"],
        detected=figures["inclusion_verified"],
        false_alarms=figures["inclusion_failures"] + figures["read_failures"],
        minutes=round(figures["seconds"] / 60, 1),
        appends_per_s=figures["appends_per_s"],
        reads_per_s=figures["reads_per_s"],
        merge_delay_p50_s=figures["merge_delay_p50_s"],
        merge_delay_p99_s=figures["merge_delay_p99_s"],
        checkpoints_consistent=figures["consistency_checks"],
        roots_recomputed=figures["full_read_roots"],
        rss_mib_first=res["rss_mib_first"],
        rss_mib_last=res["rss_mib_last"],
        rss_mib_quarters=res["rss_mib_quarters"],
        open_files_first=res["open_files_first"],
        open_files_last=res["open_files_last"],
    )
    availability = figures["availability"]
    assert set(availability) == {
        "GET /log/checkpoint",
        "GET /log/tile",
        "GET /v1/proofs/inclusion",
        "POST /v1/entries",
    }, availability
    # Chrome's bar for a log (RELIABILITY.md R8): 99% per endpoint.
    assert min(availability.values()) >= 0.99, availability
    evidence.record(
        "R8",
        attempts=len(availability),
        detected=sum(share >= 0.99 for share in availability.values()),
        minutes=round(figures["seconds"] / 60, 1),
        **{endpoint: f"{share:.4%}" for endpoint, share in availability.items()},
    )
    evidence.record(
        "R5",
        attempts=figures["repeats"],
        detected=figures["repeats"] - figures["repeat_mismatches"],
        distinct_payloads=figures["distinct_payloads"],
        tree_growth=figures["tree_growth"],
    )
