"""The 2019 KawalPemilu extract through the API, as an operator runs it.

A fresh log on 127.0.0.1; the 2019 stations as the region registry, named by the
commission's codes; the 2019 presidential pairs; then ``saksi results import
--format kawalpemilu2019`` of Kulon Progo (DIY) with a ``tps`` key scoped to DIY.
Every imported record is read back through the API and compared with the raw
node it came from (named in the record's ``source.url``): the numbers are the
commission's Situng numbers as published, and the flags are exactly what an
independent recomputation from the raw numbers finds.
"""

from __future__ import annotations

import base64
import gzip
import json

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
from verifier.rules import tally_flags

EXTRACT = SHARED / "data/kawalpemilu2019/kawalpemilu2019_gorontalo_diy.jsonl.gz"
PASS = "kawalpemilu-import-passphrase"
KULON_PROGO = 41864  # KawalPemilu's id of the regency


def saksi(*args: str):
    return run_saksi(*args, passphrase=PASS)


def raw_nodes() -> dict[int, dict]:
    with gzip.open(EXTRACT, "rt", encoding="utf-8") as handle:
        return {node["id"]: node for node in map(json.loads, handle)}


def recompute(kpu: dict) -> set[str]:
    """The flags of one Situng reading, recomputed from the raw numbers."""
    found = set()
    if kpu["pas1"] + kpu["pas2"] != kpu["sah"]:
        found.add("votes-sum")
    if kpu["sah"] + kpu["tSah"] != kpu["jum"]:
        found.add("valid-invalid-total")
    return found


@pytest.fixture
def log_2019(tmp_path, db_url):
    directory = tmp_path / "log"
    init_log(directory, db_url, "kawalpemilu.saksi.example/pemilu2019", PASS)
    return directory


def test_kawalpemilu_2019_import_is_the_published_numbers_with_their_flags(
    log_2019, db_url, tmp_path
):
    directory = log_2019
    admin = str(directory / "admin.key")
    nodes = raw_nodes()
    kulon_progo = {
        n["id"]: n
        for n in nodes.values()
        if n["depth"] == 4 and KULON_PROGO in n["parentIds"]
    }
    stations = sum(len(n["children"]) for n in kulon_progo.values())
    # A bulk import runs at the operator's configured key rate: raised here.
    serve_env = cli_env(PASS, SAKSI_KEY_RATE="100000", SAKSI_KEY_BURST="100000")
    with serving(directory, db_url, serve_env) as url:
        remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
        keys = {
            name: granted_key(
                tmp_path / f"{name}.key", remote, admin, role, scope, PASS
            )
            for name, role, scope in (
                ("lists", "candidates", "all"),
                ("diy", "tps", "34"),
            )
        }

        regions = saksi(
            "regions",
            "load",
            *remote,
            "--key",
            admin,
            "--format",
            "kawalpemilu2019",
            "--path",
            str(EXTRACT),
            "--json",
        )
        assert regions.returncode == 0, regions.stderr
        loaded = json.loads(regions.stdout)
        assert loaded["unmatched"] == []
        villages = [n for n in nodes.values() if n["depth"] == 4]
        assert loaded["stations"] == sum(len(n["children"]) for n in villages)
        lists = saksi(
            "submit",
            *remote,
            "--key",
            str(keys["lists"]),
            str(ROOT / "domains/data/candidates_ppwp_2019.json"),
        )
        assert lists.returncode == 0, lists.stderr

        def import_(prefix: str) -> tuple[int, dict]:
            out = saksi(
                "results",
                "import",
                *remote,
                "--key",
                str(keys["diy"]),
                "--format",
                "kawalpemilu2019",
                "--source",
                "kpu",
                "--prefix",
                prefix,
                str(EXTRACT),
                "--json",
            )
            assert "Traceback" not in out.stderr
            return out.returncode, json.loads(out.stdout)

        # Kota Gorontalo with the DIY key: every record refused, nothing logged.
        code, wrong = import_("7571")
        assert code == 1
        assert wrong["imported"] == 0
        assert wrong["stations"] > 0
        assert {r["cause"] for r in wrong["refused"]} == {"out-of-scope"}

        code, result = import_("3401")
        assert code == 0, result["refused"][:3]
        assert result["stations"] == result["imported"] == stations
        assert result["refused"] == []

        # Read back through the API, each record against its raw node.
        checked = flagged = 0
        named: dict[tuple[str, int], str] = {}
        with httpx.Client(base_url=url) as http:
            for index in range(result["first_index"], result["last_index"] + 1):
                entry = http.get(f"/v1/entries/{index}").json()
                record = json.loads(base64.b64decode(entry["envelope"]["payload"]))
                body = record["body"]
                node_id = int(body["source"]["url"].rsplit("/", 1)[1])
                node = kulon_progo[node_id]
                number = int(record["subject"][-3:])
                kpu = node["kpu"][number]
                assert body["votes"] == {"1": kpu["pas1"], "2": kpu["pas2"]}
                assert (body["valid"], body["invalid"], body["total"]) == (
                    kpu["sah"],
                    kpu["tSah"],
                    kpu["jum"],
                )
                assert body["source"]["system"] == "situng2019"
                flags = {f.check for f in tally_flags(body, "ppwp")}
                assert flags == recompute(kpu), record["subject"]
                listed = result["flags"].get(record["subject"], [])
                assert sorted(flags) == sorted(listed)
                flagged += bool(flags)
                named[node["name"], number] = record["subject"]
                checked += 1
        assert checked == stations
        assert flagged == result["flagged"] > 0
        # The data README's example: BENDUNGAN (Wates) station 2, KPU valid 227
        # but 162 + 66 = 228 for the two pairs.
        bendungan = named[("BENDUNGAN", 2)]
        assert "votes-sum" in result["flags"][bendungan]

        # Running it again logs nothing twice.
        code, again = import_("3401")
        assert code == 0
        assert again["imported"] == 0
        assert again["skipped"]["already_logged"] == stations


def test_a_malformed_extract_is_a_usage_error_and_nothing_is_sent(tmp_path):
    # A village the commission's table knows, with a station number that is not
    # a number: refused before any record is signed or any server is asked.
    nodes = [
        {"id": 1, "depth": 1, "name": "GORONTALO", "parentIds": [0]},
        {"id": 2, "depth": 2, "name": "GORONTALO", "parentIds": [0, 1]},
        {"id": 3, "depth": 3, "name": "LIMBOTO", "parentIds": [0, 1, 2]},
        {
            "id": 4,
            "depth": 4,
            "name": "KAYUBULAN",
            "parentIds": [0, 1, 2, 3],
            "children": [["one", 100, 100]],
            "kpu": [None],
        },
    ]
    extract = tmp_path / "bad.jsonl"
    extract.write_text("".join(json.dumps(n) + "\n" for n in nodes))
    key = tmp_path / "any.key"
    assert (
        saksi("keys", "new", "--out", str(key), "--kdf", "interactive").returncode == 0
    )
    for command in (
        ["regions", "load", "--format", "kawalpemilu2019", "--path", str(extract)],
        ["results", "import", "--format", "kawalpemilu2019", str(extract)],
    ):
        out = saksi(*command, "--url", "http://127.0.0.1:9", "--key", str(key))
        assert out.returncode == 2, out.stderr
        assert "cannot read the 2019 extract" in out.stderr
        assert "Traceback" not in out.stderr
