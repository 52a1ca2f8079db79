"""``saksi keys provision``: a recap key for every region, as an operator runs it.

A fresh SQLite log served on 127.0.0.1 with the commission's region table for
Kepulauan Seribu (3101: one regency, 2 districts, 6 villages). One command
writes a key file per district, grants them in one batch, writes the manifest;
the log's registry shows each key with its role and scope; a second run adds
nothing; a key that is not this log's admin is refused before any file is
written. Then every level at once, through ``--db`` on the stopped log, and the
keys sign the recaps ``saksi results recap --keys DIR`` builds.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from keys import load_key_file
from tests.helpers import ROOT, SHARED, cli_env, init_log, run_saksi, serving

PASS = "provision-passphrase"
PREFIX = "3101"
DISTRICTS = ["310101", "310102"]
VILLAGES = [f"31010{d}100{v}" for d, n in ((1, 3), (2, 3)) for v in range(1, n + 1)]
SAMPLE = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS)


def registry(remote: list[str]) -> dict:
    listed = saksi("keys", "list", *remote, "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def provision(remote: list[str], admin: Path, out: Path, *extra: str):
    return saksi(
        "keys",
        "provision",
        *remote,
        "--admin-key",
        str(admin),
        "--out",
        str(out),
        "--kdf",
        "interactive",
        "--json",
        *extra,
    )


@pytest.fixture
def served(tmp_path):
    directory = tmp_path / "log"
    db_url = f"sqlite:///{directory / 'saksi.db'}"
    init_log(directory, db_url, "provision.saksi.example/pemilu2024", PASS)
    with serving(directory, db_url, cli_env(PASS)) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        loaded = saksi(
            "regions", "load", *remote, "--key", str(directory / "admin.key"),
            "--prefix", PREFIX,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        yield directory, remote


def test_provision_grants_a_key_per_district_and_a_rerun_adds_nothing(served, tmp_path):
    directory, remote = served
    out = tmp_path / "recap-keys"
    before = registry(remote)["tree_size"]

    done = provision(
        remote, directory / "admin.key", out, "--level", "district", "--prefix", PREFIX
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["regions"], result["created"], result["granted"]) == (2, 2, 2)
    assert sorted(p.name for p in out.glob("*.key")) == [f"{d}.key" for d in DISTRICTS]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["keys"]) == DISTRICTS
    granted = {k["keyid"]: k for k in registry(remote)["keys"]}
    for code in DISTRICTS:
        entry = manifest["keys"][code]
        assert (entry["role"], entry["scope"], entry["file"]) == (
            "district",
            code,
            f"{code}.key",
        )
        path = out / entry["file"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        signer = load_key_file(path, PASS.encode())  # an ordinary key file
        assert signer.keyid == entry["keyid"]
        grant = granted[entry["keyid"]]
        assert (grant["role"], grant["scope"], grant["revoked_at"]) == (
            "district",
            code,
            None,
        )
    after = registry(remote)["tree_size"]
    assert after == before + 2  # one grant each, nothing else

    files = {p.name: p.read_bytes() for p in out.glob("*.key")}
    again = provision(
        remote, directory / "admin.key", out, "--level", "district", "--prefix", PREFIX
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["created"], rerun["granted"], rerun["already_granted"]) == (0, 0, 2)
    assert registry(remote)["tree_size"] == after
    assert {p.name: p.read_bytes() for p in out.glob("*.key")} == files
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_provision_with_a_key_that_is_not_this_logs_admin_writes_nothing(
    served, tmp_path
):
    _, remote = served
    stranger = tmp_path / "stranger.key"
    made = saksi("keys", "new", "--out", str(stranger), "--kdf", "interactive")
    assert made.returncode == 0, made.stderr
    before = registry(remote)["tree_size"]
    out = tmp_path / "recap-keys"

    refused = provision(
        remote, stranger, out, "--level", "district", "--prefix", PREFIX
    )
    assert refused.returncode == 1
    assert "not in this log's registry" in refused.stderr
    assert "admin key" in refused.stderr  # the hint says what to pass
    assert "Traceback" not in refused.stderr
    assert not out.exists()
    assert registry(remote)["tree_size"] == before


def test_provision_grants_a_key_file_already_there_and_never_overwrites(
    served, tmp_path
):
    directory, remote = served
    out = tmp_path / "recap-keys"
    out.mkdir()
    # A run that stopped after writing this file, before granting it.
    made = saksi(
        "keys", "new", "--out", str(out / "310101.key"), "--kdf", "interactive"
    )
    assert made.returncode == 0, made.stderr
    mine = (out / "310101.key").read_bytes()
    (out / "310102.key").write_text("not a key file\n")  # an operator's mistake

    done = provision(
        remote, directory / "admin.key", out, "--level", "district", "--prefix", PREFIX
    )
    assert done.returncode == 1  # one region is left for the operator
    result = json.loads(done.stdout)
    assert (result["created"], result["granted"], result["granted_existing"]) == (
        0,
        1,
        1,
    )
    assert [c["region"] for c in result["conflicts"]] == ["310102"]
    assert "310102.key" in done.stderr
    assert "never overwritten" in done.stderr
    assert (out / "310101.key").read_bytes() == mine
    assert (out / "310102.key").read_text() == "not a key file\n"
    keyid = json.loads(saksi("keys", "show", "--key", str(out / "310101.key"),
                             "--json").stdout)["keyid"]  # fmt: skip
    grant = next(k for k in registry(remote)["keys"] if k["keyid"] == keyid)
    assert (grant["role"], grant["scope"]) == ("district", "310101")
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["keys"]) == ["310101"]

    (out / "310102.key").unlink()  # moved away: the next run makes one
    again = provision(
        remote, directory / "admin.key", out, "--level", "district", "--prefix", PREFIX
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["created"], rerun["already_granted"]) == (1, 1)


def test_every_level_through_db_signs_the_recaps(tmp_path):
    directory = tmp_path / "log"
    db_url = f"sqlite:///{directory / 'saksi.db'}"
    init_log(directory, db_url, "provision.saksi.example/recaps", PASS)
    admin = directory / "admin.key"
    reader, lists = tmp_path / "reader.key", tmp_path / "lists.key"
    with serving(directory, db_url, cli_env(PASS)) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        for step in (
            ("regions", "load", *remote, "--key", str(admin), "--prefix", PREFIX),
            ("keys", "new", "--out", str(reader), "--kdf", "interactive"),
            ("keys", "grant", *remote, "--admin-key", str(admin), "--key",
             str(reader), "--role", "tps", "--scope", "31"),
            ("keys", "new", "--out", str(lists), "--kdf", "interactive"),
            ("keys", "grant", *remote, "--admin-key", str(admin), "--key",
             str(lists), "--role", "candidates", "--scope", "all"),
            ("submit", *remote, "--key", str(lists),
             str(ROOT / "domains/data/candidates_ppwp_2024.json")),
        ):  # fmt: skip
            done = saksi(*step)
            assert done.returncode == 0, (step, done.stderr)
    # The log is not served now: the command opens its database.
    local = ["--db", db_url]
    out = tmp_path / "recap-keys"
    done = provision(local, admin, out, "--level", "all", "--prefix", "national")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = [*VILLAGES, *DISTRICTS, PREFIX, "31", "national"]
    assert result["regions"] == result["created"] == result["granted"] == 11
    assert sorted(p.stem for p in out.glob("*.key")) == sorted(expected)
    roles = {
        code: (e["role"], e["scope"])
        for code, e in json.loads((out / "manifest.json").read_text())["keys"].items()
    }
    assert roles["national"] == ("national", "")
    assert roles["31"] == ("province", "31")
    assert roles[VILLAGES[0]] == ("village", VILLAGES[0])

    # The regions are read through a read-only server beside the writer.
    with (
        serving(directory, db_url, cli_env(PASS)) as url,
        serving(directory, db_url, cli_env(PASS), "--read-only") as reads,
    ):
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        imported = saksi(
            "results", "import", *remote, "--key", str(reader), "--format",
            "sirekap", "--prefix", PREFIX, str(SAMPLE),
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        recap = saksi(
            "results", "recap", *remote, "--keys", str(out), "--read-from", reads,
            "--json",
        )  # fmt: skip
        assert recap.returncode == 0, recap.stderr
        signed = json.loads(recap.stdout)["signed"]
        assert signed == {
            "village": 6,
            "district": 2,
            "regency": 1,
            "province": 1,
            "national": 1,
        }
