"""Mutations of a selective proof bundle, for the mutation test and a benchmark.

``clean_bundles`` writes the golden log (``tests.golden.build``) and exports two
``saksi-proof-bundle/v1`` files from it: a region with its registry context,
and one subject proven against an earlier checkpoint and pinned to a still
earlier one. ``mutate`` makes one bundle of a named kind (``KINDS``) from a
clean one and a ``random.Random``; ``campaign`` runs ``check_bundle`` on N of
them, round-robin over the kinds, and counts how each was caught.

Every mutation says something the clean bundle does not: a change that leaves
the content as it was (gzip's time stamp or OS byte, the padding bits after
the last deflate block, the header's ``created``, which nothing checks) is not
made. Nor are the two changes a bundle cannot show (verifier/proof_bundle.py):
a selected entry dropped with the trailer recomputed, and a selection widened.
Kinds that must get past the trailer to reach a deeper check (proofs,
signatures, authorization, the selection) recompute it as the writer does.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import random
import struct
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.export import export_bundle
from cli.local import open_reader
from keys import Ed25519Signer
from ledger.publisher import CheckpointPublisher
from tests.conftest import ORIGIN
from tests.golden.build import SIGNER, write_log
from verifier.bundle_check import check_bundle
from verifier.checkpoint import verify_checkpoint
from verifier.errors import VerificationError
from verifier.proof_bundle import CONTEXT_SCHEMAS, Selection
from verifier.record import Record, decode_logged_entry
from verifier.registry import GENESIS, GRANT
from verifier.rfc6962 import hash_leaf

KINDS = (
    "bit-flip",
    "truncate",
    "drop-entry",
    "drop-entry-fixed-trailer",
    "duplicate-entry",
    "reorder",
    "swap-proofs",
    "entry-byte",
    "proof-hash",
    "index",
    "checkpoint-substituted",
    "checkpoint-resigned-other-root",
    "selected-flag",
    "header-field",
    "trailer",
    "json-garbage",
)
SEED = 20240214
# gzip header bytes nothing protects (MTIME, XFL, OS): flipping them changes no content
UNPROTECTED = range(4, 10)
STATION_SUBJECT = "results/ppwp/3171011001001"
# The bundles' "created": fixed, so a seed makes the same mutation on every run.
CREATED = dt.datetime(2024, 2, 14, 14, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Info:
    """What an entry of a clean bundle is (decoded once)."""

    index: int
    record: Record
    keyids: tuple[str, ...]
    logged_at: str


@dataclass(frozen=True)
class CleanBundle:
    """A bundle ``check_bundle`` passes, and what mutating it needs to know."""

    name: str
    raw: bytes
    pins: tuple[bytes, ...]
    size: int
    root: bytes
    other_notes: tuple[bytes, ...]  # real checkpoints of the log, smaller sizes
    lines: tuple[bytes, ...] = field(init=False, repr=False)
    infos: dict[int, Info] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lines = tuple(gzip.decompress(self.raw).splitlines())
        object.__setattr__(self, "lines", lines)
        infos = {}
        for line in lines[1:-1]:
            value = json.loads(line)
            entry, record = decode_logged_entry(base64.b64decode(value["entry"]))
            keyids = tuple(s.keyid for s in entry.envelope.signatures)
            infos[value["index"]] = Info(
                value["index"], record, keyids, entry.logged_at
            )
        object.__setattr__(self, "infos", infos)

    @property
    def content(self) -> bytes:
        """The decompressed bundle."""
        return b"\n".join(self.lines) + b"\n"


def clean_bundles(directory: Path) -> list[CleanBundle]:
    """Write the golden log in ``directory``; export and return the clean bundles.

    ``region``: ``Selection(region="3171")`` at the log's head (results,
    recaps and the region's own registry records selected; the genesis, the
    other regions, the key grants and the candidate list as context).
    ``pinned``: one station's forms, proven against the checkpoint of size 21
    and pinned to size 9 (the check pins size 9 too, so the header's pin is
    needed). The same bytes on every run.
    """
    write_log(directory).close()
    (directory / "log.vkey").write_text(str(SIGNER.verifier_key) + "\n")
    log = open_reader(directory, f"sqlite:///{directory / 'golden.db'}")
    try:
        notes = {size: _note(log.storage, size) for size in (3, 9, 15, 21)}
        head = log.reader.current().note
        plans = [
            ("region", Selection(region="3171"), None, ()),
            (
                "pinned",
                Selection(subjects=(STATION_SUBJECT,)),
                notes[21],
                (notes[9],),
            ),
        ]
        out = []
        for name, selection, note, pins in plans:
            path = directory / f"{name}.bundle"
            export_bundle(
                log, selection, path, checkpoint=note, pins=pins, now=lambda: CREATED
            )
            signed, _ = verify_checkpoint(note or head, SIGNER.verifier_key, ORIGIN)
            out.append(
                CleanBundle(
                    name,
                    path.read_bytes(),
                    pins,
                    signed.size,
                    signed.root_hash,
                    tuple(n for s, n in notes.items() if s < signed.size),
                )
            )
    finally:
        log.close()
    return out


def _note(storage: Any, size: int) -> bytes:
    stored = storage.checkpoint(size)
    assert stored is not None, f"the golden log has no checkpoint of size {size}"
    return bytes(stored.note)


def check(raw: bytes, clean: CleanBundle) -> dict[str, Any]:
    """``check_bundle`` as an auditor runs it on ``raw`` (memory store, pins)."""
    return check_bundle(
        io.BytesIO(raw), SIGNER.verifier_key, ORIGIN, pins=clean.pins, store=None
    )


# -- encoding, as BundleWriter does ------------------------------------------


def encode_line(value: object) -> bytes:
    """A line as the writer spells it (no newline)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def compress(lines: Sequence[bytes]) -> bytes:
    """A gzip stream of ``lines``, one per line, time stamp 0."""
    return gzip.compress(b"".join(line + b"\n" for line in lines), 6, mtime=0)


def trailer_of(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The trailer the writer puts after ``entries`` (``_Digest``)."""
    digest = hashlib.sha256()
    selected = 0
    for entry in entries:
        data = base64.b64decode(entry["entry"])
        digest.update(struct.pack(">Q", entry["index"]) + hash_leaf(data))
        selected += bool(entry["selected"])
    return {
        "end": {
            "entries": len(entries),
            "selected": selected,
            "digest": digest.hexdigest(),
        }
    }


@dataclass
class Parts:
    """A clean bundle decoded into its header, entries and trailer."""

    header: dict[str, Any]
    entries: list[dict[str, Any]]
    trailer: dict[str, Any]

    @classmethod
    def of(cls, clean: CleanBundle) -> Parts:
        """A fresh, editable copy of ``clean``'s lines."""
        values = [json.loads(line) for line in clean.lines]
        return cls(values[0], values[1:-1], values[-1])

    def encode(self, *, fix_trailer: bool) -> bytes:
        """The bundle of these parts (with the trailer recomputed if asked)."""
        trailer = trailer_of(self.entries) if fix_trailer else self.trailer
        lines = [self.header, *self.entries, trailer]
        return compress([encode_line(v) for v in lines])


# -- the kinds ----------------------------------------------------------------


def _content(raw: bytes) -> bytes | None:
    """What ``raw`` inflates to, or None if it does not."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error):
        return None


def _bit_flip(clean: CleanBundle, rng: random.Random) -> bytes:
    positions = [p for p in range(len(clean.raw)) if p not in UNPROTECTED]
    for _ in range(1000):
        mutated = bytearray(clean.raw)
        mutated[rng.choice(positions)] ^= 1 << rng.randrange(8)
        # FTEXT, the reserved FLG bits and the last deflate byte's padding are
        # read by no one: a flip there leaves the same content (not a mutation).
        if _content(bytes(mutated)) != clean.content:
            return bytes(mutated)
    raise RuntimeError("no content-changing bit flip found")


def _truncate(clean: CleanBundle, rng: random.Random) -> bytes:
    return clean.raw[: rng.randrange(len(clean.raw))]


def _drop_entry(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    del parts.entries[rng.randrange(len(parts.entries))]
    return parts.encode(fix_trailer=False)


def dependencies(clean: CleanBundle) -> list[int]:
    """Context entries a selected one rests on (dropping one is detectable).

    The genesis (its admins grant every key), the grant of each key that
    signs a selected entry, and the regions registry record of each selected
    subject's district.
    """
    selected = [e for e in _entries(clean) if e["selected"]]
    signers = {k for e in selected for k in clean.infos[e["index"]].keyids}
    subjects = [clean.infos[e["index"]].record.subject for e in selected]
    out = []
    for entry in _entries(clean):
        if entry["selected"]:
            continue
        record = clean.infos[entry["index"]].record
        if (
            record.schema == GENESIS.name
            or (record.schema == GRANT.name and record.body["keyid"] in signers)
            or (
                record.schema == "regions.registry/v1"
                and any(
                    s.rsplit("/", 1)[-1].startswith(record.subject.split("/")[-1])
                    for s in subjects
                )
            )
        ):
            out.append(entry["index"])
    return out


def _entries(clean: CleanBundle) -> list[dict[str, Any]]:
    return [json.loads(line) for line in clean.lines[1:-1]]


def _drop_dependency(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    index = rng.choice(dependencies(clean))
    parts.entries = [e for e in parts.entries if e["index"] != index]
    return parts.encode(fix_trailer=True)


def _duplicate(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    at = rng.randrange(len(parts.entries))
    parts.entries.insert(rng.choice([at, at + 1]), dict(parts.entries[at]))
    # the trailer adds up: only the order check can catch it
    return parts.encode(fix_trailer=True)


def _reorder(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    a, b = rng.sample(range(len(parts.entries)), 2)
    parts.entries[a], parts.entries[b] = parts.entries[b], parts.entries[a]
    return parts.encode(fix_trailer=True)


def _swap_proofs(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    while True:
        a, b = rng.sample(parts.entries, 2)
        if a["proof"] != b["proof"]:
            break
    a["proof"], b["proof"] = b["proof"], a["proof"]
    return parts.encode(fix_trailer=True)


def _entry_byte(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    entry = rng.choice(parts.entries)
    data = bytearray(base64.b64decode(entry["entry"]))
    at = rng.randrange(len(data))
    data[at] = rng.choice([b for b in range(256) if b != data[at]])
    entry["entry"] = base64.b64encode(bytes(data)).decode()
    return parts.encode(fix_trailer=True)


def _proof_hash(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    entry = rng.choice([e for e in parts.entries if e["proof"]])
    entry["proof"] = _flip_one(entry["proof"], rng)
    return parts.encode(fix_trailer=True)


def _index(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    entry = rng.choice(parts.entries)
    taken = {e["index"] for e in parts.entries}
    free = [i for i in range(clean.size) if i not in taken]
    # Half the time an index that keeps the order (only the proof can tell).
    lower = max((i for i in taken if i < entry["index"]), default=-1)
    upper = min((i for i in taken if i > entry["index"]), default=clean.size)
    in_order = [i for i in free if lower < i < upper]
    entry["index"] = rng.choice(in_order if in_order and rng.random() < 0.5 else free)
    return parts.encode(fix_trailer=True)


def _with_checkpoint(clean: CleanBundle, note: bytes) -> bytes:
    parts = Parts.of(clean)
    parts.header["checkpoint"] = note.decode()
    return parts.encode(fix_trailer=True)


def _checkpoint_substituted(clean: CleanBundle, rng: random.Random) -> bytes:
    # Same origin (as key name too), same size and root: only the key differs.
    other = Ed25519Signer(ORIGIN, rng.randbytes(32))
    publisher = CheckpointPublisher(ORIGIN, other, other.verifier_key)
    return _with_checkpoint(clean, publisher.sign(clean.size, clean.root))


def _checkpoint_other_root(clean: CleanBundle, rng: random.Random) -> bytes:
    publisher = CheckpointPublisher(ORIGIN, SIGNER, SIGNER.verifier_key)
    root = rng.randbytes(32)
    return _with_checkpoint(clean, publisher.sign(clean.size, root))


def _matches(clean: CleanBundle, selection: Selection, entry: dict[str, Any]) -> bool:
    info = clean.infos[entry["index"]]
    return selection.matches(info.index, info.record, info.keyids, info.logged_at)


def _selected_flag(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    selection = Selection.from_json(parts.header["selection"])
    # A false claim either way: a context entry the selection does not match
    # marked selected, or a selected one that is no registry record marked
    # context. (A selected registry record marked context makes a true claim.)
    choices = [
        e
        for e in parts.entries
        if (not e["selected"] and not _matches(clean, selection, e))
        or (
            e["selected"]
            and clean.infos[e["index"]].record.schema not in CONTEXT_SCHEMAS
        )
    ]
    entry = rng.choice(choices)
    entry["selected"] = not entry["selected"]
    return parts.encode(fix_trailer=True)


def _narrower_selection(
    clean: CleanBundle, parts: Parts, rng: random.Random
) -> dict[str, Any]:
    """A selection some selected entry does not match (a widened one proves
    nothing false: a bundle never shows it holds everything selected)."""
    selected = [e for e in parts.entries if e["selected"]]
    records = [clean.infos[e["index"]] for e in selected]
    while True:
        choice = rng.randrange(7)
        if choice == 0:
            digits = rng.randint(1, 13)
            candidate = {"region": "".join(rng.choices("0123456789", k=digits))}
        elif choice == 1:
            candidate = {"schemas": [rng.choice(records).record.schema]}
        elif choice == 2:
            candidate = {"subjects": [rng.choice(records).record.subject]}
        elif choice == 3:
            keyids = sorted({k for i in clean.infos.values() for k in i.keyids})
            candidate = {"signer": rng.choice(keyids)}
        elif choice == 4:
            candidate = {"start": rng.randrange(1, clean.size + 2)}
        elif choice == 5:
            candidate = {"end": rng.randrange(0, clean.size)}
        else:
            candidate = rng.choice(
                [
                    {"until": "2024-02-14T13:00:00.000Z"},
                    {"since": "2030-01-01T00:00:00.000Z"},
                ]
            )
        merged = parts.header["selection"] | candidate
        selection = Selection.from_json(merged)
        if not all(_matches(clean, selection, e) for e in selected):
            return merged


def _random_proof(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(32 * rng.randint(0, 6))).decode()


def _header_field(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    header = parts.header
    variants: list[Callable[[], None]] = [
        lambda: header.pop(rng.choice(sorted(header))),
        lambda: header.update(
            format=rng.choice(["saksi-proof-bundle/v2", "", None, 1])
        ),
        lambda: header.update(
            origin=rng.choice([ORIGIN + "x", ORIGIN.upper(), "other.example/log", 1])
        ),
        lambda: header.update(selection=_narrower_selection(clean, parts, rng)),
        lambda: header["selection"].update(unknown=rng.choice(["x", 1, None])),
        lambda: header.update({rng.choice(["extra", "Format", "end"]): "x"}),
        # a member of the wrong type (an empty selection would widen it)
        lambda: header.update(
            {
                rng.choice(["checkpoint", "pinned", "selection", "created"]): (
                    rng.choice([None, 0, [], True])
                )
            }
        ),
        lambda: header.update(checkpoint=_mangle(header["checkpoint"], rng)),
    ]
    if header["pinned"]:
        pinned = header["pinned"][0]
        variants += [
            lambda: header.update(pinned=[]),
            lambda: pinned.update(proof=_flip_one(pinned["proof"], rng)),
            lambda: pinned.update(
                proof=base64.b64encode(base64.b64decode(pinned["proof"])[:-32]).decode()
            ),
            lambda: pinned.update(
                checkpoint=rng.choice(
                    [
                        n.decode()
                        for n in clean.other_notes
                        if n.decode() != pinned["checkpoint"]
                    ]
                )
            ),
        ]
    else:
        variants.append(
            lambda: header.update(
                pinned=[
                    {
                        "checkpoint": rng.choice(clean.other_notes).decode(),
                        "proof": _random_proof(rng),
                    }
                ]
            )
        )
    before = encode_line(header)
    while encode_line(header) == before:
        rng.choice(variants)()
    return parts.encode(fix_trailer=False)


def _flip_one(proof: str, rng: random.Random) -> str:
    """``proof`` (its hashes end to end, base64) with one bit of one hash flipped."""
    data = bytearray(base64.b64decode(proof))
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return base64.b64encode(bytes(data)).decode()


def _mangle(note: str, rng: random.Random) -> str:
    """``note`` with one character replaced, inserted or removed."""
    at = rng.randrange(len(note))
    char = rng.choice("\n aA0+/=—\t\x00é")
    how = rng.randrange(3)
    if how == 0:
        return note[:at] + char + note[at + 1 :]
    if how == 1:
        return note[:at] + char + note[at:]
    return note[:at] + note[at + 1 :]


def _trailer(clean: CleanBundle, rng: random.Random) -> bytes:
    parts = Parts.of(clean)
    end = parts.trailer["end"]
    variants: list[Callable[[], None]] = [
        lambda: end.update(entries=end["entries"] + rng.choice([-2, -1, 1, 2])),
        lambda: end.update(selected=end["selected"] + rng.choice([-1, 1, 5])),
        lambda: end.update(digest=_other_hex(end["digest"], rng)),
        lambda: end.update(digest=end["digest"].upper()),
        lambda: end.pop(rng.choice(sorted(end))),
        lambda: end.update(extra=0),
        lambda: parts.trailer.update(end=rng.choice([None, [], "x", 0])),
        lambda: parts.trailer.update(more=1),
    ]
    before = encode_line(parts.trailer)
    while encode_line(parts.trailer) == before:
        rng.choice(variants)()
    return parts.encode(fix_trailer=False)


def _other_hex(digest: str, rng: random.Random) -> str:
    at = rng.randrange(len(digest))
    char = rng.choice([c for c in "0123456789abcdef" if c != digest[at]])
    return digest[:at] + char + digest[at + 1 :]


def _json_garbage(clean: CleanBundle, rng: random.Random) -> bytes:
    lines = list(clean.lines)
    at = rng.randrange(len(lines))
    while True:
        how = rng.randrange(4)
        if how == 0:  # random bytes (maybe not UTF-8)
            garbage = rng.randbytes(rng.randint(1, 200)).replace(b"\n", b" ")
        elif how == 1:  # cut short
            garbage = lines[at][: rng.randrange(len(lines[at]))]
        elif how == 2:  # a stray character in place of one
            pos = rng.randrange(len(lines[at]))
            stray = rng.choice(b"{}[],:\"'\\x")
            garbage = lines[at][:pos] + bytes([stray]) + lines[at][pos + 1 :]
        else:
            garbage = rng.choice([b"", b"NaN-ish", b"{'index': 1}", b"\xff\xfe"])
        try:
            json.loads(garbage)
        except ValueError:
            break
    lines[at] = garbage
    return compress(lines)


MUTATORS: dict[str, Callable[[CleanBundle, random.Random], bytes]] = {
    "bit-flip": _bit_flip,
    "truncate": _truncate,
    "drop-entry": _drop_entry,
    "drop-entry-fixed-trailer": _drop_dependency,
    "duplicate-entry": _duplicate,
    "reorder": _reorder,
    "swap-proofs": _swap_proofs,
    "entry-byte": _entry_byte,
    "proof-hash": _proof_hash,
    "index": _index,
    "checkpoint-substituted": _checkpoint_substituted,
    "checkpoint-resigned-other-root": _checkpoint_other_root,
    "selected-flag": _selected_flag,
    "header-field": _header_field,
    "trailer": _trailer,
    "json-garbage": _json_garbage,
}
assert tuple(MUTATORS) == KINDS


def mutate(clean: CleanBundle, kind: str, rng: random.Random) -> bytes:
    """A bundle made from ``clean`` by one mutation of ``kind``.

    Raises:
        KeyError: an unknown kind.
    """
    mutated = MUTATORS[kind](clean, rng)
    assert _content(mutated) != clean.content, f"{kind}: content unchanged"
    return mutated


# -- a campaign ---------------------------------------------------------------


@dataclass
class Campaign:
    """How each mutation fared, by kind: the verifier's error class, or the
    report (``passed=False``), or ``survived``; and which survived or raised
    something else (``(kind, bundle, seed, detail)``)."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    survivors: list[tuple[str, str, int, str]] = field(default_factory=list)
    unexpected: list[tuple[str, str, int, str]] = field(default_factory=list)
    mutations: int = 0

    def rejected(self, kind: str) -> int:
        """How many mutations of ``kind`` the verifier rejected."""
        counts = self.counts[kind]
        return counts.total() - counts["survived"] - counts["unexpected"]

    def table(self) -> dict[str, dict[str, int]]:
        """Per kind: mutations, rejected, and by what."""
        return {
            kind: {
                "mutations": counts.total(),
                "rejected": self.rejected(kind),
                **dict(sorted(counts.items())),
            }
            for kind, counts in self.counts.items()
        }


def case(
    cleans: Sequence[CleanBundle], number: int, seed: int = SEED
) -> tuple[str, CleanBundle, int]:
    """Mutation ``number`` of a campaign: its kind, clean bundle and seed."""
    kind = KINDS[number % len(KINDS)]
    clean = cleans[(number // len(KINDS)) % len(cleans)]
    return kind, clean, seed + number


def campaign(
    cleans: Sequence[CleanBundle],
    total: int,
    seed: int = SEED,
    kinds: Sequence[str] = KINDS,
) -> Campaign:
    """Run ``total`` mutations round-robin over the kinds; how each was caught.

    Mutation ``n`` is ``mutate(clean, kind, random.Random(seed + n))`` with
    ``case(cleans, n, seed)``: any one can be made again on its own.
    """
    result = Campaign({kind: Counter() for kind in kinds})
    for number in range(total):
        kind, clean, case_seed = case(cleans, number, seed)
        if kind not in kinds:
            continue
        mutated = mutate(clean, kind, random.Random(case_seed))
        result.mutations += 1
        try:
            report = check(mutated, clean)
        except VerificationError as e:
            result.counts[kind][type(e).__name__] += 1
            continue
        except Exception as e:  # any other one is a bug: kept
            result.counts[kind]["unexpected"] += 1
            detail = "".join(traceback.format_exception(e))
            result.unexpected.append((kind, clean.name, case_seed, detail))
            continue
        if report["passed"] is False:
            result.counts[kind]["passed=False"] += 1
        else:
            result.counts[kind]["survived"] += 1
            result.survivors.append((kind, clean.name, case_seed, str(report)[:300]))
    return result
