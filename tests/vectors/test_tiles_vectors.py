"""Interop: C2SP tlog-tiles path encoding, tile decomposition, derived tiles."""

from __future__ import annotations

import pytest

from ledger.integrate import TreeState, integrate
from ledger.tree.tiles import tiles_for_size
from tests.helpers import load_vectors, unhex
from verifier.errors import MalformedInput
from verifier.rfc6962 import hash_leaf
from verifier.tile_format import (
    encode_index,
    entries_path,
    format_entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    tile_path,
)

TILES = load_vectors("tlog_tiles.json")
REF = load_vectors("rfc6962_reference.json")


@pytest.mark.parametrize("vec", TILES["index_encoding"], ids=lambda v: str(v["n"]))
def test_index_encoding(vec):
    assert encode_index(vec["n"]) == vec["encoded"]


@pytest.mark.parametrize("vec", TILES["paths"], ids=lambda v: v["path"])
def test_paths(vec):
    if vec.get("entries"):
        assert entries_path(vec["n"], vec["width"]) == vec["path"]
        assert parse_tile_path(vec["path"]) == (None, vec["n"], vec["width"])
    else:
        assert tile_path(vec["level"], vec["n"], vec["width"]) == vec["path"]
        assert parse_tile_path(vec["path"]) == (vec["level"], vec["n"], vec["width"])


@pytest.mark.parametrize("size", ["70000", "256", "8"])
def test_tree_size_decomposition(size):
    coords = tiles_for_size(int(size))
    for level_vec in TILES["tree_size_decomposition"][size]:
        level = level_vec["level"]
        at_level = [c for c in coords if c.level == level]
        assert sum(c.full for c in at_level) == level_vec["full_tiles"]
        partial = [c for c in at_level if not c.full]
        if level_vec["partial_width"]:
            assert [tile_path(c.level, c.index, c.width) for c in partial] == [
                level_vec["partial_path"]
            ]
        else:
            assert partial == []


def test_derived_reference_tree_tiles():
    vec = TILES["derived_reference_tree_tiles"]
    leaves = unhex(REF["reference_tree"]["leaves_data"])
    bundle = format_entry_bundle(leaves)
    assert bundle.hex() == vec["entries_bundle_hex"]
    assert parse_entry_bundle(bundle, 8) == leaves
    state, full = integrate(TreeState.empty(), [hash_leaf(x) for x in leaves])
    assert full == []
    assert b"".join(state.partials[0]).hex() == vec["level0_tile_hex"]
    assert tile_path(0, 0, 8) == vec["level0_tile_path"]


@pytest.mark.parametrize(
    "path",
    [v["path"] for v in TILES["sumdb_tile_paths"] if v.get("invalid")]
    + [
        "tile/0/x000/001",
        "tile/0/1",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/007",
        "tile/64/000",
        "tile/entries/000/",
        "/tile/0/000",
    ],
)
def test_bad_paths_rejected(path):
    with pytest.raises(MalformedInput):
        parse_tile_path(path)
