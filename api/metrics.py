"""Prometheus metrics of one ``saksi serve`` process, on ``/metrics``.

Names follow Prometheus's conventions: ``saksi_`` first, base units in the name
(``_seconds``, ``_bytes``), ``_total`` on counters. Every label value comes
from a closed set the server owns, never from request input: a route's
template (``api.access.route_of``), a problem type (``api.errors.PROBLEMS``),
a signer's role from the key registry (only for keys the registry knows), a
province code from a record that passed its schema and the region registry,
an arithmetic check's name, a witness's name from the operator's
configuration.

Two kinds of figures: events counted as they happen (requests, appends,
refusals, commits), and the log's state read when Prometheus scrapes
(``LogCollector``: sizes, checkpoint age, the writer's queue, witnesses, the
connection pool), so a scrape costs nothing on the write path.

Each process is its own scrape target (``instance``): a writer and any number
of ``--read-only`` servers each listen on their own address, and Prometheus
sums counters and takes the largest size across them (see the README,
"Monitoring"). prometheus-client's multiprocess mode is for several workers
behind one port; it cannot serve the per-process gauges read at scrape time.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.errors import PROBLEMS
from ledger.health import LogHealth, ready
from ledger.telemetry import WriterEvents
from verifier.rules.arithmetic import TALLY_CHECKS

__all__ = ["CONTENT_TYPE", "VERSION", "Metrics"]

VERSION = "0.1.0"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Latency buckets (seconds): a read is milliseconds, an append a group commit.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_APPEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

_STARTED = time.time()

# The refusals that are about who signed (counted by the signer's role too).
AUTHORIZATION_CAUSES = frozenset(
    {
        "unknown-key",
        "key-revoked",
        "key-expired",
        "role-not-allowed",
        "out-of-scope",
        "threshold-not-met",
        "unauthorized",
    }
)


class HealthSource(Protocol):
    """What the collector reads at scrape time (``RecordLog``, ``ReadOnlyLog``)."""

    def health(self) -> LogHealth:
        """A snapshot of the log."""
        ...


class LogCollector(Collector):
    """The log's state, read at each scrape."""

    def __init__(
        self,
        source: HealthSource,
        max_age: float,
        in_flight: Callable[[], int],
        dropped: Callable[[], int],
    ) -> None:
        self._source = source
        self._max_age = max_age
        self._in_flight = in_flight
        self._dropped = dropped

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are made at each scrape."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """One snapshot of the log, as metric families."""
        health = self._source.health()
        now = health.now
        yield _gauge(
            "saksi_tree_size",
            "Entries in the checkpoint /log/checkpoint serves (the witnessed one "
            "where witnesses are configured)",
            health.published_size,
        )
        yield _gauge(
            "saksi_integrated_size",
            "Entries committed and integrated into the latest signed tree",
            health.integrated_size,
        )
        yield _gauge(
            "saksi_checkpoint_timestamp_seconds",
            "When the latest checkpoint was signed or refreshed (Unix time)",
            health.signed_at,
        )
        yield _gauge(
            "saksi_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed or refreshed",
            max(0.0, now - health.signed_at),
        )
        yield _gauge(
            "saksi_writer_queue_depth",
            "Submissions waiting for the writer (sequencer) now",
            health.queue_depth,
        )
        yield _gauge(
            "saksi_writes_in_flight",
            "Write requests between arrival and receipt in this process",
            self._in_flight(),
        )
        yield _gauge(
            "saksi_stopped",
            "1 when the log stopped: writes after an integrity failure, or a "
            "read-only server's stored head failing its checks",
            1 if health.stopped else 0,
        )
        yield _gauge(
            "saksi_ready",
            "1 while /readyz answers 200",
            0 if ready(health, self._max_age) else 1,
        )
        yield _gauge(
            "saksi_writer",
            "1 in the writer's process, 0 in a read-only server",
            1 if health.writer else 0,
        )
        yield from _witness_families(health, now)
        pool = GaugeMetricFamily(
            "saksi_db_pool_connections",
            "The database connection pool: size, in use, idle and overflow",
            labels=["state"],
        )
        for state, value in sorted(health.pool.items()):
            pool.add_metric([state], value)
        yield pool
        yield CounterMetricFamily(
            "saksi_security_log_dropped",
            "Security events not written because the log's queue was full",
            value=self._dropped(),
        )
        errors = CounterMetricFamily(
            "saksi_database_errors",
            "Database errors since start, by operation (read or write)",
            labels=["operation"],
        )
        for operation, value in sorted(health.database_errors.items()):
            errors.add_metric([operation], value)
        yield errors


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _witness_families(health: LogHealth, now: float) -> Iterator[Metric]:
    cosigned = CounterMetricFamily(
        "saksi_witness_cosignatures",
        "Verified cosignatures received from each witness since start",
        labels=["witness"],
    )
    failures = CounterMetricFamily(
        "saksi_witness_failures",
        "Rounds a witness did not cosign (unreachable, refusing, bad answer)",
        labels=["witness"],
    )
    size = GaugeMetricFamily(
        "saksi_witness_cosigned_size",
        "The tree size each witness last cosigned",
        labels=["witness"],
    )
    last = GaugeMetricFamily(
        "saksi_witness_last_cosignature_timestamp_seconds",
        "When each witness's last verified cosignature arrived (Unix time)",
        labels=["witness"],
    )
    age = GaugeMetricFamily(
        "saksi_witness_cosignature_age_seconds",
        "Seconds since each witness's last verified cosignature (since start "
        "of the process before the first)",
        labels=["witness"],
    )
    for witness in health.witnesses:
        labels = [witness.name]
        cosigned.add_metric(labels, witness.cosignatures)
        failures.add_metric(labels, witness.failures)
        size.add_metric(labels, witness.cosigned_size)
        when = witness.last_cosigned_at
        last.add_metric(labels, when or 0.0)
        age.add_metric(labels, now - when if when else now - _STARTED)
    yield from (cosigned, failures, size, last, age)


_STARTED = time.time()


class Metrics(WriterEvents):
    """Every metric of one served log, in a registry of its own."""

    def __init__(
        self,
        source: HealthSource,
        *,
        backend: str,
        max_age: float,
        in_flight: Callable[[], int],
    ) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(_BuildInfo(backend))
        self._children = {}
        self._append_children = {}
        registry.register(LogCollector(source, max_age, in_flight, self._dropped))
        # Set by the app when it writes a security event log.
        self.security_dropped: Callable[[], int] = lambda: 0
        self.http_requests = Counter(
            "saksi_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "code"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "saksi_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.appends = Counter(
            "saksi_appends",
            "Records appended: accepted (new entries) or duplicate (already logged)",
            ["result"],
            registry=registry,
        )
        self.accepted = self.appends.labels("accepted")
        self.duplicate = self.appends.labels("duplicate")
        self.refusals = Counter(
            "saksi_append_refusals",
            "Records refused, by problem type (/problems/<cause>)",
            ["cause"],
            registry=registry,
        )
        self.append_duration = Histogram(
            "saksi_append_duration_seconds",
            "From a write request's arrival to its durable receipt, by route",
            ["route"],
            buckets=_APPEND_BUCKETS,
            registry=registry,
        )
        self.commit_entries = Histogram(
            "saksi_commit_batch_entries",
            "New entries per commit (group commit batch size)",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.commit_duration = Histogram(
            "saksi_commit_duration_seconds",
            "Time to integrate, sign and durably commit one batch",
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "saksi_commit_failures",
            "Batches or refreshes not committed, by cause",
            ["cause"],
            registry=registry,
        )
        self.signing_failures = Counter(
            "saksi_signing_failures",
            "Checkpoint signatures the log key could not make",
            registry=registry,
        )
        self.authorization_refusals = Counter(
            "saksi_authorization_refusals",
            "Records refused for who signed them, by signer role and cause",
            ["role", "cause"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "saksi_rate_limited_requests",
            "Writes refused by a rate limit, by limit (client address or key)",
            ["limit"],
            registry=registry,
        )
        self.corrections = Counter(
            "saksi_corrections",
            "Accepted corrections (later revisions) of results and recaps, by "
            "province code (national for the national recap)",
            ["province"],
            registry=registry,
        )
        self.arithmetic_flags = Counter(
            "saksi_arithmetic_flags",
            "Arithmetic flags of accepted count forms and recaps, by province "
            "and check",
            ["province", "check"],
            registry=registry,
        )

    # Label sets bound once (prometheus-client's ``labels`` takes a lock and
    # checks the names each time); the keys are closed sets, so these stay small.
    _children: dict[tuple[str, str, int], tuple[Any, Any]]
    _append_children: dict[str, Any]

    def prime(self, roles: Iterable[str], provinces: Iterable[str]) -> None:
        """Create every label set a rule alerts on, at zero.

        A counter's series appears with its first increment; Prometheus's
        ``increase()`` cannot see that first one. Made at start, the first
        revoked-key write or correction in a province is an increase from 0.
        """
        for cause in PROBLEMS:
            self.refusals.labels(cause)
        for role in [*roles, "unknown"]:
            for cause in AUTHORIZATION_CAUSES:
                self.authorization_refusals.labels(role, cause)
        for limit in ("client", "key"):
            self.rate_limited.labels(limit)
        for cause in ("storage-unavailable", "signer-unavailable", "integrity-failure"):
            self.commit_failures.labels(cause)
        for province in [*provinces, "national"]:
            self.corrections.labels(province)
            for check in TALLY_CHECKS:
                self.arithmetic_flags.labels(province, check)

    def _dropped(self) -> int:
        return self.security_dropped()

    # -- the writer's reports (ledger.telemetry.WriterEvents) -----------------------

    def committed(self, entries: int, seconds: float) -> None:
        """A batch committed: its size and time."""
        self.commit_entries.observe(entries)
        self.commit_duration.observe(seconds)

    def failed(self, cause: str) -> None:
        """A batch or refresh not committed."""
        self.commit_failures.labels(cause).inc()
        if cause == "signer-unavailable":
            self.signing_failures.inc()

    # -- HTTP -----------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (labels from ``api.access``: closed sets)."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # the first of its kind: bind its labels once
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def appended(self, route: str, seconds: float) -> None:
        """A write request answered with a receipt, ``seconds`` after it arrived."""
        child = self._append_children.get(route)
        if child is None:
            child = self._append_children[route] = self.append_duration.labels(route)
        child.observe(seconds)

    def render(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)


class _BuildInfo(Collector):
    """``saksi_build_info``: the version, Python and database backend."""

    def __init__(self, backend: str) -> None:
        self._labels = [VERSION, platform.python_version(), backend]

    def describe(self) -> Iterable[Metric]:
        """The family's name, for the registry's duplicate check."""
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        """Always 1, with the build in its labels."""
        info = GaugeMetricFamily(
            "saksi_build_info",
            "The running build: version, Python version and database backend",
            labels=["version", "python_version", "backend"],
        )
        info.add_metric(self._labels, 1)
        yield info
