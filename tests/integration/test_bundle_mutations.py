"""Mutated and hostile selective proof bundles are refused (``check_bundle``).

Two clean bundles of the golden log (a region with its registry context; one
station's forms against an earlier checkpoint, pinned to a still earlier one)
pass. Then ``SAKSI_BUNDLE_MUTATIONS`` mutations of them (default 320; 10,000
in the fitness run, RELIABILITY.md T15), round-robin over the kinds of
``tests.bundle_mutations``, from a fixed seed: every one must be refused
(``MalformedInput``, ``BundleRefused``, another ``VerificationError``, or a
report with ``passed`` false), and nothing
but a ``VerificationError`` may escape. Kinds that would otherwise stop at the
trailer recompute it, so the proofs, the signatures, authorization and the
selection check are each shown to catch what is theirs. ``COUNTS`` keeps the
counts by kind for a benchmark. Last, hostile files (a decompression bomb, a
line over the limit, an index beyond the tree, data after the trailer, no gzip,
nothing) raise ``MalformedInput`` without inflating them.

Not mutations (verifier/proof_bundle.py says a bundle cannot show them): a
selected entry dropped with the trailer recomputed, a selection widened.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import time
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from tests.bundle_mutations import (
    KINDS,
    CleanBundle,
    Parts,
    campaign,
    case,
    check,
    clean_bundles,
    compress,
    dependencies,
    encode_line,
    mutate,
)
from tests.conftest import ORIGIN
from tests.evidence import scale
from tests.golden.build import SIGNER
from verifier.bundle_check import check_bundle
from verifier.errors import MalformedInput, VerificationError
from verifier.proof_bundle import MAX_LINE

MUTATIONS = int(os.environ.get("SAKSI_BUNDLE_MUTATIONS", scale(320, 10_000)))
# Per kind: mutations, rejected, and by what (for a benchmark to report).
COUNTS: dict[str, dict[str, int]] = {}
# Per hostile file: seconds to refuse it, and the peak traced memory (bytes).
HOSTILE: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def cleans(tmp_path_factory: pytest.TempPathFactory) -> list[CleanBundle]:
    return clean_bundles(tmp_path_factory.mktemp("golden-bundles"))


def _named(cleans: list[CleanBundle], name: str) -> CleanBundle:
    return next(c for c in cleans if c.name == name)


def test_clean_bundles_pass(cleans):
    """The bundles the mutations start from are accepted as exported."""
    region, pinned = _named(cleans, "region"), _named(cleans, "pinned")
    for clean in cleans:
        report = check(clean.raw, clean)
        assert report["passed"] is True, clean.name
        assert report["selected"] > 0, clean.name
        assert report["context"] > 0, clean.name
        assert report["outside_selection_count"] == 0
    assert check(region.raw, region)["tree_size"] == 22
    report = check(pinned.raw, pinned)
    assert (report["tree_size"], report["pinned"]) == (21, [9])


def test_every_mutation_is_refused(cleans, evidence):
    """Every mutation of every kind is refused, and only as a VerificationError."""
    result = campaign(cleans, MUTATIONS)
    COUNTS.clear()
    COUNTS.update(result.table())
    print(f"\n{result.mutations:,} bundle mutations:")
    for kind, counts in COUNTS.items():
        print(f"  {kind:32} {json.dumps(counts)}")
    assert not result.unexpected, (
        f"{len(result.unexpected)} mutations raised something other than a "
        "VerificationError (kind, bundle, seed); the first:\n"
        + "\n".join(f"{k} {b} {s}" for k, b, s, _ in result.unexpected[:5])
        + "\n"
        + result.unexpected[0][3]
    )
    assert not result.survivors, (
        f"{len(result.survivors)} mutations passed the check (kind, bundle, seed; "
        "remake one with mutate(clean, kind, random.Random(seed))):\n"
        + "\n".join(f"{k} {b} {s}: {r}" for k, b, s, r in result.survivors[:5])
    )
    if len(KINDS) <= MUTATIONS:
        assert all(COUNTS[kind]["mutations"] > 0 for kind in KINDS)
    assert all(c["rejected"] == c["mutations"] for c in COUNTS.values())
    # The clean bundles the mutants come from still pass (no false alarm).
    clean_refused = sum(check(c.raw, c)["passed"] is not True for c in cleans)
    assert clean_refused == 0
    evidence.record(
        "T15",
        attempts=result.mutations,
        detected=sum(c["rejected"] for c in COUNTS.values()),
        false_alarms=clean_refused,
        kinds=len(COUNTS),
        clean_bundles=len(cleans),
        escaped_as_other_errors=len(result.unexpected),
    )


def test_a_mutation_is_made_again_from_its_seed(cleans):
    """A survivor's kind and seed are enough to make it again and look at it."""
    for number in range(len(KINDS) * 2):
        kind, clean, seed = case(cleans, number)
        first = mutate(clean, kind, random.Random(seed))
        assert mutate(clean, kind, random.Random(seed)) == first, kind


def test_a_dropped_registry_record_is_caught_by_the_audit(cleans):
    """A grant, genesis or region a selected entry rests on, dropped with the
    trailer recomputed: form and proofs are fine, the audit's checks fail."""
    for clean in cleans:
        assert dependencies(clean), clean.name
        for index in dependencies(clean):
            parts = Parts.of(clean)
            parts.entries = [e for e in parts.entries if e["index"] != index]
            report = check(parts.encode(fix_trailer=True), clean)
            failed = {c["check"] for c in report["checks"] if c["status"] == "fail"}
            assert report["passed"] is False, (clean.name, index)
            assert failed, (clean.name, index)
            assert failed <= {"signatures", "authorization"}, failed


# -- hostile files ------------------------------------------------------------


def _stream(first: bytes, chunk: bytes, times: int) -> bytes:
    """gzip of ``first`` then ``chunk`` ``times`` times, made a chunk at a time."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = io.BytesIO()
    out.write(deflate.compress(first))
    for _ in range(times):
        out.write(deflate.compress(chunk))
    out.write(deflate.flush())
    return out.getvalue()


def _zeros_bomb(clean: CleanBundle) -> bytes:
    # 200 MiB of zeros after a good header: about 200 KB of gzip
    return _stream(clean.lines[0] + b"\n", bytes(1 << 20), 200)


def _padded_lines_bomb(clean: CleanBundle) -> bytes:
    # every entry line valid JSON, blown up with spaces to just under the limit
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [deflate.compress(clean.lines[0] + b"\n")]
    for line in clean.lines[1:]:
        padding = b" " * (MAX_LINE - len(line) - 2)
        out.append(deflate.compress(line[:-1] + padding + b"}\n"))
    out.append(deflate.flush())
    return b"".join(out)


def _long_line(clean: CleanBundle) -> bytes:
    line = encode_line({"index": 0, "entry": "A" * MAX_LINE})
    return compress([clean.lines[0], line, *clean.lines[1:]])


def _long_header(clean: CleanBundle) -> bytes:
    header = json.loads(clean.lines[0]) | {"created": "x" * MAX_LINE}
    return compress([encode_line(header), *clean.lines[1:]])


def _index_far_beyond(clean: CleanBundle) -> bytes:
    parts = Parts.of(clean)
    parts.entries[-1]["index"] = 10**12
    return parts.encode(fix_trailer=True)


def _line_after_trailer(clean: CleanBundle) -> bytes:
    return compress([*clean.lines, clean.lines[-1]])


def _bytes_after_gzip(clean: CleanBundle) -> bytes:
    return clean.raw + b"garbage after the gzip stream"


def _member_after_gzip(clean: CleanBundle) -> bytes:
    return clean.raw + gzip.compress(b'{"more":1}\n', mtime=0)


def _not_gzip(clean: CleanBundle) -> bytes:
    return clean.content


def _zip_file(clean: CleanBundle) -> bytes:
    return b"PK\x03\x04" + clean.raw


def _empty(clean: CleanBundle) -> bytes:
    return b""


HOSTILE_FILES: dict[str, Callable[[CleanBundle], bytes]] = {
    "gzip-bomb-200MiB-zeros": _zeros_bomb,
    "gzip-bomb-padded-lines": _padded_lines_bomb,
    "line-over-limit": _long_line,
    "header-over-limit": _long_header,
    "index-10**12": _index_far_beyond,
    "line-after-trailer": _line_after_trailer,
    "bytes-after-gzip": _bytes_after_gzip,
    "gzip-member-after-trailer": _member_after_gzip,
    "not-gzip": _not_gzip,
    "zip-file": _zip_file,
    "empty": _empty,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_file_is_malformed_input(cleans, name):
    """Each hostile file raises MalformedInput, having inflated at most a line
    or two (the time is kept in HOSTILE, not asserted; memory stays small)."""
    clean = _named(cleans, "region")
    raw = HOSTILE_FILES[name](clean)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(MalformedInput):
            check(raw, clean)
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    HOSTILE[name] = {"seconds": seconds, "peak_bytes": peak, "file_bytes": len(raw)}
    # a few lines of MAX_LINE at most, never the 200 MiB the bomb holds
    assert peak < 16 * MAX_LINE, f"{name}: {peak:,} bytes traced"


def test_a_decompression_bomb_is_named_so(cleans):
    """Lines under the limit that inflate past any bundle's ratio are a bomb."""
    clean = _named(cleans, "region")
    with pytest.raises(MalformedInput, match="decompression bomb"):
        check(_padded_lines_bomb(clean), clean)


# -- found by this file, fixed: faults of form that once got through ----------------


@pytest.mark.parametrize("member", ["checkpoint", "pinned checkpoint"])
def test_unencodable_header_note_is_malformed_input(cleans, member):
    """A note that is no UTF-8 text is malformed input, like any fault of form."""
    clean = _named(cleans, "pinned")
    parts = Parts.of(clean)
    if member == "checkpoint":
        parts.header["checkpoint"] = "\ud800"
    else:
        parts.header["pinned"][0]["checkpoint"] = "\ud800"
    with pytest.raises(MalformedInput):
        check(parts.encode(fix_trailer=False), clean)


def _zero_padding(clean: CleanBundle) -> bytes:
    return clean.raw + bytes(64)


def _empty_member(clean: CleanBundle) -> bytes:
    return clean.raw + gzip.compress(b"", mtime=0)


def _reserved_flag(clean: CleanBundle) -> bytes:
    raw = bytearray(clean.raw)
    raw[3] |= 0x80  # FLG bit 7: reserved, "must give an error" (RFC 1952 2.3.1.2)
    return bytes(raw)


def _float_count(clean: CleanBundle) -> bytes:
    parts = Parts.of(clean)
    parts.trailer["end"]["entries"] = float(parts.trailer["end"]["entries"])
    return parts.encode(fix_trailer=False)


@pytest.mark.parametrize(
    "spell",
    [_zero_padding, _empty_member, _reserved_flag, _float_count],
    ids=["zero-padding", "empty-gzip-member", "reserved-gzip-flag", "float-count"],
)
def test_bundle_spelled_another_way_is_malformed_input(cleans, spell):
    """Only the writer's own spelling of a bundle is accepted."""
    clean = _named(cleans, "region")
    with pytest.raises(MalformedInput):
        check(spell(clean), clean)


@pytest.mark.parametrize(
    "kind", ["drop-entry-fixed-trailer", "selected-flag", "entry-byte", "proof-hash"]
)
def test_worker_processes_refuse_what_one_process_refuses(cleans, kind):
    """check-bundle's workers (its default on more than one core) decide the
    same: the clean bundle passes, each mutation is refused, in the same way."""
    clean = _named(cleans, "region")

    def verdict(raw: bytes, workers: int) -> str:
        try:
            report = check_bundle(
                io.BytesIO(raw),
                SIGNER.verifier_key,
                ORIGIN,
                pins=clean.pins,
                workers=workers,
            )
        except VerificationError as e:
            return type(e).__name__
        return "passed" if report["passed"] else "failed"

    assert verdict(clean.raw, 2) == "passed"
    for seed in range(3):
        raw = mutate(clean, kind, random.Random(seed))
        one = verdict(raw, 0)
        assert one != "passed"
        assert verdict(raw, 2) == one
