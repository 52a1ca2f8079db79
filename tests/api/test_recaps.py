"""Recaps built bottom-up through real HTTP, and what one correction makes stale."""

from __future__ import annotations

import hashlib

import httpx

from api.app import create_app
from domains.recaps import build_recaps
from domains.synthetic import ElectionSpec, candidate_lists, parties, tally
from keys import Ed25519Signer
from ledger.recordlog import ReadOnlyLog
from ledger.storage.sql import SqlStorage
from saksi_client import SaksiClient
from tests.api.conftest import LiveServer
from tests.conftest import ORIGIN
from tests.recordlog import SIX_STATIONS, form, setup_election
from verifier.election import tally_subject
from verifier.fullaudit import Auditor
from verifier.rules import add_totals, fold_totals, recap_flags, totals_of

STATIONS = SIX_STATIONS
# Every region above the stations, by level.
REGIONS = {
    "village": ["3171011001", "3171011002", "3171021001", "3173011001", "3273011001"],
    "district": ["317101", "317102", "317301", "327301"],
    "regency": ["3171", "3173", "3273"],
    "province": ["31", "32"],
    "national": [""],
}
ROLE = {
    "village": "village",
    "district": "district",
    "regency": "regency",
    "province": "province",
    "national": "national",
}


def _reader_and_committees(log) -> tuple[Ed25519Signer, dict[str, Ed25519Signer]]:
    """A national reading system's key, and a recap key for every region."""
    reader = Ed25519Signer("sirekap", hashlib.sha256(b"national reader").digest())
    log.grant(reader, "tps", "")
    recap_keys = {}
    for level, codes in REGIONS.items():
        for code in codes:
            key = Ed25519Signer("recap", hashlib.sha256(code.encode() + b"r").digest())
            log.grant(key, ROLE[level], code)
            recap_keys[code] = key
    return reader, recap_keys


def results(url: str, region: str) -> dict:
    response = httpx.get(f"{url}/v1/results/ppwp/{region or 'national'}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_recaps_sum_their_children_and_a_correction_stales_exactly_its_ancestors(
    make_api, signer
):
    api = make_api(key_burst=10_000)
    log = api.log
    keys = setup_election(log, STATIONS)
    reader, recap_keys = _reader_and_committees(log)
    for n, station in enumerate(STATIONS):
        body = form({"100025": 10 + n, "100026": 20 - n, "100027": n}, invalid=n % 3)
        log.submit(
            log.payload("results.tally/v1", tally_subject("ppwp", station), body),
            [reader],
        )
    server = LiveServer(api.client.app)
    try:
        client = SaksiClient(server.url, signer.verifier_key)
        first = build_recaps(client, "ppwp", "", recap_keys.get, now=log.now())
        assert first.signed == {level: len(codes) for level, codes in REGIONS.items()}
        assert not first.refused
        assert not first.no_key
        for codes in REGIONS.values():
            for code in codes:
                view = results(server.url, code)
                recap = view["recap"]
                present = [c for c in view["children"] if c["status"] == "present"]
                assert recap["flags"] == [], code
                assert not recap["stale"], code
                assert recap["totals"] == add_totals(c["totals"] for c in present)
                assert view["completeness"]["missing"] == 0
        national = results(server.url, "")["recap"]["totals"]
        assert national["votes"] == {
            "100025": sum(10 + n for n in range(6)),
            "100026": sum(20 - n for n in range(6)),
            "100027": sum(range(6)),
        }

        # A district authority corrects one form: exactly the recaps above that
        # station (village up to national) are stale until re-signed.
        subject = tally_subject("ppwp", STATIONS[0])
        history = api.client.get(f"/v1/subjects/{subject}").json()["revisions"]
        corrected = form({"100025": 9, "100026": 20, "100027": 0})
        corrected["stage"] = "authority_correction"
        corrected["correction"] = {"reason_code": "recount_order", "reference": "PPK 1"}
        log.track_head(subject, 0, history[0]["record"]["payload_hash"])
        log.submit(
            log.payload("results.tally/v1", subject, corrected, reason="recounted"),
            [keys["district"]],
        )
        above = {"3171011001", "317101", "3171", "31", ""}
        for codes in REGIONS.values():
            for code in codes:
                assert results(server.url, code)["recap"]["stale"] == (code in above), (
                    code
                )
        second = build_recaps(client, "ppwp", "", recap_keys.get, now=log.now())
        assert second.signed == {level: 1 for level in REGIONS}
        assert sum(second.current.values()) == sum(map(len, REGIONS.values())) - 5
        for codes in REGIONS.values():
            for code in codes:
                view = results(server.url, code)
                assert not view["recap"]["stale"]
                assert view["recap"]["flags"] == []
        corrections = httpx.get(
            f"{server.url}/v1/results/ppwp/3171011001/corrections", timeout=30
        ).json()["corrections"]
        assert [c["subject"] for c in corrections] == [
            subject,
            "recaps/ppwp/3171011001",
        ]
        fix = corrections[0]
        assert fix["stage"] == "authority_correction"
        assert fix["correction"]["reason_code"] == "recount_order"
        assert fix["reason"] == "recounted"
        assert fix["signers"] == [keys["district"].keyid]
        assert fix["supersedes"] == history[0]["index"]
        assert {c["where"]: (c["before"], c["after"]) for c in fix["changed"]} == {
            "totals.votes.100025": (10, 9),
            "totals.valid": (30, 29),
            "totals.total": (30, 29),
        }
        everywhere = httpx.get(
            f"{server.url}/v1/results/ppwp/national/corrections", timeout=30
        ).json()["corrections"]
        assert len(everywhere) == 6  # the form and the five recaps above it
        # The same, as a feed: newest first, a page at a time.
        feed = f"{server.url}/v1/results/ppwp/national/corrections?latest=4"
        first = httpx.get(feed, timeout=30).json()
        second = httpx.get(f"{feed}&before={first['next']}", timeout=30).json()
        assert second["next"] is None
        paged = [c["index"] for c in first["corrections"] + second["corrections"]]
        assert paged == [c["index"] for c in reversed(everywhere)]
        assert first["corrections"][0] == everywhere[-1]
        assert "next" not in httpx.get(feed.split("?")[0], timeout=30).json()
        lone = httpx.get(feed.split("?")[0] + f"?before={first['next']}", timeout=30)
        assert lone.json()["corrections"] == second["corrections"]  # pages of 50
        again = results(server.url, "")["recap"]
        assert again["revision"] == 1
        assert again["totals"]["votes"]["100025"] == national["votes"]["100025"] - 1
        assert again["correction"]["reason_code"] == "child_corrected"
        _below_pages_agree_with_region_views(server.url, log, keys)
    finally:
        server.stop()


def _below_pages_agree_with_region_views(url: str, log, keys) -> None:
    """The builder's compact pages say what the full region views say."""
    # One more correction, so that pages show a stale recap and its children.
    subject = tally_subject("ppwp", STATIONS[3])
    log.track_head(
        subject,
        0,
        httpx.get(f"{url}/v1/subjects/{subject}").json()["revisions"][0]["record"][
            "payload_hash"
        ],
    )
    corrected = form({"100025": 1, "100026": 2, "100027": 3})
    corrected["stage"] = "authority_correction"
    corrected["correction"] = {"reason_code": "recount_order", "reference": "PPK 2"}
    log.submit(
        log.payload("results.tally/v1", subject, corrected, reason="recounted"),
        [keys["national"]],
    )
    for level, codes in REGIONS.items():
        for root in ("", "31"):
            if level == "national" and root:
                continue
            seen, after, pages = [], "", 0
            while True:
                response = httpx.get(
                    f"{url}/v1/results/ppwp/{root or 'national'}/below/{level}",
                    params={"limit": 2, "after": after},
                )
                assert response.status_code == 200, response.text
                page = response.json()
                pages += 1
                seen += page["regions"]
                if page["next"] is None:
                    break
                after = page["next"]
            expected = [c for c in codes if c.startswith(root)]
            assert [v["code"] for v in seen] == expected
            assert page["total"] == len(expected)
            assert pages == max(1, -(-len(expected) // 2))
            for compact in seen:
                full = results(url, compact["code"])
                for key in ("revision", "payload_hash", "stale", "stale_children"):
                    assert compact["recap"][key] == full["recap"][key], compact["code"]
                assert (
                    compact["recap"]["unnamed_children"]
                    == (full["recap"]["unnamed_children"])
                )
                assert [
                    (c["code"], c["status"], c.get("payload_hash"), c.get("totals"))
                    for c in compact["children"]
                ] == [
                    (c["code"], c["status"], c.get("payload_hash"), c.get("totals"))
                    for c in full["children"]
                ]
            # totals=sum: the same page, each region with its children's sum
            # and no child's own totals.
            (summed,) = [
                httpx.get(
                    f"{url}/v1/results/ppwp/{root or 'national'}/below/{level}",
                    params={"limit": 500, "totals": "sum"},
                ).json()["regions"]
            ]
            assert [v["code"] for v in summed] == expected
            for compact, brief in zip(seen, summed, strict=True):
                present = [c for c in compact["children"] if c["status"] == "present"]
                assert brief["sum"] == add_totals(c["totals"] for c in present)
                assert all("totals" not in c for c in brief["children"])
                assert [{**c, "totals": None} for c in brief["children"]] == [
                    {**c, "totals": None} for c in compact["children"]
                ]
                assert brief["recap"] == compact["recap"]
    stale = {
        v["code"]
        for v in httpx.get(f"{url}/v1/results/ppwp/national/below/village").json()[
            "regions"
        ]
        if v["recap"]["stale"]
    }
    assert stale == {STATIONS[3][:10]}
    for path, status in (
        ("/v1/results/ppwp/3171/below/province", 400),
        ("/v1/results/ppwp/3999/below/village", 404),
        ("/v1/results/ppwp/31/below/hamlet", 400),
        ("/v1/results/ppwp/31/below/village?limit=0", 400),
        ("/v1/results/ppwp/31/below/village?totals=all", 400),
    ):
        response = httpx.get(url + path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_recaps_read_through_a_read_only_server_wait_for_its_tree(make_api, signer):
    """Pages read from a read-only server of the same database (it looks for
    new heads every half second) make the same recaps: each level is read
    there only once it serves every recap of the level below."""
    api = make_api(key_burst=10_000)
    log = api.log
    setup_election(log, STATIONS)
    reader, recap_keys = _reader_and_committees(log)
    for n, station in enumerate(STATIONS):
        body = form({"100025": 10 + n, "100026": 20 - n, "100027": n})
        log.submit(
            log.payload("results.tally/v1", tally_subject("ppwp", station), body),
            [reader],
        )
    reads = ReadOnlyLog(
        SqlStorage.open(log.url), signer.verifier_key, ORIGIN, interval=0.5
    )
    reads.start()
    writer_server, reads_server = (
        LiveServer(api.client.app),
        LiveServer(create_app(reads)),
    )
    try:
        report = build_recaps(
            SaksiClient(writer_server.url, signer.verifier_key),
            "ppwp",
            "",
            recap_keys.get,
            now=log.now(),
            reader=SaksiClient(reads_server.url, signer.verifier_key),
        )
        assert report.signed == {level: len(codes) for level, codes in REGIONS.items()}
        assert not report.refused
        for codes in REGIONS.values():
            for code in codes:
                recap = results(writer_server.url, code)["recap"]
                assert recap["flags"] == [], code
                assert not recap["stale"], code
                assert recap["unnamed_children"] == [], code
    finally:
        writer_server.stop()
        reads_server.stop()
        reads.close()


def test_recaps_above_the_candidate_lists_fold_candidates_into_parties(
    make_api, signer
):
    """DPD lists are per province, DPR lists here too: the national recaps of
    both count no candidate (a party keeps its whole vote), the provinces'
    recaps count every candidate, nothing is flagged, and the audit agrees."""
    api = make_api(key_burst=10_000)
    log = api.log
    keys = setup_election(log, STATIONS)
    spec = ElectionSpec(error_share=0.0)
    party_key = Ed25519Signer("parties", hashlib.sha256(b"party registrar").digest())
    log.grant(party_key, "parties", "")
    log.submit(
        log.payload("parties.change/v1", "parties/national", parties()), [party_key]
    )
    ballots = ("pdpd", "pdpr")
    for subject, body in candidate_lists(spec, STATIONS):
        if subject.split("/")[1] in ballots:
            log.submit(
                log.payload("candidates.change/v1", subject, body), [keys["lists"]]
            )
    reader, recap_keys = _reader_and_committees(log)
    forms = {}
    for ballot in ballots:
        for station in STATIONS:
            forms[ballot, station] = tally(spec, ballot, station)
            log.submit(
                log.payload(
                    "results.tally/v1",
                    tally_subject(ballot, station),
                    forms[ballot, station],
                ),
                [reader],
            )
    server = LiveServer(api.client.app)
    try:
        client = SaksiClient(server.url, signer.verifier_key)
        for ballot in ballots:
            report = build_recaps(client, ballot, "", recap_keys.get, now=log.now())
            assert not report.refused, report.refused
            assert report.signed["national"] == 1
        for ballot in ballots:
            for codes in REGIONS.values():
                for code in codes:
                    view = httpx.get(
                        f"{server.url}/v1/results/{ballot}/{code or 'national'}"
                    ).json()
                    assert view["recap"]["flags"] == [], (ballot, code)
                    assert view["counts_candidates"] == (code != ""), (ballot, code)
        national = httpx.get(f"{server.url}/v1/results/pdpr/national").json()
        whole: dict[str, int] = {}
        for (ballot, _), body in forms.items():
            if ballot == "pdpr":
                for pid, p in body["parties"].items():
                    whole[pid] = (
                        whole.get(pid, 0) + p["party"] + sum(p["candidates"].values())
                    )
        assert {
            pid: p["party"] for pid, p in national["recap"]["totals"]["parties"].items()
        } == whole
        assert all(
            p["candidates"] == {}
            for p in national["recap"]["totals"]["parties"].values()
        )
        province = httpx.get(f"{server.url}/v1/results/pdpr/31").json()["recap"]
        assert any(p["candidates"] for p in province["totals"]["parties"].values())
        dpd = httpx.get(f"{server.url}/v1/results/pdpd/national").json()["recap"]
        assert "votes" not in dpd["totals"]
        assert dpd["totals"]["valid"] == sum(
            body["valid"] for (b, _), body in forms.items() if b == "pdpd"
        )
    finally:
        server.stop()
    auditor = Auditor()
    for index in range(log.service.reader.size):
        auditor.add(index, log.service.reader.entry_bytes(index))
    report = auditor.report(True)
    assert [f for f in report["findings"] if f["check"] == "recap-sum"] == []
    # A national recap that kept its candidates is flagged; its fold is not.
    provinces = [_logged_recap(log, "pdpr", code) for code in REGIONS["province"]]
    unfolded = add_totals(totals_of(b) for b in provinces)
    assert recap_flags({"totals": unfolded}, provinces, candidates=False)
    assert recap_flags({"totals": fold_totals(unfolded)}, provinces, False) == []


def _logged_recap(log, ballot: str, region: str) -> dict:
    """The body of the latest recap of ``region``, read from the log itself."""
    subject = f"recaps/{ballot}/{region}"
    index = log.service.storage.subject_indices(subject)[-1]
    return log.service.entries.entry(index).record.body
