"""The explorer's routes: its files as they are, what it pins, and nothing else."""

from __future__ import annotations

import json

import nacl.signing
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.explorer import SECURITY_HEADERS
from explorer import STATIC, trust_document
from tests.helpers import run_saksi
from verifier.cosignature import cosigner_key
from verifier.note import VerifierKey


def witness(seed: int) -> VerifierKey:
    key = nacl.signing.SigningKey(bytes([seed]) * 32)
    return cosigner_key(f"w{seed}.example", bytes(key.verify_key))


def test_home_redirects_to_the_explorer(api):
    for path in ("/", "/explorer"):
        response = api.client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/explorer/"


def test_the_page_and_its_modules_are_served_byte_for_byte_with_a_strict_policy(api):
    page = api.client.get("/explorer/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.content == (STATIC / "index.html").read_bytes()
    for name, header in SECURITY_HEADERS.items():
        assert page.headers[name] == header
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    module = api.client.get("/explorer/js/verify/merkle.js")
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.content == (STATIC / "js/verify/merkle.js").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/explorer/../api/app.py",
        "/explorer/%2e%2e/api/app.py",
        "/explorer/js/../../../pyproject.toml",
        "/explorer/js//app.js",
        "/explorer/js\\app.js",
        "/explorer/no-such-file.js",
        "/explorer/js",
        "/explorer/__init__.py",
    ],
)
def test_nothing_outside_the_page_is_served(api, path):
    response = api.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_trust_pins_the_log_and_its_witness_policy(make_api):
    api = make_api()
    trust = api.client.get("/explorer/trust.json").json()
    log = api.log.service
    assert trust == {
        "origin": log.origin,
        "log_key": str(log.verifier_key),
        "witnesses": [],
        "quorum": 0,
    }
    two = [witness(1), witness(2)]
    assert trust_document(log.origin, log.verifier_key, two, None)["quorum"] == 1
    assert trust_document(log.origin, log.verifier_key, two, 2)["witnesses"] == [
        str(k) for k in two
    ]
    with pytest.raises(ValueError, match="quorum"):
        trust_document(log.origin, log.verifier_key, two, 3)
    with pytest.raises(ValueError, match="expected a cosignature/v1 key"):
        trust_document(log.origin, log.verifier_key, [log.verifier_key], 0)
    app = TestClient(create_app(log, witnesses=two, quorum=2))
    assert json.loads(app.get("/explorer/trust.json").content)["quorum"] == 2


@pytest.mark.parametrize(
    "flags",
    [
        ["--explorer-quorum", "1"],
        ["--explorer-witness", "not-a-key"],
        ["--explorer-witness", "log+01020304+AQ=="],
        ["--explorer-witness", str(witness(3)), "--explorer-quorum", "2"],
        ["--explorer-witness", str(witness(3)), "--explorer-quorum", "-1"],
    ],
)
def test_serve_refuses_a_witness_policy_it_cannot_pin(tmp_path, flags):
    out = run_saksi(
        "serve", "--dir", str(tmp_path), "--read-only", *flags, passphrase=None
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "explorer" in out.stderr
