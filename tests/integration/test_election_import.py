"""The real 2024 sample through the API, and the rules against a recomputation.

As an operator runs it: a fresh log served on 127.0.0.1, the commission's region
table for DKI Jakarta, the presidential candidates, then ``saksi results import``
of the 1,000 published per-TPS documents with a province-scoped ``tps`` key.
Every imported record is read back through the API and run through
``verifier.rules``; the flags must be, record by record, what an independent
recomputation from the raw JSON (written here, not with ``verifier.rules``)
finds in the source data.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import subprocess
import sys

import httpx
import pytest

from tests.helpers import (
    ROOT,
    SHARED,
    cli_env,
    granted_key,
    init_log,
    run_saksi,
    serving,
)
from verifier.record import parse_log_entry, parse_record
from verifier.rules import tally_flags

SAMPLE = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
PASS = "election-import-passphrase"


def env() -> dict[str, str]:
    return cli_env(PASS)


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS)


def recompute(doc: dict) -> set[str]:
    """The rules, recomputed from one raw Sirekap document (independently)."""
    chart, adm = doc["chart"], doc["administrasi"]
    found = set()
    candidates = sum(v for k, v in chart.items() if k.isdigit())
    if candidates != adm["suara_sah"]:
        found.add("votes-sum")
    if adm["suara_sah"] + adm["suara_tidak_sah"] != adm["suara_total"]:
        found.add("valid-invalid-total")
    if adm["suara_total"] != adm["pengguna_total_j"]:
        found.add("total-voters")
    lists = adm["pengguna_dpt_j"] + adm["pengguna_dptb_j"] + adm["pengguna_non_dpt_j"]
    if lists != adm["pengguna_total_j"]:
        found.add("voter-lists")
    for group in (
        "pemilih_dpt",
        "pengguna_dpt",
        "pengguna_dptb",
        "pengguna_non_dpt",
        "pengguna_total",
    ):
        if adm[f"{group}_l"] + adm[f"{group}_p"] != adm[f"{group}_j"]:
            found.add("male-female")
    if adm["pengguna_dpt_j"] > adm["pemilih_dpt_j"]:
        found.add("dpt-voters-over-registered")
    dpt = adm["pemilih_dpt_j"]
    if adm["pengguna_total_j"] > dpt + math.ceil(dpt * 0.02):
        found.add("voters-over-registered")
    if dpt > 300:
        found.add("registered-over-limit")
    return found


@pytest.fixture
def election_log(tmp_path, db_url):
    directory = tmp_path / "log"
    init_log(directory, db_url, "import.saksi.example/pemilu2024", PASS)
    return directory


def test_sirekap_sample_import_reproduces_the_source_violations(
    election_log, db_url, tmp_path
):
    directory = election_log
    admin = str(directory / "admin.key")
    with serving(directory, db_url, env()) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        keys = {
            name: granted_key(
                tmp_path / f"{name}.key", remote, admin, role, scope, PASS
            )
            for name, role, scope in (
                ("lists", "candidates", "all"),
                ("sirekap", "tps", "31"),
                ("west-java", "tps", "32"),
            )
        }
        regions = saksi(
            "regions", "load", *remote, "--key", admin, "--prefix", "31", "--json"
        )
        assert regions.returncode == 0, regions.stderr
        assert json.loads(regions.stdout)["districts"] == 44
        lists = saksi(
            "submit",
            *remote,
            "--key",
            str(keys["lists"]),
            str(ROOT / "domains/data/candidates_ppwp_2024.json"),
        )
        assert lists.returncode == 0, lists.stderr

        # A key scoped to another province imports nothing: every record refused.
        wrong = saksi(
            "results",
            "import",
            *remote,
            "--key",
            str(keys["west-java"]),
            "--format",
            "sirekap",
            str(SAMPLE),
            "--json",
        )
        assert wrong.returncode == 1
        refused = json.loads(wrong.stdout)
        assert refused["imported"] == 0
        assert {r["cause"] for r in refused["refused"]} == {"out-of-scope"}

        out = saksi(
            "results",
            "import",
            *remote,
            "--key",
            str(keys["sirekap"]),
            "--format",
            "sirekap",
            str(SAMPLE),
            "--json",
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["stations"] == 1000
        assert result["imported"] == 348
        assert result["skipped"]["pending"] == 652
        assert result["refused"] == []

        # Running it again logs nothing twice.
        again = json.loads(
            saksi(
                "results",
                "import",
                *remote,
                "--key",
                str(keys["sirekap"]),
                "--format",
                "sirekap",
                str(SAMPLE),
                "--json",
            ).stdout
        )
        assert again["imported"] == 0
        assert again["skipped"]["already_logged"] == 348

        # The read side through the CLI: a village's results and corrections.
        shown = saksi("results", "show", *remote, "--region", "3101011001", "--json")
        assert shown.returncode == 0, shown.stderr
        village = json.loads(shown.stdout)
        assert village["level"] == "village"
        assert village["recap"] is None  # nobody has signed a recap yet
        present = [c for c in village["children"] if c["status"] == "present"]
        assert village["completeness"]["present"] == len(present) > 0
        assert all(c["stage"] == "machine_reading" for c in present)
        fixes = saksi(
            "results", "show", *remote, "--region", "31", "--corrections", "--json"
        )
        assert json.loads(fixes.stdout)["corrections"] == []
        unknown = saksi("results", "show", *remote, "--region", "9999")
        assert unknown.returncode == 1
        assert "Traceback" not in unknown.stderr

        raw = {}
        for line in SAMPLE.read_text().splitlines():
            doc = json.loads(line)
            if doc["data"].get("chart") and doc["data"].get("administrasi"):
                raw[doc["kode_tps"]] = doc["data"]
        assert len(raw) == 348
        with httpx.Client(base_url=url, timeout=30) as client:
            logged = {}
            for code in raw:
                history = client.get(f"/v1/subjects/results/ppwp/{code}").json()
                (revision,) = history["revisions"]
                logged[code] = revision
        # The observer's audit, through the tiles API only, pinned to the log key.
        audited = subprocess.run(
            [
                sys.executable,
                "-m",
                "verifier.cli",
                "audit",
                "--log",
                url,
                "--key",
                str(directory / "log.vkey"),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            check=False,
        )
        assert audited.returncode == 0, audited.stderr
        audit = json.loads(audited.stdout)
        # A regency's evidence, taken away and checked offline: its forms and
        # its districts' region records, each proven, and the registry before.
        regency = max(
            {code[:4] for code in logged},
            key=lambda r: sum(1 for code in logged if code.startswith(r)),
        )
        bundle = tmp_path / f"{regency}.saksi-bundle"
        made = saksi(
            "export",
            "bundle",
            "--dir",
            str(directory),
            "--db",
            db_url,
            "--region",
            regency,
            "--out",
            str(bundle),
            "--json",
        )
        assert made.returncode == 0, made.stderr
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "check-bundle",
            str(bundle),
            "--key",
            str(directory / "log.vkey"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    evidence = json.loads(checked.stdout)
    forms = sum(1 for code in logged if code.startswith(regency))
    assert evidence["forensics"]["provinces"]["31"]["reported"]["ppwp"] == forms
    # What is selected: the regency's forms, and its districts' region records.
    with gzip.open(bundle, "rb") as f:
        lines = [json.loads(line) for line in f][1:-1]
    subjects = [
        parse_record(
            parse_log_entry(base64.b64decode(e["entry"])).envelope.payload
        ).subject
        for e in lines
        if e["selected"]
    ]
    assert sum(1 for x in subjects if x.startswith("results/ppwp/")) == forms
    assert all(
        x.startswith((f"results/ppwp/{regency}", f"regions/{regency}"))
        for x in subjects
    ), subjects
    assert len(subjects) == evidence["selected"] > forms
    assert audit["forensics"]["provinces"]["31"]["reported"]["ppwp"] == 348
    mismatches = {}
    counts: dict[str, int] = {}
    for code, doc in raw.items():
        expected = recompute(doc)
        entry = logged[code]
        assert entry["record"]["schema"] == "results.tally/v1"
        # The signed payload itself, as any reader of the log gets it.
        payload = base64.b64decode(entry["envelope"]["payload"])
        assert hashlib.sha256(payload).hexdigest() == entry["record"]["payload_hash"]
        body = json.loads(payload)["body"]
        got = {f.check for f in tally_flags(body, "ppwp")}
        if got != expected:
            mismatches[code] = (sorted(got), sorted(expected))
        for check in expected:
            counts[check] = counts.get(check, 0) + 1
    assert mismatches == {}
    # The audit lists the same violations, record by record, at their entries.
    assert audit["passed"]
    by_subject: dict[str, set[str]] = {}
    for finding in audit["findings"]:
        assert finding["check"] == "arithmetic", finding
        by_subject.setdefault(finding["subject"], set()).add(finding["rule"])
        code = finding["subject"].rsplit("/", 1)[1]
        assert finding["index"] == logged[code]["index"]
    assert by_subject == {
        f"results/ppwp/{code}": recompute(doc)
        for code, doc in raw.items()
        if recompute(doc)
    }
    # The violations the data's README documents for this sample.
    assert counts["votes-sum"] == 28
    assert counts["total-voters"] == 34
    assert counts["voter-lists"] == 6
    assert counts["valid-invalid-total"] == 7
    assert counts["dpt-voters-over-registered"] == 3
    assert counts["registered-over-limit"] == 2
    flagged = sum(1 for doc in raw.values() if recompute(doc))
    assert result["flagged"] == flagged
    assert 0.15 < flagged / len(raw) < 0.3  # "about 1 in 5"
