"""Shared test helpers: paths to ../shared, vector loading, fixed test keys."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
VECTORS = SHARED / "vectors"

# Tests only: deterministic Ed25519 seeds. Never use a fixed seed outside tests.
TEST_SEED = bytes(range(32))


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def cli_env(passphrase: str | None, **extra: str) -> dict[str, str]:
    """The environment a user's shell gives ``saksi``: no stray ``SAKSI_*``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("SAKSI_")}
    if passphrase:
        out["SAKSI_KEY_PASSPHRASE"] = passphrase
    out.update(extra)
    return out


def run_saksi(
    *args: str, passphrase: str | None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``saksi ARGS`` as a user runs it (``python -m api``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        capture_output=True,
        text=True,
        env=cli_env(passphrase),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def run_verify(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``saksi-verify ARGS`` as an observer runs it: the verifier's package alone."""
    return subprocess.run(
        [sys.executable, "-m", "verifier", *args],
        capture_output=True,
        text=True,
        env=cli_env(None),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def init_log(
    directory: Path, db_url: str, origin: str, passphrase: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``saksi init`` of a fresh log (fast key derivation: tests only)."""
    out = run_saksi(
        "init",
        "--db",
        db_url,
        "--origin",
        origin,
        "--dir",
        str(directory),
        "--kdf",
        "interactive",
        *extra,
        passphrase=passphrase,
    )
    assert out.returncode == 0, out.stderr
    return out


def granted_key(
    path: Path, remote: list[str], admin: str, role: str, scope: str, passphrase: str
) -> Path:
    """``saksi keys new`` into ``path``, then ``saksi keys grant`` it a role."""
    made = run_saksi(
        "keys", "new", "--out", str(path), "--kdf", "interactive", passphrase=passphrase
    )
    assert made.returncode == 0, made.stderr
    grant = run_saksi(
        "keys",
        "grant",
        *remote,
        "--admin-key",
        admin,
        "--key",
        str(path),
        "--role",
        role,
        "--scope",
        scope,
        passphrase=passphrase,
    )
    assert grant.returncode == 0, grant.stderr
    return path


@contextlib.contextmanager
def serving(
    directory: Path, db_url: str, env: dict[str, str], *extra: str
) -> Iterator[str]:
    """``saksi serve`` on a free 127.0.0.1 port for the block; yields its URL.

    Its stderr (the access log among it) goes to ``serve.log`` beside the log
    directory: a pipe nobody reads would fill and stall the server.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log_path = directory.parent / "serve.log"
    with log_path.open("ab") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api",
                "serve",
                "--db",
                db_url,
                "--dir",
                str(directory),
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(log_path.read_text(errors="replace")) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def grant_over_http(client: Any, admin: Any, key: Any, role: str, scope: str) -> Any:
    """Grant ``key`` a role and scope through ``client`` (a ``SaksiClient``),
    signed by ``admin``; the verified receipt."""
    from saksi_client import SaksiClient, grant_body

    record = SaksiClient.record(
        "keys.grant/v1",
        f"keys/{key.keyid}",
        grant_body(key.public_key, role, scope, key.name),
        after=client.head(f"keys/{key.keyid}"),
    )
    return client.submit(SaksiClient.sign(record, [admin]))


DKI_SAMPLE = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"


@contextlib.contextmanager
def dki_election(
    base: Path, origin: str, passphrase: str
) -> Iterator[tuple[Path, str, str, list[str], dict[str, Path]]]:
    """A served log holding the real 2024 sample, as an operator loads it.

    ``saksi init`` in ``base/log``, ``saksi serve``, keys granted (``lists``:
    candidates, ``sirekap``: the province's reading system, ``auditor``), DKI
    Jakarta's region table, the presidential candidates and the published
    forms (``saksi results import``). Yields (log directory, db URL, served
    URL, the ``--url``/``--log-key`` flags, key files by name).
    """
    directory = base / "log"
    db = f"sqlite:///{base / 'saksi.db'}"
    init_log(directory, db, origin, passphrase)
    admin = str(directory / "admin.key")
    with serving(directory, db, cli_env(passphrase)) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        keys = {
            name: granted_key(
                base / f"{name}.key", remote, admin, role, scope, passphrase
            )
            for name, role, scope in (
                ("lists", "candidates", "all"),
                ("sirekap", "tps", "31"),
                ("auditor", "auditor", "all"),
            )
        }
        for step in (
            ["regions", "load", *remote, "--key", admin, "--prefix", "31"],
            ["submit", *remote, "--key", str(keys["lists"]),
             str(ROOT / "domains/data/candidates_ppwp_2024.json")],
            ["results", "import", *remote, "--key", str(keys["sirekap"]),
             "--format", "sirekap", str(DKI_SAMPLE)],
        ):  # fmt: skip
            done = run_saksi(*step, passphrase=passphrase)
            assert done.returncode == 0, done.stderr
        yield directory, db, url, remote, keys
