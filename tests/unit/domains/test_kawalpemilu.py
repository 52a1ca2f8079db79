"""The 2019 extract: region matching by name, registry and tally bodies."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from domains.kawalpemilu import (
    district_bodies,
    match_regions,
    read_nodes,
    tally_bodies,
)
from tests.helpers import SHARED
from verifier.election import REGIONS, TALLY
from verifier.rules import tally_flags
from verifier.schema import check

EXTRACT = SHARED / "data/kawalpemilu2019/kawalpemilu2019_gorontalo_diy.jsonl.gz"
WILAYAH = SHARED / "data/sirekap2024/sirekap_wilayah_ppwp.csv"


@pytest.fixture(scope="module")
def nodes():
    return read_nodes(EXTRACT)


@pytest.fixture(scope="module")
def matching(nodes):
    return match_regions(nodes, WILAYAH)


def test_every_region_of_the_extract_is_matched_under_its_parent(nodes, matching):
    assert matching.unmatched == []
    assert len(matching.codes) == len(nodes) - 1  # all but the nation
    assert len(set(matching.codes.values())) == len(matching.codes)
    for node_id, code in matching.codes.items():
        node = nodes[node_id]
        assert len(code) == {1: 2, 2: 4, 3: 6, 4: 10}[node["depth"]]
        parent = node["parentIds"][-1]
        if parent:
            assert code.startswith(matching.codes[parent])
    # Spelling variants between 2019 and the commission's 2024 table are
    # accepted and reported, e.g. the regency PAHUWATO, now POHUWATO.
    provinces = {nodes[n]["name"]: c for n, c in matching.codes.items() if len(c) == 2}
    assert provinces == {"GORONTALO": "75", "DAERAH ISTIMEWA YOGYAKARTA": "34"}
    assert any(
        old == "PAHUWATO" and new == "POHUWATO" for _, old, new in matching.variants
    )
    # Written-out numerals read as the commission's Roman ones: BONGO DUA is BONGO II.
    bongo = next(n for n in nodes.values() if n["name"] == "BONGO DUA")
    assert matching.names[matching.codes[bongo["id"]]] == "BONGO II"


def test_names_that_cannot_be_told_apart_are_left_unmatched(tmp_path):
    table = tmp_path / "wilayah.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kode", "tingkat", "parent", "sirekap_id", "nama", "n_tps"])
        writer.writerow(["75", "1", "", "1", "GORONTALO", ""])
        writer.writerow(["7501", "2", "75", "2", "KOTA SATU", ""])
        writer.writerow(["7502", "2", "75", "3", "KOTA SATU", ""])  # duplicate name
        writer.writerow(["7503", "2", "75", "4", "MARISA", ""])
        writer.writerow(["7504", "2", "75", "5", "MARISO", ""])  # close to MARISA
    nodes = {
        1: {"id": 1, "depth": 1, "name": "GORONTALO", "parentIds": [0]},
        2: {"id": 2, "depth": 2, "name": "KOTA I", "parentIds": [0, 1]},
        3: {"id": 3, "depth": 2, "name": "MARISU", "parentIds": [0, 1]},
        4: {"id": 4, "depth": 2, "name": "MARISA", "parentIds": [0, 1]},
        5: {"id": 5, "depth": 3, "name": "X", "parentIds": [0, 1, 2]},
    }
    matching = match_regions(nodes, table)
    assert matching.codes == {1: "75", 4: "7503"}
    assert sorted(n for n, _ in matching.unmatched) == [2, 3, 5]


def test_the_registry_lists_the_2019_stations_of_every_village(nodes, matching):
    bodies = dict(district_bodies(nodes, matching))
    assert len(bodies) == sum(1 for n in nodes.values() if n["depth"] == 3)
    stations = 0
    for district, body in bodies.items():
        check(REGIONS, body, f"regions/{district}")
        assert body["regency"]["code"] == district[:4]
        for code, village in body["villages"].items():
            assert code.startswith(district)
            stations += len(village["tps"])
    assert stations == sum(
        len(n["children"]) for n in nodes.values() if n["depth"] == 4
    )


def test_situng_readings_are_the_published_numbers(nodes, matching):
    tallies = list(tally_bodies(nodes, matching, "kpu"))
    assert Counter(why for _, _, why in tallies) == {"complete": 15_145}
    by_code = {code: body for code, body, _ in tallies}
    assert len(by_code) == 15_145
    for code, body in list(by_code.items())[::97]:
        check(TALLY, body, f"results/ppwp/{code}")
        assert body["stage"] == "machine_reading"
        assert body["source"]["system"] == "situng2019"
        node = nodes[int(body["source"]["url"].rsplit("/", 1)[1])]
        assert matching.codes[node["id"]] == code[:10]
        kpu = node["kpu"][int(code[10:])]
        assert body["votes"] == {"1": kpu["pas1"], "2": kpu["pas2"]}
        assert body["total"] == kpu["jum"]


def test_the_crowd_reading_reproduces_the_data_readme(nodes, matching):
    """README: 149 crowd sums have pas1 + pas2 != sah."""
    tallies = list(tally_bodies(nodes, matching, "kawalpemilu"))
    complete = [body for _, body, why in tallies if why == "complete"]
    pending = [code for code, _, why in tallies if why == "pending"]
    assert len(complete) + len(pending) == 15_145
    assert pending
    flags = Counter(f.check for body in complete for f in tally_flags(body, "ppwp"))
    assert flags["votes-sum"] == 149
    for body in complete[::211]:
        check(TALLY, body, "results/ppwp/7501012001001")
        pages = body.get("form", [])
        assert [p["page"] for p in pages] == sorted({p["page"] for p in pages})
        assert all(p["url"].startswith("https://") for p in pages)
        assert all(p["sha256"] is None for p in pages)  # photos not fetched


def test_an_unknown_source_is_refused(nodes, matching):
    with pytest.raises(ValueError, match="unknown source"):
        next(tally_bodies(nodes, matching, "rumour"))
