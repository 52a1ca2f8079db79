"""parse(format(x)) == x for every wire format, and strict parsers never crash."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys import Ed25519Signer
from verifier.checkpoint import Checkpoint, parse_checkpoint
from verifier.errors import MalformedInput
from verifier.note import Note, NoteSignature, VerifierKey, format_note, parse_note
from verifier.tile_format import (
    entries_path,
    format_entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    tile_path,
)

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Zs", "Zl", "Zp", "Cs")),
    min_size=1,
    max_size=40,
).filter(lambda s: "+" not in s and not any(c.isspace() for c in s))
lines = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
    min_size=1,
    max_size=60,
)


@given(
    names,
    st.integers(0, 2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(lines, max_size=3),
)
def test_checkpoint_roundtrip(origin, size, root, extensions):
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(cp.to_text()) == cp


@given(
    st.lists(lines, min_size=1, max_size=4),
    st.lists(
        st.tuples(
            names, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda t: (t[0], t[1]),
    ),
)
def test_note_roundtrip(text_lines, sigs):
    note = Note(
        "\n".join(text_lines) + "\n", tuple(NoteSignature(n, k, s) for n, k, s in sigs)
    )
    assert parse_note(format_note(note)) == note


@given(names, st.binary(min_size=32, max_size=32))
def test_vkey_roundtrip(name, seed):
    vkey = Ed25519Signer(name, seed).verifier_key
    assert VerifierKey.parse(str(vkey)) == vkey


@given(st.integers(0, 63), st.integers(0, 10**15), st.integers(1, 256))
def test_tile_path_roundtrip(level, index, width):
    assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    assert parse_tile_path(entries_path(index, width)) == (None, index, width)


@given(st.lists(st.binary(max_size=300), max_size=256))
def test_entry_bundle_roundtrip(entries):
    bundle = format_entry_bundle(entries)
    assert parse_entry_bundle(bundle, len(entries)) == entries


@given(st.binary(max_size=400))
def test_parsers_only_raise_malformed_input(data):
    for parse in (parse_note, lambda d: parse_entry_bundle(d)):
        with contextlib.suppress(MalformedInput):
            parse(data)
    text = data.decode("utf-8", "replace")
    for parse_text in (parse_checkpoint, VerifierKey.parse, parse_tile_path):
        with contextlib.suppress(MalformedInput):
            parse_text(text)


def test_truncated_bundle_rejected():
    bundle = format_entry_bundle([b"abc", b"defg"])
    for cut in range(1, len(bundle)):
        if cut in (5,):  # exactly one whole entry: fine without a width
            continue
        with pytest.raises(MalformedInput):
            parse_entry_bundle(bundle[:cut], 2)


def _strict_entry(data: bytes):
    """The log entry as the strict parser alone reads it (or its error type)."""
    from verifier.dsse import parse_envelope
    from verifier.jcs import parse_canonical
    from verifier.record import LogEntry, parse_timestamp

    try:
        raw = parse_canonical(data, 65535, "log entry")
        if not isinstance(raw, dict) or set(raw) != {"envelope", "logged_at"}:
            raise MalformedInput("shape")
        parse_timestamp(raw["logged_at"], "logged_at")
        return LogEntry(parse_envelope(raw["envelope"]), raw["logged_at"])
    except MalformedInput:
        return MalformedInput


@given(
    st.binary(min_size=1, max_size=300),
    st.text(max_size=30).filter(lambda t: t.strip() == t),
    st.integers(1, 3),
    st.data(),
)
def test_log_entry_quick_path_agrees_with_the_strict_parser(payload, kind, n, data):
    """Entries as the log writes them, and each with one byte changed, removed
    or doubled: ``parse_log_entry`` decides exactly as the strict parser."""
    from verifier.dsse import Envelope, EnvelopeSignature
    from verifier.record import format_log_entry, parse_log_entry

    sigs = tuple(
        EnvelopeSignature(f"{i:064x}", bytes([i]) * 64) for i in range(1, n + 1)
    )
    try:
        entry = format_log_entry(
            Envelope(kind or "t", payload, sigs), "2024-02-14T13:06:00.123Z"
        )
    except MalformedInput:
        return
    at = data.draw(st.integers(0, len(entry) - 1), label="at")
    change = data.draw(
        st.sampled_from(
            ["same", "flip", "drop", "double", "space", "reorder", "escape"]
        )
    )
    head, tail = entry.split(b',"logged_at":')
    mutated = {
        "same": entry,
        # Equivalent JSON that is not canonical: both must refuse it.
        "space": entry.replace(b":", b": ", 1),
        "reorder": b'{"logged_at":' + tail[:-1] + b"," + head[1:] + b"}",
        "escape": entry.replace(b'"payload"', b'"p\\u0061yload"', 1),
        "flip": entry[:at]
        + bytes([entry[at] ^ 1 << data.draw(st.integers(0, 7))])
        + entry[at + 1 :],
        "drop": entry[:at] + entry[at + 1 :],
        "double": entry[: at + 1] + entry[at:],
    }[change]
    try:
        quick = parse_log_entry(mutated)
    except MalformedInput:
        quick = MalformedInput
    assert quick == _strict_entry(mutated)
