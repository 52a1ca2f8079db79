"""The operator CLI as a user runs it: saksi init, demo, check (subprocesses)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.helpers import SHARED, cli_env, run_saksi, serving
from verifier.note import VerifierKey

DATA = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"


def env(passphrase: str | None = "cli-test-passphrase") -> dict[str, str]:
    return cli_env(passphrase)


def saksi(*args: str, passphrase: str | None = "cli-test-passphrase"):
    return run_saksi(*args, passphrase=passphrase)


def demo(log_dir, db_url, count: int, *extra: str):
    with serving(log_dir, db_url, env()) as url:
        return saksi(
            "demo",
            "--url",
            url,
            "--dir",
            str(log_dir),
            "--data",
            str(DATA),
            "--count",
            str(count),
            *extra,
        )


@pytest.fixture
def log_dir(tmp_path, db_url):
    directory = tmp_path / "log"
    out = saksi(
        "init",
        "--db",
        db_url,
        "--origin",
        "cli.saksi.example/log",
        "--dir",
        str(directory),
        "--kdf",
        "interactive",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["origin"] == "cli.saksi.example/log"
    vkey = VerifierKey.parse((directory / "log.vkey").read_text().strip())
    assert str(vkey) == info["verifier_key"]
    assert "cli-test-passphrase" not in (directory / "log.key").read_text()
    assert (directory / "admin.key").exists()
    assert info["threshold"] == 1
    assert len(info["admin_keys"]) == 1
    return directory


def test_init_demo_check(log_dir, db_url):
    out = demo(log_dir, db_url, 300, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    lines = [json.loads(line) for line in DATA.read_text().splitlines()[:300]]
    complete = [
        d for d in lines if d["data"].get("chart") and d["data"].get("administrasi")
    ]
    assert result["polling_stations"] == 300
    assert result["imported"] == len(complete)
    assert result["pending"] == 300 - len(complete)
    assert result["records"] == result["verified_receipts"]
    assert result["unauthorized_write"] == "403 out-of-scope"
    assert result["repeat_index"] == 1
    assert result["rival_revision"] == "409 stale-revision"
    assert result["consistent"] is True
    # The correction re-signed exactly one recap per level above the station.
    assert result["recaps_resigned"] == {
        "village": 1,
        "district": 1,
        "regency": 1,
        "province": 1,
        "national": 1,
    }
    trail = result["provenance"]
    assert [step["level"] for step in trail] == [
        "national",
        "province",
        "regency",
        "district",
        "village",
        "station",
    ]
    station = trail[-1]
    assert station["stage"] == "authority_correction"
    assert station["earlier"][0]["stage"] == "machine_reading"
    assert station["value"] - station["earlier"][0]["value"] == 8  # 243 vs 235
    assert trail[0]["value"] - trail[0]["earlier"][0]["value"] == 8
    size = result["size_after"]
    out = saksi("check", "--db", db_url, "--dir", str(log_dir), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["size"] == size
    human = saksi("check", "--db", db_url, "--dir", str(log_dir))
    assert human.stdout.startswith(f"OK: {size} entries")


def test_check_names_first_bad_index(log_dir, db_url):
    assert demo(log_dir, db_url, 40).returncode == 0
    engine = sa.create_engine(
        db_url.replace("postgresql+psycopg", "postgresql+psycopg")
    )
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER entries_no_update"))
        else:
            conn.execute(sa.text("ALTER TABLE entries DISABLE TRIGGER USER"))
        conn.execute(
            sa.text("UPDATE entries SET data = :d WHERE idx = 17"),
            {"d": b'{"kode_tps":"forged"}'},
        )
    engine.dispose()
    out = saksi("check", "--db", db_url, "--dir", str(log_dir), "--json")
    assert out.returncode == 1
    problems = json.loads(out.stdout)["problems"]
    # The trigger dropped (or disabled) to make the edit is reported too.
    assert problems[0]["kind"] == "guards"
    assert "entries" in problems[0]["message"]
    problem = next(p for p in problems if p["kind"] != "guards")
    assert problem["index"] == 17
    assert problem["kind"] == "entry-differs"


def test_init_refuses_existing_dir_and_short_passphrase(log_dir, tmp_path, db_url):
    again = saksi(
        "init", "--db", db_url, "--origin", "x.example/log", "--dir", str(log_dir)
    )
    assert again.returncode == 2  # usage: that directory already holds a log
    assert "hint:" in again.stderr
    weak = saksi(
        "init",
        "--origin",
        "x.example/log",
        "--dir",
        str(tmp_path / "w"),
        passphrase="short",
    )
    assert weak.returncode != 0
    assert "8 bytes" in weak.stderr
    assert "short" not in weak.stderr.replace("shortly", "")


def test_bad_inputs_get_clear_errors(tmp_path):
    no_pass = saksi(
        "init",
        "--origin",
        "x.example/log",
        "--dir",
        str(tmp_path / "a"),
        passphrase=None,
    )
    assert no_pass.returncode == 2  # usage: no passphrase set
    assert "SAKSI_KEY_PASSPHRASE" in no_pass.stderr
    bad_origin = saksi("init", "--origin", "has space", "--dir", str(tmp_path / "b"))
    assert bad_origin.returncode == 2
    missing = saksi("check", "--dir", str(tmp_path / "nothing"), "--json")
    assert missing.returncode == 3
    assert json.loads(missing.stdout)["ok"] is False
    assert "Traceback" not in missing.stderr
    usage = saksi("check")
    assert usage.returncode == 2


def test_wrong_passphrase_for_demo(log_dir, db_url):
    out = saksi(
        "demo",
        "--url",
        "http://127.0.0.1:9",
        "--dir",
        str(log_dir),
        "--data",
        str(DATA),
        passphrase="wrong-passphrase",
    )
    assert out.returncode == 1  # a key that does not open is refused
    assert "wrong passphrase" in out.stderr
    assert "wrong-passphrase" not in out.stderr
