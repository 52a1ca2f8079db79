"""``saksi monitor``'s main loop: follow, check, alert, export, and the canary.

``Monitor`` wires one configuration together: the follower (``monitor.follower``)
over the log's public tlog-tiles API, the alert book with its sinks (the JSON
alert log, the webhooks), the metrics on ``[monitor] listen``, and the canary
when ``[canary]`` names a key. ``run_once`` is one step of the loop: read and
check the log, decide the conditions (the log not growing while the timetable
expects results), expire held alerts and send the active ones again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from prometheus_client import start_http_server

from keys import load_key_file
from monitor.alerting import Alert, AlertBook, AlertLog, Sink
from monitor.canary import Canary
from monitor.config import MonitorConfig
from monitor.follower import Follower, StepResult
from monitor.metrics import MonitorMetrics
from monitor.webhook import Post, Webhooks, http_post
from saksi_client import SaksiClient
from verifier.observe import atomic_write
from verifier.tile_client import TileLog, http_fetch

__all__ = ["Monitor"]

log = logging.getLogger("saksi.monitor")


class Monitor:
    """One running monitor."""

    def __init__(
        self,
        config: MonitorConfig,
        *,
        clock: Callable[[], float] = time.time,
        post: Post = http_post,
        alert_stream: TextIO | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._own_stream = alert_stream is None and config.alert_log != "-"
        if alert_stream is None:
            alert_stream = (
                sys.stdout
                if config.alert_log == "-"
                else open(config.alert_log, "a", encoding="utf-8")  # noqa: SIM115
            )
        self.alert_stream = alert_stream
        self.webhooks: Webhooks | None = None
        sinks: list[Sink] = [AlertLog(alert_stream)]
        if config.webhooks:
            self.webhooks = Webhooks(
                config.webhooks,
                config.origin,
                config.dead_letter or config.state / "dead-letters.jsonl",
                timeout=config.webhook_timeout_seconds,
                max_backoff=config.webhook_max_backoff_seconds,
                post=post,
                clock=clock,
            )
            sinks.append(self.webhooks)
        self.book = AlertBook(sinks, clock, config.thresholds.hold_seconds)
        # Active alerts survive a restart: an event's hold goes on, a
        # condition is decided again at the next step.
        self._alerts_file = config.state / "alerts.json"
        self._saved: list[dict[str, Any]] = []
        if self._alerts_file.exists():
            try:
                self._saved = json.loads(self._alerts_file.read_text("utf-8"))
                self.book.restore(self._saved)
            except (OSError, ValueError, TypeError, KeyError):
                log.warning("the saved alerts in %s are unreadable", self._alerts_file)
        self.tiles = TileLog(http_fetch(config.tiles_url, timeout=10.0))
        self.follower = Follower(config, self.tiles, self.book, clock)
        self.metrics = MonitorMetrics(self.follower, self.book, self.webhooks, clock)
        self.canary: Canary | None = None
        self._server: Any = None

    # -- one step --------------------------------------------------------------------

    def run_once(self) -> StepResult:
        """Read and check the log once; decide conditions; deliver alerts."""
        result = self.follower.step()
        self.metrics.state.last_step = self.clock()
        if result.error is not None:
            self.metrics.errors.labels(result.error).inc()
        self._stall()
        self.book.expire()
        if self.webhooks is not None:
            self.webhooks.resend(self.book.active())
        self._save_alerts()
        return result

    def _save_alerts(self) -> None:
        """Keep the active alerts in the state directory when they changed."""
        now = self.book.snapshot()
        if now != self._saved:
            atomic_write(
                self._alerts_file,
                json.dumps(now, sort_keys=True).encode("utf-8"),
            )
            self._saved = now

    def _stall(self) -> None:
        """The log not growing while the timetable expects results."""
        import datetime as dt

        now = self.clock()
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        expected = [
            w
            for w in self.config.timetable
            if w.expect_results and w.start <= when < w.end
        ]
        quiet = now - self.follower.grew_at
        limit = self.config.thresholds.stall_seconds
        stalled = bool(expected) and quiet > limit
        self.book.condition(
            Alert(
                "log-not-growing",
                f"the log has not grown for {quiet:.0f} s during "
                f"{expected[0].name if expected else 'the timetable'}, "
                f"when results are expected (limit {limit:g} s)",
                "log",
                {"seconds": round(quiet)},
            ),
            stalled,
        )

    # -- running -----------------------------------------------------------------------

    def serve_metrics(self) -> tuple[str, int]:
        """Serve ``/metrics`` on ``[monitor] listen``; the address it got."""
        host, port = self.config.listen
        server, _ = start_http_server(port, host, self.metrics.registry)
        self._server = server
        return host, int(server.server_port)

    def start_canary(self) -> None:
        """Start the canary in its thread, if the configuration names its key.

        Raises:
            keys.KeyLoadError: the key does not open with the passphrase.
            OSError: the passphrase file cannot be read.
        """
        self.canary = self.make_canary()
        if self.canary is not None:
            self.canary.start()

    def make_canary(self) -> Canary | None:
        """The configured canary, not started (None without ``[canary]``).

        Raises:
            keys.KeyLoadError: the key does not open with the passphrase.
            OSError: the passphrase file cannot be read.
        """
        config = self.config.canary
        if config is None:
            return None
        if config.passphrase_file is not None:
            secret = config.passphrase_file.read_bytes().rstrip(b"\r\n")
        else:
            secret = os.environ.get("SAKSI_KEY_PASSPHRASE", "").encode()
        signer = load_key_file(config.key, secret)
        metrics = self.metrics

        def observed(delay: float) -> None:
            metrics.canary_sent.inc()
            metrics.merge_delay.observe(delay)

        return Canary(
            SaksiClient(self.config.log_url, self.config.log_key, retries=1),
            signer,
            signer.keyid,
            self.tiles,
            self.follower.trusted_checker(),
            interval=config.interval_seconds,
            observe=observed,
            failed=lambda _why: metrics.canary_failures.inc(),
            clock=self.clock,
        )

    def run(self, stop: threading.Event) -> None:
        """Step every ``poll_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # a bug must not stop the watching: log, go on
                log.exception("monitor step failed")
                self.metrics.errors.labels("garbage").inc()
            stop.wait(max(0.0, self.config.poll_seconds - (time.monotonic() - started)))

    def close(self) -> None:
        """Stop the canary, deliver what can be, close everything."""
        if self.canary is not None:
            self.canary.stop()
        if self.webhooks is not None:
            self.webhooks.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.follower.close()
        if self._own_stream:
            self.alert_stream.close()
