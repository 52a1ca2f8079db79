"""The election commands on bad, odd or missing input, as an operator meets them.

Each test runs ``saksi`` as a user does (a subprocess, against ``saksi serve`` on
127.0.0.1 where the command needs a log) and checks the exit code (0 ok, 1
failed or nothing done, 2 usage or a malformed file, 3 I/O), that the message
names the file, the line and what was expected, and that no traceback shows.
One DKI Jakarta log (Kepulauan Seribu's region table, the 2024 candidates and
some of the sample's tallies) and one 2019 log serve the whole module.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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

PASS = "election-cli-errors-passphrase"
DATA = SHARED / "data"
SAMPLE = DATA / "sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
WILAYAH = DATA / "sirekap2024/sirekap_wilayah_ppwp.csv"
TPS = DATA / "sirekap2024/sirekap_tps_ppwp.csv.gz"
EXTRACT = DATA / "kawalpemilu2019/kawalpemilu2019_gorontalo_diy.jsonl.gz"
NOWHERE = ["--url", "http://127.0.0.1:9", "--key", "/nonexistent/unused.key"]
FIELDS = ("pas1", "pas2", "sah", "tSah", "jum")


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS)


def saksi_in(cwd: Path, *args: str, **env: str):
    """``saksi ARGS`` run from ``cwd`` (not the project), with extra variables."""
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        capture_output=True,
        text=True,
        env=cli_env(PASS, **env),
        cwd=cwd,
        timeout=300,
        check=False,
    )


def no_traceback(out) -> None:
    assert "Traceback" not in out.stderr, out.stderr
    assert "Error:" not in out.stderr.replace("saksi: error:", ""), out.stderr


def seribu_lines() -> list[str]:
    """The sample's lines for Kepulauan Seribu (3101): 88 stations, 59 complete."""
    return [
        line
        for line in SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
        if json.loads(line)["kode_tps"].startswith("3101")
    ]


def tree_size(url: str) -> int:
    return int(httpx.get(f"{url}/v1/log", timeout=30).json()["tree_size"])


def head_exists(url: str, station: str) -> bool:
    answer = httpx.get(f"{url}/v1/subjects/results/ppwp/{station}", timeout=30)
    return answer.status_code == 200


@pytest.fixture(scope="module")
def dki(tmp_path_factory):
    """A served log with Kepulauan Seribu's regions and 48 of its stations."""
    tmp = tmp_path_factory.mktemp("dki")
    directory, db = tmp / "log", f"sqlite:///{tmp / 'log.db'}"
    init_log(directory, db, "errors.saksi.example/pemilu2024", PASS)
    serve_env = cli_env(PASS, SAKSI_KEY_RATE="100000", SAKSI_KEY_BURST="100000")
    with serving(directory, db, serve_env) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        admin = str(directory / "admin.key")
        sirekap = granted_key(tmp / "sirekap.key", remote, admin, "tps", "31", PASS)
        lists = granted_key(tmp / "lists.key", remote, admin, "candidates", "all", PASS)
        candidates = ROOT / "domains/data/candidates_ppwp_2024.json"
        out = saksi("submit", *remote, "--key", str(lists), str(candidates))
        assert out.returncode == 0, out.stderr
        out = saksi(
            "regions", "load", *remote, "--key", admin, "--prefix", "3101",
            "--wilayah", str(WILAYAH), "--tps", str(TPS),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        logged = tmp / "logged.jsonl"
        logged.write_text("".join(seribu_lines()[40:]), encoding="utf-8")
        out = saksi(
            "results", "import", *remote, "--key", str(sirekap),
            "--format", "sirekap", str(logged),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        yield SimpleNamespace(
            url=url, remote=remote, admin=admin, key=str(sirekap), dir=directory
        )


def import_(dki, path: Path, *extra: str):
    return saksi(
        "results", "import", *dki.remote, "--key", dki.key,
        "--format", "sirekap", *extra, str(path),
    )  # fmt: skip


# 1. Reading the files: gzip by its bytes, strict lines, nothing read is a failure.


def test_a_gzip_file_is_read_by_its_bytes_whatever_its_name(dki, tmp_path):
    lines = seribu_lines()[:30]
    disguised = tmp_path / "stations.jsonl"  # gzip inside, no .gz in the name
    disguised.write_bytes(gzip.compress("".join(lines).encode()))
    out = import_(dki, disguised, "--json")
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    complete = [line for line in lines if json.loads(line)["data"].get("administrasi")]
    assert result["stations"] == 30
    assert result["imported"] == len(complete) > 0
    assert result["skipped"]["pending"] == 30 - len(complete)
    assert result["skipped"]["bad_lines"] == 0


def test_a_bad_line_stops_the_import_naming_file_line_and_reason(dki, tmp_path):
    lines = seribu_lines()[30:40]
    bad = tmp_path / "with-a-bad-line.jsonl"
    bad.write_text("".join([*lines[:3], "{not json\n", *lines[3:]]), encoding="utf-8")
    size = tree_size(dki.url)
    out = import_(dki, bad)
    no_traceback(out)
    assert out.returncode == 2, out.stderr
    assert f"{bad}, line 4: not JSON" in out.stderr
    assert "--skip-bad" in out.stderr  # the hint says how to go on anyway
    assert tree_size(dki.url) == size  # stopped before anything was signed

    # A station code that is not one, in a gzip file: the same, by line number.
    code = json.loads(lines[5])["kode_tps"]
    odd = tmp_path / "odd-code.jsonl.gz"
    odd.write_bytes(
        gzip.compress("".join([*lines[:6], lines[5].replace(code, code[:11])]).encode())
    )
    out = import_(dki, odd)
    no_traceback(out)
    assert out.returncode == 2
    assert f"{odd}, line 7: kode_tps: expected a 13-digit station code" in out.stderr

    # --skip-bad: the line is skipped, counted and listed (JSON and text).
    out = import_(dki, bad, "--skip-bad", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["stations"] == 10
    assert result["skipped"]["bad_lines"] == 1
    (listed,) = result["bad_lines"]
    assert listed["file"] == str(bad)
    assert listed["line"] == 4
    assert listed["reason"].startswith("not JSON")
    text = import_(dki, bad, "--skip-bad")
    assert text.returncode == 0, text.stderr
    assert "1 bad line(s) skipped" in text.stdout
    assert f"bad line: {bad}, line 4: not JSON" in text.stdout


def test_a_file_with_nothing_to_read_fails(dki, tmp_path):
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("this is not\nwhat you think\n", encoding="utf-8")
    binary = tmp_path / "garbage.bin"
    binary.write_bytes(bytes(range(255, -1, -1)) * 8)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    size = tree_size(dki.url)

    out = import_(dki, garbage)
    no_traceback(out)
    assert out.returncode == 2
    assert f"{garbage}, line 1: not JSON" in out.stderr
    out = import_(dki, binary)
    no_traceback(out)
    assert out.returncode == 2
    assert f"{binary}, line 1: not UTF-8" in out.stderr

    for path in (garbage, binary):
        out = import_(dki, path, "--skip-bad")
        no_traceback(out)
        assert out.returncode == 1
        assert f"no polling stations read from {path}" in out.stderr
        assert "bad line(s) skipped" in out.stderr
    out = import_(dki, empty, "--json")
    no_traceback(out)
    assert out.returncode == 1
    assert json.loads(out.stdout)["ok"] is False
    assert f"no polling stations read from {empty}" in out.stderr

    # Stations read, none under the prefix: nothing done either.
    some = tmp_path / "some.jsonl"
    some.write_text("".join(seribu_lines()[:3]), encoding="utf-8")
    out = import_(dki, some, "--prefix", "3173")
    assert out.returncode == 1
    assert "under prefix 3173 (3 in the file)" in out.stderr
    assert tree_size(dki.url) == size


def test_a_directory_of_station_files_with_a_broken_one(dki, tmp_path):
    lines = seribu_lines()[:3]
    folder = tmp_path / "hhcw"
    for line in lines:
        doc = json.loads(line)
        file = folder / doc["kode_tps"][:6] / f"{doc['kode_tps']}.json"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(doc["data"]), encoding="utf-8")
    broken = folder / "310101" / "3101011001099.json"
    broken.write_text('{"chart": ', encoding="utf-8")
    out = import_(dki, folder)
    no_traceback(out)
    assert out.returncode == 2
    assert f"{broken}, line 1: not JSON" in out.stderr
    out = import_(dki, folder, "--skip-bad", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["stations"] == 3
    assert [b["file"] for b in result["bad_lines"]] == [str(broken)]


# 3. Errors say which file and what was expected, never an internal name.


def test_region_tables_without_the_expected_columns(tmp_path):
    no_level = tmp_path / "no-tingkat.csv"
    no_level.write_text("kode,parent,nama\n31,,DKI JAKARTA\n", encoding="utf-8")
    out = saksi("regions", "load", *NOWHERE, "--wilayah", str(no_level))
    no_traceback(out)
    assert out.returncode == 2
    assert (
        f"cannot read the region table {no_level}, line 1: no column 'tingkat'"
        in out.stderr
    )
    assert "expected kode, tingkat, nama" in out.stderr

    short = tmp_path / "short-row.csv"
    short.write_text(
        "kode,tingkat,parent,nama\n31,1,,DKI JAKARTA\n3101,2\n", encoding="utf-8"
    )
    out = saksi("regions", "load", *NOWHERE, "--wilayah", str(short))
    no_traceback(out)
    assert out.returncode == 2
    assert f"{short}, line 3: 2 fields, the header names 4" in out.stderr

    stations = tmp_path / "tps.csv"
    stations.write_text("code\n3101011001001\n", encoding="utf-8")
    out = saksi(
        "regions", "load", *NOWHERE, "--prefix", "3101",
        "--wilayah", str(WILAYAH), "--tps", str(stations),
    )  # fmt: skip
    no_traceback(out)
    assert out.returncode == 2
    assert (
        f"cannot read the polling-station table {stations}, line 1: no column 'kode'"
        in out.stderr
    )

    # The 2019 matching reads the table's parent column.
    out = saksi(
        "results", "import", *NOWHERE, "--format", "kawalpemilu2019",
        "--wilayah", str(no_level.with_name("no-parent.csv")), str(EXTRACT),
    )  # fmt: skip
    assert out.returncode == 3  # that file does not exist: named, with the flag
    assert f"the region table {no_level.with_name('no-parent.csv')}: not found" in (
        out.stderr
    )
    assert "--wilayah" in out.stderr
    no_parent = tmp_path / "no-parent.csv"
    no_parent.write_text("kode,tingkat,nama\n75,1,GORONTALO\n", encoding="utf-8")
    out = saksi(
        "results", "import", *NOWHERE, "--format", "kawalpemilu2019",
        "--wilayah", str(no_parent), str(EXTRACT),
    )  # fmt: skip
    no_traceback(out)
    assert out.returncode == 2
    assert f"{no_parent}, line 1: no column 'parent'" in out.stderr


def test_an_extract_node_without_its_fields(tmp_path):
    nodes = [
        {"id": 1, "depth": 1, "name": "GORONTALO", "parentIds": [0]},
        {"id": 2, "name": "GORONTALO", "parentIds": [0, 1]},  # no depth
    ]
    extract = tmp_path / "extract.jsonl"
    extract.write_text("".join(json.dumps(n) + "\n" for n in nodes))
    for command in (
        ["regions", "load", "--format", "kawalpemilu2019", "--path", str(extract)],
        ["results", "import", "--format", "kawalpemilu2019", str(extract)],
    ):
        out = saksi(*command, *NOWHERE)
        no_traceback(out)
        assert out.returncode == 2
        assert (
            f"cannot read the 2019 extract {extract}, line 2: not a KawalPemilu "
            "node: depth: expected 0 (nation) to 4 (village)" in out.stderr
        )
        assert "'depth'" not in out.stderr


# 4. Default data does not depend on the current directory.


def test_regions_load_finds_its_default_tables_from_any_directory(dki, tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    args = ("regions", "load", *dki.remote, "--key", dki.admin, "--prefix", "3101")
    out = saksi_in(elsewhere, *args, "--json")
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["districts"] == result["already_logged"] == 2

    # SAKSI_DATA_DIR moves the default; a missing file is named, with the flag.
    out = saksi_in(elsewhere, *args, "--json", SAKSI_DATA_DIR=str(DATA))
    assert out.returncode == 0, out.stderr
    out = saksi_in(elsewhere, *args, SAKSI_DATA_DIR=str(tmp_path / "empty"))
    no_traceback(out)
    assert out.returncode == 3
    tried = tmp_path / "empty" / "sirekap2024" / "sirekap_wilayah_ppwp.csv"
    assert f"the region table {tried}: not found" in out.stderr
    assert "from SAKSI_DATA_DIR" in out.stderr
    assert "pass --wilayah FILE" in out.stderr


# 5. The demo: only into a fresh log, and it says so.


def test_demo_refuses_a_log_that_holds_data(dki):
    size = tree_size(dki.url)
    assert size > 1
    out = saksi("demo", "--url", dki.url, "--dir", str(dki.dir), "--count", "20")
    no_traceback(out)
    assert out.returncode == 1
    assert "fresh log" in out.stderr
    assert "saksi init" in out.stderr
    assert f"holds {size - 1:,} entries beyond its genesis record" in out.stderr
    assert tree_size(dki.url) == size  # nothing written


def test_demo_help_says_what_it_writes():
    out = saksi("demo", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "A demonstration" in text
    assert "fresh log" in text
    assert "1,019 grants" in text
    assert "any other log is refused before anything is written" in text


# 6. Recaps that need signing and have no key: a failure, naming the files.


def test_recap_without_keys_fails_naming_the_missing_key_files(dki, tmp_path):
    keys = tmp_path / "recap-keys"
    keys.mkdir()
    size = tree_size(dki.url)
    out = saksi(
        "results", "recap", *dki.remote, "--keys", str(keys), "--region", "3101",
        "--json",
    )  # fmt: skip
    no_traceback(out)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert sum(result["signed"].values()) == 0
    villages = result["missing_keys"]["village"]
    assert villages
    assert all(
        Path(f).parent == keys and Path(f).name.startswith("3101") for f in villages
    )
    assert "village" in out.stderr
    assert villages[0] in out.stderr
    assert tree_size(dki.url) == size

    out = saksi(
        "results", "recap", *dki.remote, "--keys", str(tmp_path / "no-such-dir")
    )
    no_traceback(out)
    assert out.returncode == 3  # a named path that is not there: I/O
    assert "not found" in out.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    out = saksi("results", "recap", *dki.remote, "--keys", str(a_file))
    no_traceback(out)
    assert out.returncode == 2
    assert "not a directory" in out.stderr


# 2. KawalPemilu: incomplete crowd readings are their own count and list.


@pytest.fixture(scope="module")
def log_2019(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("k19")
    directory, db = tmp / "log", f"sqlite:///{tmp / 'log.db'}"
    init_log(directory, db, "errors.saksi.example/pemilu2019", PASS)
    serve_env = cli_env(PASS, SAKSI_KEY_RATE="100000", SAKSI_KEY_BURST="100000")
    with serving(directory, db, serve_env) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        admin = str(directory / "admin.key")
        out = saksi(
            "regions", "load", *remote, "--key", admin,
            "--format", "kawalpemilu2019", "--path", str(EXTRACT),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        lists = granted_key(tmp / "lists.key", remote, admin, "candidates", "all", PASS)
        candidates = ROOT / "domains/data/candidates_ppwp_2019.json"
        out = saksi("submit", *remote, "--key", str(lists), str(candidates))
        assert out.returncode == 0, out.stderr
        keys = {
            province: str(
                granted_key(
                    tmp / f"{province}.key", remote, admin, "tps", province, PASS
                )
            )
            for province in ("34", "75")
        }
        yield SimpleNamespace(url=url, remote=remote, keys=keys)


def import_2019(log, path: Path, prefix: str, *extra: str):
    return saksi(
        "results", "import", *log.remote, "--key", log.keys[prefix[:2]],
        "--format", "kawalpemilu2019", "--prefix", prefix, *extra, str(path),
    )  # fmt: skip


def raw_nodes() -> list[dict]:
    with gzip.open(EXTRACT, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_incomplete_crowd_readings_are_reported_not_pending(log_2019):
    # Kota Yogyakarta, straight from the raw extract.
    villages = [
        n
        for n in raw_nodes()
        if n["depth"] == 4 and n["parentNames"][2] == "KOTA YOGYAKARTA"
    ]
    stations = incomplete = with_votes = 0
    for node in villages:
        for child in node["children"]:
            stations += 1
            total = node["data"][str(child[0])]["sum"]
            if not all(isinstance(total.get(f), int) for f in FIELDS):
                incomplete += 1
                with_votes += bool(total.get("pas1", 0) + total.get("pas2", 0))
    assert incomplete == 11
    assert with_votes > 0

    out = import_2019(log_2019, EXTRACT, "3471", "--source", "kawalpemilu", "--json")
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["stations"] == stations
    assert result["skipped"]["incomplete"] == incomplete
    assert result["skipped"]["pending"] == 0
    assert result["imported"] == stations - incomplete
    listed = result["incomplete"]
    assert len(listed) == incomplete
    assert (
        sum(1 for i in listed if i["found"].get("pas1", 0) + i["found"].get("pas2", 0))
        == with_votes
    )
    for item in listed:
        assert item["station"].startswith("3471")
        assert sorted(item["missing"] + list(item["found"])) == sorted(FIELDS)
        assert not head_exists(log_2019.url, item["station"])

    again = import_2019(log_2019, EXTRACT, "3471", "--source", "kawalpemilu")
    assert again.returncode == 0, again.stderr
    assert f"0 pending, {incomplete} incomplete and 0 with no data" in again.stdout
    first = listed[0]
    assert f"incomplete {first['station']}: no {', '.join(first['missing'])}" in (
        again.stdout
    )


def test_the_extract_is_read_by_its_bytes_and_bad_lines_can_be_skipped(
    log_2019, tmp_path
):
    disguised = tmp_path / "extract.jsonl"  # gzip inside
    disguised.write_bytes(EXTRACT.read_bytes())
    out = import_2019(log_2019, disguised, "750205", "--json")
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["imported"] == result["stations"] > 0

    with gzip.open(EXTRACT, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        "".join([*lines[:5], '{"id": "x"}\n', *lines[5:]]), encoding="utf-8"
    )
    out = import_2019(log_2019, broken, "750205")
    no_traceback(out)
    assert out.returncode == 2
    assert (
        f"the 2019 extract {broken}, line 6: not a KawalPemilu node: id" in out.stderr
    )
    out = import_2019(log_2019, broken, "750205", "--skip-bad", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["skipped"]["bad_lines"] == 1
    assert result["bad_lines"][0]["line"] == 6
    assert result["skipped"]["already_logged"] == result["stations"]
    assert os.fspath(broken) == result["bad_lines"][0]["file"]
