"""``saksi publish``: the tlog-tiles tree as static files, served by anything.

* The published directory is byte for byte what ``saksi serve`` answers under
  ``/log/`` (every file it holds, and every path of the tree of its checkpoint);
  after the log grows, a publish writes only the new tiles, bundles and the
  checkpoint, and leaves every full tile and bundle untouched (inode, mtime).
* Debian's nginx, serving that directory with the README's configuration: the
  verifier's audit and the monitor check the log through it, and a following
  publisher keeps it current.
* A full disk: exit 3 with the reason, no temp file left, the published
  checkpoint unchanged; a following publisher recovers once there is room.
* Bad input and attacks: a missing ``--out`` parent, an ``--out`` that is a
  file, a wrong ``--dir``, another log's directory, a rolled-back database
  each fail with their exit code (``tests/unit/ledger/test_publish.py``: the
  publisher's own checks, in process).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bench.nginx import find_nginx
from bench.nginx import nginx_serving as serving_with_nginx
from cli.local import open_reader
from cli.main import main
from explorer import STATIC
from keys import Ed25519Signer, KdfProfile, write_key_file
from ledger.publish import DirectorySink
from ledger.tree.tiles import tiles_for_size
from saksi_client import SaksiClient
from tests.conftest import ORIGIN, FixedClock
from tests.faults.service_load import fill, small_tmpfs
from tests.helpers import (
    ROOT,
    TEST_SEED,
    cli_env,
    grant_over_http,
    run_saksi,
    run_verify,
    serving,
)
from tests.recordlog import ADMINS, START, RecordLog
from verifier.cosignature import cosigner_key
from verifier.note import VerifierKey
from verifier.tile_format import entries_path, tile_path

SIGNER = Ed25519Signer(ORIGIN, TEST_SEED)
SIZE = 2555  # 9 full tiles and bundles, a partial of 251; level 1 partial of 9
GROWTH = 8  # to 2,563: tile and bundle 9 become full, new partials of 3 and 10
PASS = "publish-test-passphrase"


def grant_many(log: RecordLog, first: int, count: int) -> None:
    """Grants to ``count`` new keys (new subjects: no chain to track)."""
    batch = []
    for n in range(first, first + count):
        key = Ed25519Signer(f"k{n}", hashlib.sha256(b"k%d" % n).digest())
        batch.append(log.prepare(log.grant_payload(key, "tps", "31"), ADMINS[:1]))
    outcomes = log.ledger.submit_many(batch)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes[:3]


class GrowingLog(RecordLog):
    """The writer of an existing log (``RecordLog`` makes a new one)."""

    def __init__(self, url: str, clock_start: float) -> None:
        self.url = url
        self.log_signer = SIGNER
        self.clock = FixedClock(clock_start)
        self.heads = {}
        self.open()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A log directory (log.key, log.vkey, saksi.db) of SIZE entries: a genesis
    and key grants."""
    directory = tmp_path_factory.mktemp("template") / "log"
    directory.mkdir()
    (directory / "log.vkey").write_text(f"{SIGNER.verifier_key}\n")
    write_key_file(directory / "log.key", SIGNER, PASS.encode(), KdfProfile.INTERACTIVE)
    log = RecordLog(f"sqlite:///{directory / 'saksi.db'}", SIGNER)
    try:
        grant_many(log, 0, SIZE - 1)
        assert log.ledger.size == SIZE
    finally:
        log.close()
    return directory


def copy_log(template: Path, base: Path) -> Path:
    directory = base / "log"
    shutil.copytree(template, directory)
    return directory


def grow(directory: Path, first: int, count: int) -> None:
    """``count`` more entries (the writer's clock after every earlier one)."""
    log = GrowingLog(f"sqlite:///{directory / 'saksi.db'}", START + 10_000 + first)
    try:
        grant_many(log, first, count)
    finally:
        log.close()


def publish(directory: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``saksi publish`` in this process: the command's code, without a start-up."""
    argv = ["publish", "--dir", str(directory), "--out", str(out), *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def published_once(directory: Path, out: Path) -> dict:
    done = publish(directory, out, "--once", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def files(out: Path) -> dict[str, bytes]:
    """Every published file by its path (the lock and temp files are hidden)."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def stats(out: Path) -> dict[str, tuple[int, int]]:
    return {
        name: ((out / name).stat().st_ino, (out / name).stat().st_mtime_ns)
        for name in files(out)
    }


def tree_paths(size: int) -> set[str]:
    """The paths a client of the checkpoint of ``size`` reads."""
    paths = {"checkpoint"}
    for c in tiles_for_size(size):
        paths.add(tile_path(c.level, c.index, c.width))
        if c.level == 0:
            paths.add(entries_path(c.index, c.width))
    return paths


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return response.read(), dict(response.headers)


def temp_files(out: Path) -> list[Path]:
    return list(out.rglob(".saksi-tmp-*"))


def size_of(out: Path) -> int:
    return int((out / "checkpoint").read_bytes().split(b"\n")[1])


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextlib.contextmanager
def following(directory: Path, out: Path, base: Path) -> Iterator[subprocess.Popen]:
    """``saksi publish`` following the log every 0.2 s; stdout, stderr in ``base``."""
    with (
        (base / "publish.out").open("wb") as stdout,
        (base / "publish.err").open("wb") as stderr,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "publish", "--dir", str(directory),
             "--out", str(out), "--interval", "0.2", "--json"],
            env=cli_env(None),
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the published tree is what the API serves -------------------------------------


def test_published_files_are_what_serve_answers_and_growth_writes_only_the_new(
    template, tmp_path
):
    directory = copy_log(template, tmp_path)
    db = f"sqlite:///{directory / 'saksi.db'}"
    out = tmp_path / "public"
    command = run_saksi(  # as the operator runs it; the rest runs in this process
        "publish", "--dir", str(directory), "--out", str(out), "--once", "--json",
        passphrase=None,
    )  # fmt: skip
    assert command.returncode == 0, command.stderr
    done = json.loads(command.stdout)
    assert (done["size"], done["previous_size"]) == (SIZE, 0)
    first = files(out)
    assert set(first) == tree_paths(SIZE)
    assert done["written"] == len(first) == 22
    assert done["bytes"] == sum(map(len, first.values()))
    before = stats(out)
    with serving(directory, db, cli_env(PASS)) as url:  # the writer
        for path, data in first.items():
            assert fetch(f"{url}/log/{path}")[0] == data, path
        # Nothing new: nothing written, not even the checkpoint.
        again = published_once(directory, out)
        assert (again["written"], again["size"]) == (0, SIZE)
        assert stats(out) == before

        client = SaksiClient(url, SIGNER.verifier_key)
        for n in range(GROWTH):  # through the API, as the log grows in service
            key = Ed25519Signer(f"new{n}", hashlib.sha256(b"new%d" % n).digest())
            grant_over_http(client, ADMINS[0], key, "tps", "31")
        done = published_once(directory, out)
        size = SIZE + GROWTH
        assert (done["previous_size"], done["size"]) == (SIZE, size)
        now = files(out)
        changed = {p for p, s in stats(out).items() if before.get(p) != s}
        assert changed == {
            "checkpoint",
            "tile/0/009",
            "tile/0/010.p/3",
            "tile/1/000.p/10",
            "tile/entries/009",
            "tile/entries/010.p/3",
        }
        assert done["written"] == len(changed)
        # Every full tile and bundle is the file written the first time.
        for path, data in first.items():
            if path != "checkpoint":
                assert now[path] == data
        assert set(now) == tree_paths(size) | (set(first) - {"checkpoint"})
        for path, data in now.items():  # the superseded partials are right too
            assert fetch(f"{url}/log/{path}")[0] == data, path
    assert not temp_files(out)


# -- served by nginx ----------------------------------------------------------------


def nginx_binary() -> str:
    found = find_nginx()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (.ci/run installs Debian's nginx)")
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    return found


@contextlib.contextmanager
def nginx_serving(root: Path, run: Path) -> Iterator[str]:
    """nginx serving ``root`` with the shipped configuration, on 127.0.0.1."""
    with serving_with_nginx(nginx_binary(), root, run) as url:
        yield url


@pytest.fixture
def public(tmp_path) -> Iterator[Path]:
    """A directory anyone may read (nginx runs as nobody under root)."""
    base = Path(tempfile.mkdtemp(prefix="saksi-publish-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def monitor_once(base: Path, url: str, directory: Path) -> dict:
    config = base / "monitor"
    config.mkdir(exist_ok=True)
    shutil.copy(directory / "log.vkey", config / "log.vkey")
    (config / "monitor.toml").write_text(
        f'[log]\nurl = "{url}"\ntiles = "{url}"\nkey = "log.vkey"\n\n'
        '[monitor]\nstate = "state"\nlisten = "127.0.0.1:0"\n'
    )
    done = run_saksi(
        "monitor", "--config", str(config / "monitor.toml"), "--once", "--json",
        passphrase=None,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_nginx_serves_it_to_the_auditor_and_the_monitor(template, tmp_path, public):
    nginx_binary()
    directory = copy_log(template, tmp_path)
    out = public / "log"
    published_once(directory, out)
    with nginx_serving(out, public / "nginx") as url:
        note, headers = fetch(f"{url}/checkpoint")
        assert note == (out / "checkpoint").read_bytes()
        assert headers["Cache-Control"] == "no-cache"
        assert headers["Content-Type"].startswith("text/plain")
        tile, headers = fetch(f"{url}/tile/0/000")
        assert len(tile) == 8192
        assert "immutable" in headers["Cache-Control"]
        _, headers = fetch(f"{url}/tile/entries/009.p/251")
        assert headers["Cache-Control"] == "public, max-age=5"
        with pytest.raises(urllib.error.HTTPError):
            fetch(f"{url}/.saksi-publish.lock")

        audit = run_verify(
            "audit", "--log", url, "--key", str(directory / "log.vkey"), "--json"
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert json.loads(audit.stdout)["tree_size"] == SIZE
        assert monitor_once(tmp_path, url, directory)["checked"] == SIZE

        # A following publisher keeps nginx current as the log grows.
        with following(directory, out, tmp_path) as publisher:
            printed = tmp_path / "publish.out"
            wait_for(lambda: printed.read_text(), "the publisher's first look")
            grow(directory, SIZE - 1, GROWTH)
            wait_for(lambda: '"size": 2563' in printed.read_text(), "the growth")
            publisher.send_signal(signal.SIGTERM)
            assert publisher.wait(timeout=30) == 0
        stderr = (tmp_path / "publish.err").read_text()
        assert f"stopped publishing; {out} holds the tree of 2,563 entries" in stderr
        lines = [json.loads(x) for x in printed.read_text().splitlines()]
        assert [(x["size"], x["written"]) for x in lines] == [(SIZE, 0), (2563, 6)]
        assert monitor_once(tmp_path, url, directory)["checked"] == SIZE + GROWTH


# -- a full disk --------------------------------------------------------------------


def test_a_full_disk_fails_cleanly_and_a_following_publisher_recovers(
    template, tmp_path
):
    directory = copy_log(template, tmp_path)
    with small_tmpfs(tmp_path / "small", "4m") as small:
        out = small / "public"
        published_once(directory, out)
        note = (out / "checkpoint").read_bytes()
        grow(directory, SIZE - 1, 600)  # two more full bundles: ~0.5 MB
        filler = fill(small)

        failed = publish(directory, out, "--once")
        assert failed.returncode == 3, failed.stderr
        assert "No space left on device" in failed.stderr
        assert "saksi: hint: free space on the filesystem of" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert (out / "checkpoint").read_bytes() == note
        assert not temp_files(out)

        with following(directory, out, tmp_path) as publisher:
            err = tmp_path / "publish.err"
            wait_for(lambda: "No space left" in err.read_text(), "the full disk")
            assert publisher.poll() is None  # it waits for room
            filler.unlink()
            wait_for(lambda: size_of(out) == SIZE + 600, "the publish after room")
        assert err.read_text().count("No space left") == 1  # said once
        assert "saksi: publishing again" in err.read_text()
        assert not temp_files(out)
        reference = tmp_path / "reference"
        published_once(directory, reference)
        now, fresh = files(out), files(reference)
        assert {path: now[path] for path in fresh} == fresh
        assert set(now) - set(fresh) == {
            "tile/0/009.p/251",
            "tile/1/000.p/9",
            "tile/entries/009.p/251",
        }


# -- bad input and attacks ----------------------------------------------------------


def test_bad_input_fails_with_its_exit_code_and_a_hint(template, tmp_path):
    directory = copy_log(template, tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    other = tmp_path / "other"
    other.mkdir()
    (other / "checkpoint").write_bytes(b"not a checkpoint\n")
    cases = [
        ((directory, tmp_path / "no/out", "--once"), 3, "no directory"),
        ((directory, a_file, "--once"), 2, "is not a directory"),
        ((tmp_path, tmp_path / "out", "--once"), 3, "log.vkey"),
        ((directory, other, "--once"), 2, "holds another log's tree"),
        ((directory, tmp_path / "out", "--interval", "0"), 2, "--interval"),
    ]
    for argv, code, says in cases:
        done = publish(*argv)
        assert done.returncode == code, (argv, done.stderr)
        assert says in done.stderr, done.stderr
        assert "saksi: hint: " in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    assert (other / "checkpoint").read_bytes() == b"not a checkpoint\n"
    busy = tmp_path / "busy"
    busy.mkdir()
    with DirectorySink.open(busy):  # another publisher holds it
        done = publish(directory, busy, "--once")
    assert done.returncode == 3, done.stderr
    assert "another publisher is writing to" in done.stderr
    assert "saksi: hint: stop the other 'saksi publish' first" in done.stderr


# -- the results explorer beside the tiles ------------------------------------------


def _witness(name: str) -> str:
    seed = hashlib.sha256(name.encode()).digest()
    return str(cosigner_key(name, bytes(nacl.signing.SigningKey(seed).verify_key)))


def test_the_explorer_is_written_beside_the_tiles_as_serve_answers_it(
    template, tmp_path
):
    directory = copy_log(template, tmp_path)
    out, site = tmp_path / "www/log", tmp_path / "www/explorer"
    (tmp_path / "www").mkdir()
    pins = [_witness("bawaslu.example"), _witness("univ.example")]
    argv = ["--once", "--json", "--explorer", str(site)]
    argv += [a for pin in pins for a in ("--explorer-witness", pin)]
    done = publish(directory, out, *argv)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["size"] == SIZE
    assert report["explorer"]["out"] == str(site)
    assert report["explorer"]["quorum"] == 1  # one, when any is pinned
    written = files(site)
    assert sorted(report["explorer"]["written"]) == sorted(written)
    # The page's files as the package has them, and as serve sends them.
    shipped = {
        p.relative_to(STATIC).as_posix(): p.read_bytes()
        for p in STATIC.rglob("*")
        if p.is_file()
    }
    assert {k: v for k, v in written.items() if k != "trust.json"} == shipped
    assert {"index.html", "js/app.js", "js/verify/merkle.js"} <= set(shipped)
    trust = json.loads(written["trust.json"])
    reader = open_reader(directory, None)
    try:
        pinned = [VerifierKey.parse(pin) for pin in pins]
        with TestClient(create_app(reader, witnesses=pinned)) as client:
            assert client.get("/explorer/trust.json").json() == trust
    finally:
        reader.close()
    assert trust["log_key"] == (directory / "log.vkey").read_text().strip()
    assert trust["witnesses"] == pins
    for path in [site, *site.rglob("*")]:  # readable by a web server's user
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644)
    # Run again: nothing rewritten (a CDN's copies stay valid); a file changed
    # by hand is put back; a quorum of two is pinned.
    before = stats(site)
    (site / "js/app.js").write_text("alert(1)")
    again = publish(directory, out, *argv, "--explorer-quorum", "2")
    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(again.stdout)["explorer"]["written"]) == [
        "js/app.js",
        "trust.json",
    ]
    assert files(site)["js/app.js"] == shipped["js/app.js"]
    assert json.loads(files(site)["trust.json"])["quorum"] == 2
    after = stats(site)
    assert {n for n in before if before[n] != after[n]} == {"js/app.js", "trust.json"}
    assert not list(site.rglob(".tmp-*"))
    said = publish(directory, out, "--once", "--explorer", str(site))
    assert said.returncode == 0, said.stderr
    assert (
        f"the results explorer is in {site} (up to date, quorum 0)" not in said.stdout
    )
    assert (
        f"the results explorer is in {site} (1 files written, quorum 0)" in said.stdout
    )


def test_bad_explorer_input_fails_with_its_exit_code_and_writes_nothing(
    template, tmp_path
):
    directory = copy_log(template, tmp_path)
    out = tmp_path / "tiles"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    log_key = (directory / "log.vkey").read_text().strip()
    pin = _witness("bawaslu.example")
    cases = [
        (("--explorer-witness", pin), 2, "add --explorer PATH"),
        (("--explorer-quorum", "1"), 2, "add --explorer PATH"),
        (("--explorer", str(out)), 2, "overlap"),
        (("--explorer", str(out / "explorer")), 2, "overlap"),
        (("--explorer", str(tmp_path)), 2, "overlap"),
        (("--explorer", str(a_file)), 2, "is not a directory"),
        (("--explorer", str(tmp_path / "no/site")), 3, "no directory"),
        (("--explorer", str(tmp_path / "s"), "--explorer-witness", "junk"), 2, "0x04"),
        (("--explorer", str(tmp_path / "s"), "--explorer-witness", log_key), 2,
         "expected a cosignature/v1 key"),
        (("--explorer", str(tmp_path / "s"), "--explorer-witness", pin,
          "--explorer-quorum", "2"), 2, "quorum"),
    ]  # fmt: skip
    for extra, code, says in cases:
        done = publish(directory, out, "--once", *extra)
        assert done.returncode == code, (extra, done.stderr)
        assert says in done.stderr, done.stderr
        assert "saksi: hint: " in done.stderr
        assert "Traceback" not in done.stderr
    assert not out.exists()  # refused before anything was written
    assert not (tmp_path / "s").exists()


def test_a_rolled_back_database_never_rolls_the_published_checkpoint_back(
    template, tmp_path
):
    grown = copy_log(template, tmp_path / "grown")
    grow(grown, SIZE - 1, GROWTH)
    out = tmp_path / "public"
    published_once(grown, out)
    before = files(out)
    rolled_back = copy_log(template, tmp_path / "old")  # the same log, older
    done = publish(rolled_back, out, "--once")
    assert done.returncode == 1, done.stderr
    assert "rolled back" in done.stderr
    assert files(out) == before
