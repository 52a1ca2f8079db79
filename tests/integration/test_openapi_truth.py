"""The OpenAPI document says what the API really answers.

A log holding the demo's data is served by ``saksi serve`` on 127.0.0.1. Every
operation of ``/openapi.json`` is called with good and bad input; each answer's
status must be documented for that operation, with the content type the
document gives it. Then schemathesis (every check; the examples, coverage and
fuzzing phases; positive and negative data) runs against the same server with
the repository's ``schemathesis.toml`` and must report no failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.evidence import scale
from tests.helpers import ROOT, SHARED, cli_env, run_saksi, serving

PASS = "openapi-truth-passphrase"
DATA = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("openapi") / "log"
    db = f"sqlite:///{directory / 'saksi.db'}"
    if request.param == "postgres":
        db = request.getfixturevalue("pg_cluster").new_database()
    out = run_saksi(
        "init", "--origin", "openapi.saksi.example/log", "--dir", str(directory),
        "--db", db, "--kdf", "interactive", passphrase=PASS,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    env = cli_env(PASS, SAKSI_CLIENT_RATE="1000000", SAKSI_CLIENT_BURST="1000000")
    with serving(directory, db, env) as url:
        out = run_saksi(
            "demo", "--url", url, "--dir", str(directory), "--data", str(DATA),
            "--count", "30", passphrase=PASS,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        yield url


def _media(value: str) -> str:
    return value.split(";")[0].strip()


def _requests(document: dict) -> list[tuple[str, str, str, dict | None, bool]]:
    """(method, documented path, URL, JSON body, whether the URL is that path)."""
    good = {
        "index": "1",
        "subject": "log/genesis",
        "ballot": "ppwp",
        "region": "31",
        "level": "district",
        "path": "0/000.p/1",
        "cause": "not-found",
    }
    bad = {**good, "index": "99999999", "region": "xx", "path": "9/9", "cause": "x"}
    tried = []
    for path, operations in document["paths"].items():
        for method in operations:
            for values in (good, bad):
                concrete = path
                for name, value in values.items():
                    concrete = concrete.replace("{" + name + "}", value)
                if method == "post":
                    bodies = [None, {"envelopes": [{}]}, {"payloadType": "x"}, {"x": 1}]
                else:
                    bodies = [None]
                for body in bodies:
                    tried.append((method, path, concrete, body, True))
            if method == "get":
                for query in ("?index=0", "?size=1", "?old=1", "?old=0", "?limit=-1"):
                    url = path.split("{")[0] + query
                    tried.append((method, path, url, None, "{" not in path))
    return tried


def test_every_answer_is_documented(served):
    document = httpx.get(served + "/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(document)
    seen = 0
    with httpx.Client(base_url=served, timeout=10) as client:
        for method, path, concrete, body, exact in _requests(document):
            if "{" in concrete:
                continue
            response = client.request(method.upper(), concrete, json=body)
            operation = document["paths"].get(path, {}).get(method)
            if response.status_code in (404, 405) and not exact:
                continue  # a URL of another route (or none), not this operation
            assert operation is not None
            documented = operation["responses"]
            status = str(response.status_code)
            assert status in documented, (method, concrete, status, response.text)
            content = documented[status].get("content")
            if content and response.content:
                media = _media(response.headers["content-type"])
                assert media in content, (method, concrete, status, media)
            seen += 1
    assert seen > 50


ST = shutil.which("st", path=str(Path(sys.executable).parent))


def test_the_document_links_answers_to_what_can_be_asked_next(served):
    document = httpx.get(served + "/openapi.json").json()
    operations = {
        op["operationId"]: (path, method)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    linked = set()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                for name, link in response.get("links", {}).items():
                    target = operations[link["operationId"]]  # a real operation
                    parameters = {
                        p["name"]
                        for p in document["paths"][target[0]][target[1]].get(
                            "parameters", []
                        )
                    }
                    assert set(link["parameters"]) <= parameters, (path, name)
                    linked.add((path, method, status))
    assert ("/v1/entries", "post", "201") in linked
    assert ("/v1/entries/{index}", "get", "200") in linked


@pytest.mark.skipif(ST is None, reason="schemathesis is a dev dependency")
def test_schemathesis_finds_nothing(served, tmp_path, request, evidence):
    st = str(ST)
    examples = scale(40, 1000)
    out = subprocess.run(
        [
            st, "run", served + "/openapi.json", "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(examples), "--seed", "1", "--no-color",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:]
    assert "passed" in out.stdout
    cases = _test_cases(out.stdout)
    evidence.record(
        "T12",
        attempts=cases,
        detected=cases,
        backend=request.node.callspec.params["served"],
        tool="schemathesis",
        max_examples=examples,
        server_errors=0,
        schema_violations=0,
    )
    # R15's schemathesis half (atheris on every parser is T12's fuzz run).
    evidence.record(
        "R15",
        attempts=cases,
        detected=cases,
        backend=request.node.callspec.params["served"],
        tool="schemathesis, every check and phase",
        max_examples=examples,
    )


def _test_cases(summary: str) -> int:
    """The number of generated test cases schemathesis reports."""
    match = re.search(r"Test cases:\s*([\d,]+) generated", summary)
    assert match, summary[-2000:]
    return int(match.group(1).replace(",", ""))
