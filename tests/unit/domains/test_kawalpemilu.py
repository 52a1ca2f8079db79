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
from verifier.body_schema import check
from verifier.election import REGIONS, TALLY
from verifier.rules import tally_flags

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
    assert Counter(t.why for t in tallies) == {"complete": 15_145}
    by_code = {t.station: t.body for t in tallies}
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
    complete = [t.body for t in tallies if t.why == "complete"]
    assert Counter(t.why for t in tallies) == {"complete": 15_042, "incomplete": 103}
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


def test_incomplete_crowd_readings_are_not_pending(nodes):
    """103 crowd sums are not marked pending but lack one of the five numbers.

    66 of them carry the pairs' votes (the crowd read page 2 of the form but
    not ``jum``); they are reported as incomplete, with what they have, never
    as pending. Counted here straight from the raw nodes.
    """
    fields = ("pas1", "pas2", "sah", "tSah", "jum")
    raw = {}
    for node in nodes.values():
        if node["depth"] != 4:
            continue
        for child in node["children"]:
            total = node["data"][str(child[0])]["sum"]
            assert not total.get("pending")  # nothing in the extract is pending
            if not all(isinstance(total.get(f), int) for f in fields):
                raw[child[0], node["id"]] = total
    assert len(raw) == 103
    with_votes = [t for t in raw.values() if t.get("pas1", 0) + t.get("pas2", 0)]
    assert len(with_votes) == 66

    matching = match_regions(nodes, WILAYAH)
    incomplete = [
        t for t in tally_bodies(nodes, matching, "kawalpemilu") if t.why != "complete"
    ]
    assert len(incomplete) == 103
    assert {t.why for t in incomplete} == {"incomplete"}
    assert all(t.body is None for t in incomplete)
    carrying = [t for t in incomplete if "pas1" in t.detail["found"]]
    assert len(carrying) == 66 + 1  # and one whose pairs both read 0
    for t in incomplete:
        assert sorted(t.detail["missing"] + list(t.detail["found"])) == sorted(fields)
    one = next(t for t in incomplete if t.station == "3401012013001")
    assert one.detail == {
        "missing": ["jum"],
        "found": {"pas1": 176, "pas2": 58, "sah": 234, "tSah": 11},
    }


def test_a_reading_without_jum_from_the_commission_is_incomplete(matching, nodes):
    village = next(n for n in nodes.values() if n["depth"] == 4)
    number = village["children"][0][0]
    kpu = list(village["kpu"])
    kpu[number] = {k: v for k, v in kpu[number].items() if k != "jum"}
    nodes = {**nodes, village["id"]: {**village, "kpu": kpu}}
    code = matching.codes[village["id"]] + f"{number:03d}"
    (reading,) = [t for t in tally_bodies(nodes, matching, "kpu") if t.station == code]
    assert reading.why == "incomplete"
    assert reading.detail["missing"] == ["jum"]


def test_a_page_number_of_other_digits_is_skipped_not_a_crash():
    # Found writing the kawalpemilu fuzz target: "²".isdigit() is true, and
    # int("²") raised ValueError (as did a page number too long for int()).
    from domains.kawalpemilu import _pages

    url = "https://lh3.example/photo"
    photos = {
        url + str(n): {"c1": {"type": 1, "halaman": page}}
        for n, page in enumerate(["²", "1" * 5000, "٣", "2"])
    }
    assert _pages(photos) == [{"page": 2, "sha256": None, "url": url + "3"}]
