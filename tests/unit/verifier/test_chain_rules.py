"""The chain rules the writer's gate and the audit share (``verifier.rules.chain``)."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from verifier.rules.chain import ChainBreak, chain_break, unlogged_child

H0 = hashlib.sha256(b"r0").hexdigest()
H1 = hashlib.sha256(b"r1").hexdigest()


def test_a_new_subject_starts_at_revision_zero_with_no_prev():
    assert chain_break(0, None, None) is None
    assert chain_break(1, H0, None) == ChainBreak("skipped", 0, None, None)


def test_the_next_revision_names_the_head():
    assert chain_break(1, H0, (0, H0)) is None
    assert chain_break(1, H1, (0, H0)) == ChainBreak("prev", 1, 0, H0)
    assert chain_break(1, None, (0, H0)) == ChainBreak("prev", 1, 0, H0)


def test_a_taken_or_skipped_revision_says_where_the_head_is():
    assert chain_break(0, None, (0, H0)) == ChainBreak("stale", 1, 0, H0)
    assert chain_break(3, H0, (0, H0)) == ChainBreak("skipped", 1, 0, H0)


@given(
    st.integers(0, 50),
    st.one_of(st.none(), st.tuples(st.integers(0, 50), st.sampled_from([H0, H1]))),
    st.sampled_from([None, H0, H1]),
)
def test_a_record_continues_exactly_when_it_is_the_next_naming_the_head(
    revision, head, prev
):
    broken = chain_break(revision, prev, head)
    continues = (head is None and revision == 0) or (
        head is not None and revision == head[0] + 1 and prev == head[1]
    )
    assert (broken is None) == continues


def test_a_child_must_be_logged_under_the_subject_its_code_implies():
    d1, d2 = b"\x01" * 32, b"\x02" * 32
    logged = {d1: "results/ppwp/3171011001001", d2: "results/ppwp/3171011001002"}
    named = [("results/ppwp/3171011001001", d1), ("results/ppwp/3171011001002", d2)]
    assert unlogged_child(named, logged.get) is None
    swapped = [("results/ppwp/3171011001001", d2)]
    assert unlogged_child(swapped, logged.get) == swapped[0]
    missing = [("results/ppwp/3171011001003", b"\x03" * 32)]
    assert unlogged_child(named + missing, logged.get) == missing[0]
