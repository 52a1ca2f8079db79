"""``bench.cluster`` end to end, small, so that the benchmark cannot rot.

The same functions as ``python -m bench.cluster`` with tiny counts: every append
acknowledged and counted in the signed tree, the CPU metered, one takeover
measured. No timing is asserted (speed is the benchmark's business).
"""

from __future__ import annotations

from bench.cluster import (
    Case,
    Tally,
    Usage,
    extrapolation,
    measure,
    measure_takeover,
    section,
)

CASES = [(8, 1, 80), (3, 100, 600)]  # (clients, envelopes per request, envelopes)


def _check(case, count: int) -> None:
    tally = case.tally
    assert tally.acked == count, (tally.failed, tally.unsent)
    assert case.growth == count  # the signed tree holds every acknowledged append
    assert case.complete
    assert tally.repeats == 0
    assert not tally.failed
    assert tally.unsent == 0
    assert 1 <= case.commits <= count
    assert len(tally.latencies) >= -(-count // case.batch)  # one per request
    assert case.usage.server > 0
    assert case.holder in case.usage.members


def test_cluster_bench_small(tmp_path, pg_cluster):
    sqlite = measure(tmp_path / "sqlite", 1, CASES, seconds=60)
    members = measure(tmp_path / "pg", 2, CASES, cluster=pg_cluster, seconds=60)
    for case, (_clients, _batch, count) in zip(
        sqlite + members, CASES * 2, strict=True
    ):
        _check(case, count)
    assert [c.backend for c in sqlite] == ["sqlite", "sqlite"]
    for case in members:
        assert case.backend == "postgres"
        assert len(case.usage.members) == 2  # both workers metered
        assert case.queue is not None
    # PostgreSQL's processes are metered. /proc counts CPU in 10 ms ticks and a
    # case lasts a fraction of a second: counted over both cases.
    assert sum(case.usage.database for case in members) > 0

    takeover = measure_takeover(
        tmp_path / "takeover", pg_cluster, 1, rate=60, clients=4, settle=1.0
    )
    (kill,) = takeover.kills
    assert kill.lease_moved is not None  # the token moved on after the SIGKILL
    assert kill.first_ack is not None  # and a write sent after it was acknowledged
    assert kill.replaced is not None  # the supervisor started another worker
    assert takeover.tally.acked > 0
    assert takeover.growth == takeover.tally.acked
    assert not takeover.tally.failed

    text = section(sqlite + members, takeover, "python -m bench.cluster", "Quiet.")
    assert "| PostgreSQL, --workers 2 | 8 | 1 |" in text
    assert "| SQLite, one process | 3 | 100 |" in text
    assert "the lease's token moving on" in text


def _case(server: float, database: float, sequencer: float) -> Case:
    usage = Usage(
        seconds=1.0,
        server=server,
        members={7: server},
        roles={7: {"sequencer": sequencer}},
        database=database,
        database_busiest=database / 2,
        load=0.1,
    )
    tally = Tally(acked=100, seconds=1.0)
    return Case("postgres", 1, 8, 1, tally, usage, 100, 4, 7, {}, None)


def test_extrapolation_from_cpu_per_append():
    (line,) = extrapolation([_case(0.2, 0.1, 0.05)])
    # 2 ms + 1 ms per append over 16 cores; the sequencer 0.5 ms on one core.
    assert "the members and PostgreSQL together 5,333/s" in line
    assert "the sequencer's thread 2,000/s" in line
    assert "N x 8,000/s for the members, 16,000/s for PostgreSQL's CPU" in line


def test_extrapolation_with_too_little_cpu_counted():
    # A short run: /proc counted no tick of PostgreSQL, or none at all.
    (line,) = extrapolation([_case(0.2, 0.0, 0.05)])
    assert "(too little CPU in this run to measure) for PostgreSQL's CPU" in line
    assert extrapolation([_case(0.0, 0.0, 0.0)]) == []
