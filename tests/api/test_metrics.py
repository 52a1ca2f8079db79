"""/metrics, /readyz and the security event log, through the test client."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.settings import ApiSettings
from keys import Ed25519Signer
from ledger.errors import IntegrityFailure
from ledger.health import LogHealth, WitnessHealth, ready
from tests.recordlog import ADMINS, RecordLog, envelope_bytes, form, setup_election
from verifier.election import tally_subject

STATIONS = ["3171011001001", "3171011001002"]
TPS = STATIONS[0]


class Served:
    def __init__(self, log: RecordLog, **settings) -> None:
        self.log = log
        self.events = io.StringIO()
        self.app = create_app(
            log.service,
            ApiSettings(**settings),
            security_log=self.events,
            backend="test",
        )
        self.client = TestClient(self.app)

    def post(self, payload: bytes, signers):
        return self.client.post(
            "/v1/entries",
            content=envelope_bytes(payload, signers),
            headers={"content-type": "application/json"},
        )

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = (
                    sample.value
                )
        return samples

    def lines(self) -> list[dict]:
        self.app.state.security_log.flush()
        return [json.loads(line) for line in self.events.getvalue().splitlines()]


@pytest.fixture
def served(db_url, signer):
    opened: list[RecordLog] = []

    def make(**settings) -> Served:
        log = RecordLog(db_url, signer)
        opened.append(log)
        return Served(log, **settings)

    yield make
    for log in opened:
        log.close()


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_writes_refusals_and_the_log_show_in_the_metrics(served):
    s = served()
    log = s.log
    keys = setup_election(log, STATIONS)
    before = s.scrape()
    read = log.payload(
        "results.tally/v1",
        tally_subject("ppwp", TPS),
        form({"100025": 80, "100026": 20}, stage="machine_reading"),
    )
    assert s.post(read, [keys["tps"]]).status_code == 201
    assert s.post(read, [keys["tps"]]).status_code == 200  # a duplicate
    log.track(read)
    # A correction whose numbers do not add up: one correction, one flag.
    corrected = form({"100025": 8, "100026": 20}, stage="authority_correction")
    corrected["valid"] = 30
    corrected["correction"] = {"reason_code": "ocr_error", "reference": "BA 12"}
    fixed = log.payload(
        "results.tally/v1", tally_subject("ppwp", TPS), corrected, reason="OCR"
    )
    assert s.post(fixed, [keys["district"]]).status_code == 201
    revoked = Ed25519Signer("gone", bytes([77]) * 32)
    log.grant(revoked, "tps", TPS)
    log.revoke(revoked)
    other = log.payload(
        "results.tally/v1",
        tally_subject("ppwp", STATIONS[1]),
        form({"100025": 1}),
    )
    assert s.post(other, [revoked]).json()["type"] == "/problems/key-revoked"
    garbled = s.post(b"{", [keys["tps"]]).json()
    assert garbled["status"] == 400
    after = s.scrape()

    def grew(name, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("saksi_appends_total", result="accepted") == 2
    assert grew("saksi_appends_total", result="duplicate") == 1
    assert grew("saksi_append_refusals_total", cause="key-revoked") == 1
    cause = garbled["type"].removeprefix("/problems/")
    assert grew("saksi_append_refusals_total", cause=cause) == 1
    assert (
        grew("saksi_authorization_refusals_total", role="tps", cause="key-revoked") == 1
    )
    assert grew("saksi_corrections_total", province="31") == 1
    assert grew("saksi_arithmetic_flags_total", province="31", check="votes-sum") == 1
    assert grew("saksi_append_duration_seconds_count", route="/v1/entries") == 3
    assert grew("saksi_commit_batch_entries_count") >= 2
    assert value(after, "saksi_integrated_size") == log.ledger.size
    assert value(after, "saksi_tree_size") == log.ledger.size
    assert value(after, "saksi_writer") == 1
    assert value(after, "saksi_stopped") == 0
    assert value(after, "saksi_ready") == 1
    assert 0 <= value(after, "saksi_checkpoint_age_seconds") < 60
    assert (
        grew(
            "saksi_http_requests_total",
            route="/v1/entries",
            method="POST",
            code="201",
        )
        == 2
    )
    build = [k for k in after if k[0] == "saksi_build_info"]
    assert build
    assert dict(build[0][1])["backend"] == "test"
    assert value(after, "saksi_db_pool_connections", state="size") > 0
    assert any(k[0] == "process_resident_memory_bytes" for k in after)


def test_the_security_log_says_who_wrote_what_and_why_it_was_refused(served):
    s = served()
    log = s.log
    keys = setup_election(log, STATIONS)
    payload = log.payload(
        "results.tally/v1", tally_subject("ppwp", TPS), form({"100025": 3})
    )
    accepted = s.post(payload, [keys["tps"]])
    out_of_scope = log.payload(
        "results.tally/v1", tally_subject("ppwp", "3273011001001"), form({})
    )
    refused = s.post(out_of_scope, [keys["tps"]])
    assert refused.status_code == 403
    stranger = Ed25519Signer("stranger", bytes([78]) * 32)
    assert s.post(payload, [stranger]).status_code == 403
    lines = s.lines()
    assert [line["result"] for line in lines] == ["accepted", "refused", "refused"]
    first, second, third = lines
    assert first["log"] == "security"
    assert first["event"] == "append"
    assert first["request_id"] == accepted.headers["x-request-id"]
    assert first["keyids"] == [keys["tps"].keyid]
    assert first["roles"] == ["tps"]
    assert first["subject"] == tally_subject("ppwp", TPS)
    assert first["index"] == accepted.json()["index"]
    assert first["status"] == 201
    assert first["route"] == "/v1/entries"
    assert second["cause"] == "out-of-scope"
    assert second["status"] == 403
    assert second["roles"] == ["tps"]
    # An unknown key names nobody, and its record is not described.
    assert third["cause"] == "unknown-key"
    assert "keyids" not in third
    assert "subject" not in third
    for line in lines:
        assert "body" not in line
        assert "sig" not in json.dumps(line)


HOSTILE = "%3Cscript%3Ealert(1)%3C/script%3E%E2%80%AE%0A%7Bevil%7D"


def test_nothing_a_client_sends_reaches_a_label_or_a_log_line(served, evidence):
    s = served()
    log = s.log
    keys = setup_election(log, STATIONS)
    marker = "EVILMARK"
    hostile_subject = f"results/ppwp/{marker}"
    payload = log.payload("results.tally/v1", hostile_subject, form({"100025": 1}))
    assert s.post(payload, [keys["tps"]]).status_code in (400, 422)
    envelope = json.loads(envelope_bytes(payload, [keys["tps"]]))
    envelope["signatures"][0]["keyid"] = marker.lower() * 8
    hostile = [s.client.post("/v1/entries", json=envelope)]
    envelope["payloadType"] = marker + HOSTILE
    hostile.append(s.client.post("/v1/entries", json=envelope))
    hostile.append(s.client.get(f"/v1/subjects/{marker}{HOSTILE}"))
    hostile.append(s.client.get(f"/log/tile/0/{marker}"))
    hostile.append(s.client.get(f"/{marker}", headers={"user-agent": marker}))
    hostile.append(s.client.request(marker, "/v1/entries"))
    hostile.append(
        s.client.post(f"/v1/entries/batch?{marker}=1", json={"envelopes": [envelope]})
    )
    scrape = s.client.get("/metrics").text
    s.app.state.security_log.flush()
    events = s.events.getvalue()
    for text in (scrape, events):
        assert marker not in text
        assert marker.lower() not in text
        assert "<script>" not in text
    hits = sum(
        text.count(m) for text in (scrape, events) for m in (marker, marker.lower())
    )
    assert 'route="(unmatched)"' in scrape
    assert 'method="OTHER"' in scrape
    assert all(ADMINS[0].keyid not in line for line in events.splitlines()[-3:])
    injections = 1 + len(hostile)  # the subject, then one field each
    evidence.record(
        "T17",
        attempts=injections,
        detected=injections if hits == 0 else 0,
        backend=log.storage.dialect,
        fields="subject, key id, payload type, path, tile path, user agent, "
        "method, query",
        marker_hits_in_metrics_and_security_log=hits,
        server_errors=sum(r.status_code >= 500 for r in hostile),
    )


def test_readyz_follows_the_checkpoint_age_and_a_stopped_writer(served, evidence):
    fresh = served()
    honest = fresh.client.get("/readyz").status_code
    assert honest == 200
    assert fresh.client.get("/readyz").json()["status"] == "ready"
    stale = Served(fresh.log, ready_max_age=0.000001)
    answer = stale.client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["type"] == "/problems/not-ready"
    assert "signed" in answer.json()["detail"]
    assert stale.client.get("/healthz").status_code == 200  # alive, not ready
    fresh.log.ledger.halt(IntegrityFailure("test"))
    answer = fresh.client.get("/readyz")
    assert answer.status_code == 503
    assert "stopped" in answer.json()["detail"]
    samples = fresh.scrape()
    assert value(samples, "saksi_stopped") == 1
    assert value(samples, "saksi_ready") == 0
    # A stale checkpoint and a stopped writer: each one shown as not ready.
    shown = [stale.client.get("/readyz").status_code, answer.status_code]
    evidence.record(
        "T5",
        attempts=len(shown),
        detected=shown.count(503),
        false_alarms=int(honest != 200),
        backend=fresh.log.storage.dialect,
        scenario="checkpoint older than the readiness bound; writer stopped",
        metrics="saksi_ready 0, saksi_stopped 1",
    )


def test_metrics_can_be_switched_off(db_url, signer):
    log = RecordLog(db_url, signer)
    try:
        client = TestClient(create_app(log.service, ApiSettings(), metrics=False))
        response = client.get("/metrics")
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert client.get("/readyz").status_code == 200
    finally:
        log.close()


def _health(**change) -> LogHealth:
    base = {
        "integrated_size": 5,
        "signed_at": 1000.0,
        "published_size": 5,
        "queue_depth": 0,
        "stopped": None,
        "now": 1000.0,
    }
    return LogHealth(**(base | change))


def _witness(at: float | None) -> WitnessHealth:
    return WitnessHealth("w", 5, 1 if at else 0, 0, at)


def test_ready_needs_a_recent_checkpoint_and_a_recent_cosignature():
    assert ready(_health(now=1010.0), 60) == []
    assert ready(_health(now=1060.0), 60) == []
    assert ready(_health(now=1061.0), 60)  # signed 61 s ago
    assert ready(_health(stopped="x"), 60)
    no_cosignature = _health(witnesses=(_witness(None),))
    assert "no witness" in ready(no_cosignature, 60)[0]
    old = _health(witnesses=(_witness(900.0), _witness(None)))
    assert "cosignature" in ready(old, 60)[0]
    one_recent = _health(witnesses=(_witness(900.0), _witness(990.0)))
    assert ready(one_recent, 60) == []


class _Stuck(io.StringIO):
    """A stream whose writes wait until released (a disk that stalls)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(10)
        return super().write(text)


def test_a_stalled_security_log_never_blocks_a_request_and_counts_what_it_drops(
    monkeypatch,
):
    import api.security_log as module
    from api.security_log import SecurityLog

    monkeypatch.setattr(module, "MAX_QUEUED", 5)
    stream = _Stuck()
    log = SecurityLog(stream)
    for n in range(20):  # returns at once although nothing can be written
        log.write({"event": "append", "n": n})
    assert log.dropped >= 20 - 5 - 1  # one batch may be in the thread's hands
    stream.release.set()
    log.flush()
    written = [json.loads(line)["n"] for line in stream.getvalue().splitlines()]
    assert len(written) + log.dropped == 20
    assert written == sorted(written)
    log.close()
