"""The monitor's Prometheus metrics (``saksi_monitor_*``, ``saksi_canary_*``).

Read at each scrape from the follower, the alert book and the webhooks, except
the canary's histogram and the error counters, counted as they happen. Every
label is from a closed set: an alert name (``monitor.alerting.ALERTS``), an
error kind, a delivery result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.alerting import ALERTS, AlertBook

if TYPE_CHECKING:
    from monitor.follower import Follower
    from monitor.webhook import Webhooks

__all__ = ["ERROR_KINDS", "MonitorMetrics"]

ERROR_KINDS = ("unreachable", "garbage", "fork", "invalid", "not-witnessed")
_DELAY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class _State(Collector):
    def __init__(
        self,
        follower: Follower,
        book: AlertBook,
        webhooks: Webhooks | None,
        clock: Callable[[], float],
    ) -> None:
        self.follower = follower
        self.book = book
        self.webhooks = webhooks
        self.clock = clock
        self.last_step = 0.0

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        follower = self.follower
        checked = follower.checked
        yield GaugeMetricFamily(
            "saksi_monitor_log_size",
            "The size of the latest checkpoint the log showed that verified",
            value=follower.log_size,
        )
        yield GaugeMetricFamily(
            "saksi_monitor_checked_size",
            "Entries checked, audited and confirmed by a signed root",
            value=checked,
        )
        yield GaugeMetricFamily(
            "saksi_monitor_lag_entries",
            "Entries the log showed that are not checked yet",
            value=max(0, follower.log_size - checked),
        )
        yield GaugeMetricFamily(
            "saksi_monitor_lag_seconds",
            "Seconds since the log showed entries that are not checked yet",
            value=follower.lag_seconds(),
        )
        yield GaugeMetricFamily(
            "saksi_monitor_last_step_timestamp_seconds",
            "When the monitor last read the log (Unix time)",
            value=self.last_step,
        )
        raised = CounterMetricFamily(
            "saksi_monitor_alerts",
            "Alerts raised since start (each occurrence), by alert",
            labels=["alert"],
        )
        active = GaugeMetricFamily(
            "saksi_monitor_alert_active",
            "Alerts active now, by alert",
            labels=["alert"],
        )
        now_active: dict[str, int] = dict.fromkeys(ALERTS, 0)
        for alert, _ in self.book.active():
            now_active[alert.name] += 1
        for name in ALERTS:
            raised.add_metric([name], self.book.raised_count[name])
            active.add_metric([name], now_active[name])
        yield raised
        yield active
        if self.webhooks is not None:
            deliveries = CounterMetricFamily(
                "saksi_monitor_webhook_deliveries",
                "Webhook alert deliveries: delivered, failed attempts, dead letters",
                labels=["result"],
            )
            for result, count in sorted(self.webhooks.counts.items()):
                deliveries.add_metric([result], count)
            yield deliveries
            yield GaugeMetricFamily(
                "saksi_monitor_webhook_pending",
                "Alerts waiting for webhook delivery",
                value=self.webhooks.pending(),
            )


class MonitorMetrics:
    """The monitor's registry."""

    def __init__(
        self,
        follower: Follower,
        book: AlertBook,
        webhooks: Webhooks | None,
        clock: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry()
        self.state = _State(follower, book, webhooks, clock)
        self.registry.register(self.state)
        self.errors = Counter(
            "saksi_monitor_errors",
            "Steps that could not read or check the log, by kind",
            ["kind"],
            registry=self.registry,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        self.merge_delay = Histogram(
            "saksi_canary_merge_delay_seconds",
            "From a canary's submission to a witnessed checkpoint that holds it",
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.canary_sent = Counter(
            "saksi_canary_sent",
            "Canary records written",
            registry=self.registry,
        )
        self.canary_failures = Counter(
            "saksi_canary_failures",
            "Canary records refused, lost or not witnessed in time",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
