"""``pip install saksi`` with no extras is enough to run saksi-verify.

A fresh virtual environment gets the project's wheel and its one dependency,
PyNaCl, and nothing else: none of the server's packages can be imported there.
Then observers' commands run from it: a published tlog-proof vector verifies,
a tampered one is refused, ``checkpoint`` pins a log served on 127.0.0.1, and
proof bundles (a regency of the real 2024 sample, a province of the synthetic
national election) check with networking disabled for the process.

The wheel is built as pip builds any project (setuptools from the package
index); PyNaCl comes from the package index too, as it would for an observer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv

import pytest

from tests.helpers import ROOT, load_vectors
from tests.tilelog import NoteKey, TileServer, view


def run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=600, check=False, **kw
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    base = tmp_path_factory.mktemp("clean")
    # Built from a copy: pip builds in the source tree (build/, *.egg-info).
    source = base / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "demo-data",
        ),
    )
    wheels = base / "wheels"
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-w",
        str(wheels),
        str(source),
    )
    assert built.returncode == 0, built.stderr[-2000:]
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    (wheel,) = wheels.glob("saksi-*.whl")
    installed = run(str(python), "-m", "pip", "install", "--quiet", str(wheel))
    if installed.returncode != 0 and "No matching distribution" in installed.stderr:
        pytest.fail("PyNaCl could not be fetched: the package index is unreachable")
    assert installed.returncode == 0, installed.stderr[-2000:]
    return env_dir


def test_only_pynacl_comes_with_it(clean):
    listed = run(str(clean / "bin" / "python"), "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert names - {"pip", "setuptools"} == {"saksi", "pynacl", "cffi", "pycparser"}
    for server_side in ("fastapi", "sqlalchemy", "cryptography", "httpx"):
        probe = run(str(clean / "bin" / "python"), "-c", f"import {server_side}")
        assert probe.returncode != 0, server_side


def test_observer_commands_run_from_the_clean_environment(clean, tmp_path):
    verify = str(clean / "bin" / "saksi-verify")
    proof = next(
        p
        for p in load_vectors("tlog_proof.json")["proofs"]
        if p["id"] == "reference-leaf5-cosigned"
    )
    path = tmp_path / "leaf5.tlog-proof"
    path.write_text(proof["proof_text"])
    args = [
        "proof",
        str(path),
        "--key",
        proof["log_vkey"],
        "--leaf-hash",
        proof["leaf_hash_hex"],
        "--witness",
        proof["witness_vkey"],
        "--json",
    ]
    ok = run(verify, *args, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["cosigned_by"] == {"EnochRoot": 1679315147}
    path.write_text(proof["proof_text"].replace("index 5", "index 4"))
    assert run(verify, *args, cwd=tmp_path).returncode == 1

    key = NoteKey("example.org/clean", bytes([3]) * 32)
    server = TileServer()
    try:
        server.serve(view([b"a", b"b", b"c"], key, key.name))
        pinned = run(
            verify,
            "checkpoint",
            "--log",
            server.url,
            "--key",
            str(key.verifier_key),
            "--state",
            str(tmp_path / "state"),
            "--json",
            cwd=tmp_path,
        )
        assert pinned.returncode == 0, pinned.stderr
        assert json.loads(pinned.stdout)["tree_size"] == 3
    finally:
        server.stop()


def _offline(args: list[str]) -> list[str]:
    """``args`` in a network namespace of its own (no network at all).

    Only if the machine lets an unprivileged process make one; else as they
    are (the socket guard of the test still stops any connection).
    """
    probe = run("unshare", "-rn", "true") if shutil.which("unshare") else None
    if probe is not None and probe.returncode == 0:
        return ["unshare", "-rn", *args]
    return args


def test_a_bundle_checks_offline_in_the_clean_environment(clean, tmp_path):
    from tests.golden.build import SIGNER, write_log

    log = write_log(tmp_path)
    log.close()
    (tmp_path / "log.vkey").write_text(str(SIGNER.verifier_key) + "\n")
    out = tmp_path / "3171.bundle"
    made = run(
        sys.executable,
        "-m",
        "api",
        "export",
        "bundle",
        "--dir",
        str(tmp_path),
        "--db",
        f"sqlite:///{tmp_path / 'golden.db'}",
        "--region",
        "3171",
        "--out",
        str(out),
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    report = _check_offline(clean, out, tmp_path / "log.vkey", tmp_path)
    assert report["selected"] > 0


def test_a_synthetic_province_bundle_checks_offline_in_the_clean_environment(
    clean, tmp_path, monkeypatch
):
    # The synthetic national election as the benchmarks build it (bench.audit),
    # small: its first districts, of province 11, and the province's bundle.
    from bench.audit import build_log
    from bench.http import PASS

    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE", PASS)
    log_dir = build_log(1500, tmp_path / "national")
    out = tmp_path / "11.bundle"
    made = run(
        sys.executable,
        "-m",
        "api",
        "export",
        "bundle",
        "--dir",
        str(log_dir),
        "--region",
        "11",
        "--out",
        str(out),
        "--json",
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    exported = json.loads(made.stdout)
    report = _check_offline(clean, out, log_dir / "log.vkey", tmp_path)
    assert report["selected"] == exported["selected"] > 1000
    assert report["entries"] == exported["entries"]


def _check_offline(clean, bundle, key, work) -> dict:
    """``saksi-verify check-bundle`` from the clean environment, no network."""
    # Any attempt to open a connection fails loudly in the checking process.
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(
        "import socket\n"
        "def _refuse(*a, **k):\n"
        "    raise OSError('networking is disabled for this check')\n"
        "socket.socket.connect = _refuse\n"
        "socket.create_connection = _refuse\n"
        "socket.getaddrinfo = _refuse\n"
    )
    checked = run(
        *_offline(
            [
                str(clean / "bin" / "saksi-verify"),
                "check-bundle",
                str(bundle),
                "--key",
                str(key),
                "--json",
            ]
        ),
        cwd=work,
        env={"PYTHONPATH": str(guard), "PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["passed"] is True
    # The guard is live: the same environment cannot reach the network.
    probe = run(
        str(clean / "bin" / "python"),
        "-c",
        "import socket; socket.create_connection(('127.0.0.1', 9))",
        env={"PYTHONPATH": str(guard), "PATH": "/usr/bin:/bin"},
    )
    assert "networking is disabled" in probe.stderr
    return dict(report)


def test_an_audit_sample_draws_offline_in_the_clean_environment(clean, tmp_path):
    # The operator draws the sample from its database; an observer with the
    # verifier alone, offline, draws it again from a whole-log bundle.
    from tests.tilelog import view
    from tests.unit.verifier.test_sample_check import LOG_KEY, ORIGIN, sampled_log
    from verifier.bundle import write_bundle
    from verifier.tile_client import TileLog

    entries, plan, sample, _ = sampled_log(tmp_path / "log.db")
    files = view(entries, LOG_KEY, ORIGIN)
    bundle = tmp_path / "log.bundle"
    write_bundle(TileLog(files.__getitem__), files["checkpoint"], len(entries), bundle)
    (tmp_path / "operator.json").write_text(json.dumps(sample))
    (tmp_path / "log.vkey").write_text(str(LOG_KEY.verifier_key) + "\n")
    drawn = run(
        *_offline(
            [
                str(clean / "bin" / "saksi-verify"),
                "sample",
                "--bundle",
                str(bundle),
                "--key",
                str(tmp_path / "log.vkey"),
                "--plan",
                str(plan),
                "--check",
                str(tmp_path / "operator.json"),
                "--json",
            ]
        ),
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SAKSI_VERIFY_STATE": str(tmp_path / "state")},
    )
    assert drawn.returncode == 0, drawn.stderr
    report = json.loads(drawn.stdout)
    assert report["verified"] is True
    assert report["check"]["differences"] == []
    assert report["units"] == sample["units"]
