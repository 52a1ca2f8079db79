"""Alert delivery to webhooks (``monitor.webhook``) against real HTTP receivers.

A receiver on 127.0.0.1 answers 200, 500, hangs past the timeout, or is down
(a closed port). Alerts go as Alertmanager v2 lists; failures are retried with
back-off; what is not delivered in time, or pending at shutdown, goes to the
dead-letter file; and no alert is lost: for every URL, the alerts delivered
plus those written as dead letters are exactly the alerts sent.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitor.alerting import Alert
from monitor.webhook import Webhooks, am_alert, http_post

ORIGIN = "kpu.example/pemilu2024"
T0 = 1_707_915_600.0  # 2024-02-14T13:00:00Z
FAST = {"max_backoff": 0.1, "timeout": 2.0}
WAIT = 5.0  # no wait in these tests is longer


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """An HTTP receiver of alert lists; ``script`` says how to answer each POST.

    Answers are taken from ``script`` in turn ("ok": 200, "fail": 500, "hang":
    no answer for ``hang_seconds``), then ``then`` for every later POST. Only
    the bodies answered 200 are kept in ``delivered``.
    """

    def __init__(self, script=(), then="ok", hang_seconds=3.0) -> None:
        self.script = list(script)
        self.then = then
        self.hang_seconds = hang_seconds
        self.posts = 0
        self.delivered: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts += 1
                    how = receiver.script.pop(0) if receiver.script else receiver.then
                if how == "hang":
                    receiver.release.wait(receiver.hang_seconds)
                    return  # close without an answer
                status = 200 if how == "ok" else 500
                if status == 200:
                    with receiver.lock:
                        receiver.delivered.extend(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        )
        self.thread.start()

    def keys(self) -> list[str]:
        with self.lock:
            return [a["labels"]["key"] for a in self.delivered]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def down_url() -> str:
    """A URL on a port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v2/alerts"


@pytest.fixture
def hooks_made() -> Iterator[list[Webhooks]]:
    made: list[Webhooks] = []
    yield made
    for hooks in made:
        if not hooks.stopping:
            hooks.close(wait=0)


@pytest.fixture
def make_hooks(tmp_path, hooks_made) -> Callable[..., Webhooks]:
    def make(urls, **kwargs) -> Webhooks:
        options = FAST | kwargs
        hooks = Webhooks(urls, ORIGIN, tmp_path / "state" / "dead.jsonl", **options)
        hooks_made.append(hooks)
        return hooks

    return make


def _until(done: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _alert(n: int, name: str = "revoked-key-write") -> Alert:
    return Alert(name, f"entry {n} was written by a revoked key", f"entry {n}", {})


def _dead(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rfc3339(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    assert when.tzinfo is not None
    return when


# --- the Alertmanager format ---------------------------------------------------------


def test_an_alert_is_posted_as_an_alertmanager_v2_list(make_hooks, receivers):
    receiver = receivers()
    hooks = make_hooks([receiver.url], resend_seconds=60.0)
    alert = Alert(
        "fork",
        "two checkpoints of size 9 with different roots",
        "checkpoint",
        {"size": 9, "evidence": "state/fork-9.json"},
    )
    hooks.raised(alert, T0, None)
    _until(lambda: len(receiver.delivered) == 1)
    (sent,) = receiver.delivered
    assert sent["labels"] == {
        "alertname": "SaksiMonitorFinding",
        "alert": "fork",
        "severity": "critical",
        "source": "saksi-monitor",
        "log": ORIGIN,
        "key": "checkpoint",
    }
    assert sent["annotations"]["summary"] == alert.summary
    assert json.loads(sent["annotations"]["details"]) == alert.details
    assert sent["annotations"]["runbook"].endswith("#saksimonitorfinding")
    assert _rfc3339(sent["startsAt"]) == dt.datetime(2024, 2, 14, 13, tzinfo=dt.UTC)
    # a condition (no end of its own) ends three resend periods ahead
    assert _rfc3339(sent["endsAt"]) - _rfc3339(sent["startsAt"]) == dt.timedelta(
        seconds=180
    )
    assert receiver.headers[0]["Content-Type"] == "application/json"
    # The sender counts once the receiver's answer is back, after the receiver
    # has recorded the alert: wait for it (a busy machine shows the gap).
    _until(lambda: hooks.counts["delivered"] == 1)
    assert hooks.counts == {"delivered": 1, "failed": 0, "dead": 0}


def test_an_event_ends_when_held_and_a_resolved_alert_ends_now(make_hooks, receivers):
    receiver = receivers()
    hooks = make_hooks([receiver.url])
    hooks.raised(_alert(1), T0, T0 + 900)
    hooks.resolved(_alert(1), T0 + 900)
    _until(lambda: len(receiver.delivered) == 2)
    raised, resolved = receiver.delivered
    assert _rfc3339(raised["endsAt"]) == _rfc3339(raised["startsAt"]) + dt.timedelta(
        seconds=900
    )
    assert _rfc3339(resolved["endsAt"]) == _rfc3339(raised["endsAt"])
    assert resolved["labels"] == raised["labels"]  # the same alert, ended


def test_am_alert_without_an_end_has_no_ends_at_and_bounds_its_details():
    alert = Alert("audit-finding", "x", "k", {"detail": "y" * 10_000})
    out = am_alert(alert, T0, None, ORIGIN)
    assert "endsAt" not in out
    assert out["startsAt"] == "2024-02-14T13:00:00.000+00:00"
    assert len(out["annotations"]["details"]) == 4000
    assert json.dumps(out)  # JSON all through


# --- http_post ----------------------------------------------------------------------


def test_http_post_returns_the_status_or_raises_os_error(receivers, down_url):
    ok, failing = receivers(), receivers(then="fail")
    assert http_post(ok.url, b"[]", 2.0) == 200
    assert http_post(failing.url, b"[]", 2.0) == 500
    with pytest.raises(OSError):  # noqa: PT011 (refused: any OSError)
        http_post(down_url, b"[]", 2.0)


def test_http_post_to_a_hanging_receiver_times_out(receivers):
    hanging = receivers(then="hang", hang_seconds=3.0)
    started = time.monotonic()
    with pytest.raises(OSError):  # noqa: PT011 (TimeoutError or URLError)
        http_post(hanging.url, b"[]", 0.2)
    assert time.monotonic() - started < 2.0


# --- retries, time-outs, dead letters -----------------------------------------------


def test_a_failing_receiver_gets_the_alerts_after_retries(make_hooks, receivers):
    receiver = receivers(script=["fail", "fail"])
    hooks = make_hooks([receiver.url])
    for n in range(3):
        hooks.raised(_alert(n), T0 + n, None)
    _until(lambda: len(receiver.keys()) == 3)
    assert sorted(receiver.keys()) == ["entry 0", "entry 1", "entry 2"]
    assert hooks.counts["failed"] == 2
    assert hooks.last_error[receiver.url] == "HTTP 500"
    _until(lambda: hooks.counts["delivered"] == 3)
    assert hooks.pending() == 0
    hooks.close(wait=1.0)
    assert hooks.counts == {"delivered": 3, "failed": 2, "dead": 0}
    assert not hooks.dead_letter.exists()


def test_a_hanging_receiver_does_not_block_the_caller_and_times_out(
    make_hooks, receivers
):
    receiver = receivers(then="hang", hang_seconds=4.0)
    hooks = make_hooks([receiver.url], timeout=0.2)
    started = time.monotonic()
    for n in range(5):
        hooks.raised(_alert(n), T0, None)
        hooks.resolved(_alert(n), T0 + 1)
    assert time.monotonic() - started < 0.1  # queued, not sent in the caller
    _until(lambda: hooks.counts["failed"] >= 1, timeout=2.0)
    assert hooks.last_error[receiver.url].startswith("unreachable: ")
    assert hooks.counts["delivered"] == 0
    started = time.monotonic()
    hooks.close(wait=0)
    assert time.monotonic() - started < 2.0  # bounded by the timeout, not the hang
    assert hooks.counts["dead"] == 10
    assert all(d["reason"] == "pending at shutdown" for d in _dead(hooks.dead_letter))


def test_a_down_receiver_sends_alerts_to_dead_letters_after_dead_after(
    make_hooks, down_url
):
    hooks = make_hooks([down_url], dead_after=0.3)
    for n in range(4):
        hooks.raised(_alert(n), T0, None)
    _until(lambda: hooks.counts["dead"] == 4)
    assert hooks.pending() == 0
    assert hooks.counts["failed"] >= 1
    assert hooks.counts["delivered"] == 0
    dead = _dead(hooks.dead_letter)
    assert len(dead) == 4
    for line in dead:
        assert set(line) == {"time", "url", "reason", "alert"}
        assert line["url"] == down_url
        assert line["reason"].startswith("not delivered in time: unreachable: ")
        assert line["alert"]["labels"]["alert"] == "revoked-key-write"
        _rfc3339(line["time"])
    assert sorted(d["alert"]["labels"]["key"] for d in dead) == [
        f"entry {n}" for n in range(4)
    ]


def test_at_close_everything_pending_goes_to_dead_letters(make_hooks, down_url):
    hooks = make_hooks([down_url])  # dead_after: an hour
    for n in range(3):
        hooks.raised(_alert(n), T0, None)
    _until(lambda: hooks.counts["failed"] >= 1)
    assert hooks.counts["dead"] == 0
    hooks.close(wait=0.2)
    assert hooks.pending() == 0
    assert hooks.counts["dead"] == 3
    dead = _dead(hooks.dead_letter)
    assert [d["reason"] for d in dead] == ["pending at shutdown"] * 3
    assert sorted(d["alert"]["labels"]["key"] for d in dead) == [
        "entry 0",
        "entry 1",
        "entry 2",
    ]


def test_close_delivers_what_it_can_within_its_wait(make_hooks, receivers):
    receiver = receivers(script=["fail"])
    hooks = make_hooks([receiver.url])
    hooks.raised(_alert(1), T0, None)
    hooks.close(wait=3.0)  # one retry after 0.1 s is enough
    assert receiver.keys() == ["entry 1"]
    assert hooks.counts["delivered"] == 1
    assert hooks.counts["dead"] == 0


def test_no_alert_is_lost_for_any_url(make_hooks, receivers, down_url):
    ok = receivers()
    flaky = receivers(script=["fail", "fail", "fail"])
    hanging = receivers(then="hang", hang_seconds=4.0)
    urls = [ok.url, flaky.url, hanging.url, down_url]
    hooks = make_hooks(urls, timeout=0.5, dead_after=1.0)
    sent = []
    for burst in range(3):
        for n in range(4):
            alert = _alert(10 * burst + n)
            hooks.raised(alert, T0, None)
            sent.append(alert.key)
        time.sleep(0.05)
    _until(lambda: len(ok.keys()) == len(sent) and len(flaky.keys()) == len(sent))
    hooks.close(wait=0.5)
    assert hooks.pending() == 0
    dead = _dead(hooks.dead_letter)
    delivered = {ok.url: ok.keys(), flaky.url: flaky.keys(), hanging.url: []}
    for url in urls:
        got = set(delivered.get(url, []))
        lost = [d["alert"]["labels"]["key"] for d in dead if d["url"] == url]
        # every alert delivered or written as a dead letter, never both
        assert got | set(lost) == set(sent), url
        assert not got & set(lost), url
        assert len(lost) == len(set(lost)), url
    # and the counters say so: one outcome per alert and URL
    assert hooks.counts["delivered"] + hooks.counts["dead"] == len(sent) * len(urls)
    assert hooks.counts["delivered"] == 2 * len(sent)
    assert hooks.counts["dead"] == len(dead) == 2 * len(sent)


# --- resending the active alerts ----------------------------------------------------


def test_resend_sends_the_active_alerts_again_only_after_resend_seconds(
    make_hooks, receivers
):
    receiver = receivers()
    clock = Clock(T0)
    hooks = make_hooks([receiver.url], resend_seconds=60.0, clock=clock)
    active = [(_alert(1), T0 - 300), (_alert(2, "many-revisions"), T0 - 10)]
    hooks.resend(active)  # just started (what is active was sent): not yet
    clock.now = T0 + 30
    hooks.resend(active)  # too soon
    clock.now = T0 + 59.9
    hooks.resend(active)  # still too soon
    clock.now = T0 + 60
    hooks.resend([])  # nothing active: nothing sent
    clock.now = T0 + 61
    hooks.resend(active)
    hooks.close(wait=3.0)
    assert hooks.counts == {"delivered": 2, "failed": 0, "dead": 0}
    starts = [_rfc3339(a["startsAt"]).timestamp() for a in receiver.delivered]
    ends = [_rfc3339(a["endsAt"]).timestamp() for a in receiver.delivered]
    assert receiver.keys() == ["entry 1", "entry 2"]
    # each keeps when it became active; ends three periods after the resend
    assert starts == [T0 - 300, T0 - 10]
    assert ends == [T0 + 61 + 180] * 2


def test_webhooks_without_urls_send_nothing_and_lose_nothing(tmp_path):
    hooks = Webhooks([], ORIGIN, tmp_path / "dead.jsonl")
    hooks.raised(_alert(1), T0, None)
    hooks.resend([(_alert(1), T0)])
    hooks.close(wait=0)
    assert hooks.counts == {"delivered": 0, "failed": 0, "dead": 0}
    assert hooks.pending() == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_url_urllib_refuses_counts_as_a_failure(make_hooks):
    url = "http://127.0.0.1:notaport/api/v2/alerts"
    hooks = make_hooks([url])
    hooks.raised(_alert(1), T0, None)
    _until(lambda: hooks.counts["failed"] >= 1, timeout=0.5)
    assert url in hooks.last_error
