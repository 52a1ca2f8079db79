"""Drawing a sample from a log proves what it draws from (``recompute_sample``).

A small election log (six stations in two provinces, their forms, an auditor's
plan, entries past the seed) served two ways: from the database the operator
holds (``audit.sample.local_tiles``) and as plain tlog-tiles files. Both draw
the same sample. Entries swapped under an unchanged checkpoint, a tree re-signed
with an unauthorized entry before the seed, a checkpoint short of the seed and
a plan that names its own past are each refused, and nothing is drawn.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import nacl.signing
import pytest

from audit.sample import local_tiles, plan_body
from keys import Ed25519Signer
from tests.conftest import ORIGIN
from tests.recordlog import (
    SIX_STATIONS,
    RecordLog,
    envelope_bytes,
    form,
    setup_election,
)
from tests.tilelog import view
from verifier.body_schema import SchemaViolation
from verifier.bundle import bundle_fetch, write_bundle
from verifier.cosignature import WitnessPolicy, cosign, cosigner_key
from verifier.errors import VerificationError
from verifier.fullaudit import Auditor
from verifier.note import Note, format_note, parse_note
from verifier.record import (
    format_log_entry,
    parse_envelope,
    parse_log_entry,
    record_payload,
)
from verifier.sample import PlanRefused
from verifier.sample_check import SeedNotYet, recompute_sample
from verifier.tile_client import FetchError, TileLog

LOG_KEY = Ed25519Signer(ORIGIN, hashlib.sha256(b"sample-check log").digest())
AUDITOR = Ed25519Signer("auditor", hashlib.sha256(b"sample-check auditor").digest())
STRANGER = Ed25519Signer("stranger", hashlib.sha256(b"never granted").digest())
AFTER = 3  # entries between the plan and its seed


def sampled_log(path: Path) -> tuple[list[bytes], int, dict, int]:
    """A small election log with an auditor's plan, past its seed, at ``path``.

    Six stations in two provinces, five forms, a plan whose seed is ``AFTER``
    entries past it, entries to pass the seed; then a plan that names a seed
    the log had passed, which the writer refuses and a lying operator appends
    (it is in the entries, not in the database). Returns (the entries, the
    plan's index, the operator's sample drawn from the database, the late
    plan's index).
    """
    log = RecordLog(f"sqlite:///{path}", LOG_KEY)
    try:
        keys = setup_election(log, SIX_STATIONS)
        log.grant(AUDITOR, "auditor", "")
        for n, station in enumerate(SIX_STATIONS[:5]):
            votes = {"100025": 60 + n, "100026": 40, "100027": 10}
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", form(votes)),
                [keys["reader"]],
            )
        body = plan_body(
            purpose="manual recount",
            ballot="ppwp",
            unit="station",
            strata=2,
            seed_size=log.ledger.size + 1 + AFTER,
            size=3,
        )
        plan = log.submit(
            log.payload("audit.plan/v1", "audits/national/check", body), [AUDITOR]
        ).index
        for n in range(AFTER + 1):
            extra = Ed25519Signer(f"x{n}", hashlib.sha256(b"x%d" % n).digest())
            log.grant(extra, "tps", SIX_STATIONS[0])
        # A plan that names a tree the log had passed: the writer refuses it
        # (its seed is known), so a lying operator's log appends it below.
        late_body = dict(body, seed_size=plan)
        late_payload = log.payload("audit.plan/v1", "audits/national/late", late_body)
        with pytest.raises(SchemaViolation, match="not beyond this plan's place"):
            log.submit(late_payload, [AUDITOR])
        tiles = local_tiles(log.ledger.reader)
        sample = recompute_sample(
            tiles, tiles.checkpoint(), LOG_KEY.verifier_key, ORIGIN, plan
        )
        entries = [log.ledger.reader.entry_bytes(i) for i in range(log.ledger.size)]
    finally:
        log.close()
    late = len(entries)
    entries.append(
        format_log_entry(
            parse_envelope(envelope_bytes(late_payload, [AUDITOR])),
            "2024-02-14T13:00:00.000Z",
        )
    )
    return entries, plan, sample, late


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """(entries, the plan's index, the operator's sample, a later plan's index)."""
    return sampled_log(tmp_path_factory.mktemp("sample-check") / "log.db")


def files_of(files: dict[str, bytes]) -> TileLog:
    return TileLog(files.__getitem__)


def entries_only(files: dict[str, bytes]) -> dict[str, bytes]:
    """What a whole-log bundle holds: the checkpoint and the entry bundles."""
    return {k: v for k, v in files.items() if k == "checkpoint" or "entries" in k}


def bundle_of(files: dict[str, bytes]) -> TileLog:
    def fetch(path: str) -> bytes:
        if path not in files:
            raise FetchError(f"no {path} in the bundle", 404)
        return files[path]

    return TileLog(fetch)


def draw(files: dict[str, bytes], plan: int) -> dict:
    return recompute_sample(
        files_of(files), files["checkpoint"], LOG_KEY.verifier_key, ORIGIN, plan
    )


def test_the_operator_and_plain_tiles_draw_the_same_sample(logged):
    entries, plan, sample, _ = logged
    again = draw(view(entries, LOG_KEY, ORIGIN), plan)
    for key in ("plan", "population", "size", "strata", "units"):
        assert again[key] == sample[key]
    assert again["seed"]["root"] == sample["seed"]["root"]
    assert sample["seed"]["tree_size"] == plan + 1 + AFTER
    assert sample["population"] == {"units": 6, "with_forms": 5}
    assert {row["stratum"] for row in sample["strata"]} == {"31", "32"}
    # The seed tree's root is what the first seed_size entries hash to.
    prefix = view(entries[: sample["seed"]["tree_size"]], LOG_KEY, ORIGIN)
    root = prefix["checkpoint"].split(b"\n")[2]
    assert bytes.fromhex(sample["seed"]["root"]) == base64.b64decode(root)


def test_the_seed_checkpoint_must_carry_the_witnesses_asked_for(logged):
    entries, plan, _, _ = logged
    files = view(entries, LOG_KEY, ORIGIN)
    witness = nacl.signing.SigningKey(bytes(range(40, 72)))
    policy = WitnessPolicy(
        (cosigner_key("witness.example", bytes(witness.verify_key)),), 1
    )
    with pytest.raises(VerificationError):
        recompute_sample(
            files_of(files), files["checkpoint"], LOG_KEY.verifier_key, ORIGIN, plan,
            policy=policy,
        )  # fmt: skip
    note = parse_note(files["checkpoint"])
    line = cosign(note.text, "witness.example", witness, 1_700_000_000)
    witnessed = format_note(Note(note.text, (*note.signatures, line)))
    sample = recompute_sample(
        files_of(files), witnessed, LOG_KEY.verifier_key, ORIGIN, plan, policy=policy
    )
    assert sample["seed"]["witnesses"] == ["witness.example"]
    assert sample["seed"]["checkpoint"] == witnessed.decode()


def test_a_whole_log_bundle_without_tiles_draws_the_same_sample(logged, tmp_path):
    entries, plan, sample, _ = logged
    files = view(entries, LOG_KEY, ORIGIN)
    written = tmp_path / "log.bundle"
    write_bundle(files_of(files), files["checkpoint"], len(entries), written)
    fetch, close = bundle_fetch(written)
    try:
        again = recompute_sample(
            TileLog(fetch), fetch("checkpoint"), LOG_KEY.verifier_key, ORIGIN, plan
        )
    finally:
        close()
    for key in ("plan", "population", "size", "strata", "units"):
        assert again[key] == sample[key]
    assert again["seed"]["consistency"] is None  # proven by the entries after it


def test_a_bundle_whose_entries_after_the_seed_are_not_the_signed_ones(logged):
    entries, plan, _, _ = logged
    files = entries_only(view(entries, LOG_KEY, ORIGIN))
    # The entries before the seed are the log's; the last two change places.
    swapped = list(entries)
    swapped[-1], swapped[-2] = swapped[-2], swapped[-1]
    lying = dict(files)
    lying.update(entries_only(view(swapped, LOG_KEY, ORIGIN)))
    lying["checkpoint"] = files["checkpoint"]
    with pytest.raises(VerificationError, match="do not hash to its root"):
        recompute_sample(
            bundle_of(lying), lying["checkpoint"], LOG_KEY.verifier_key, ORIGIN, plan
        )


def test_entries_swapped_under_the_signed_checkpoint_draw_nothing(logged):
    entries, plan, _, _ = logged
    files = view(entries, LOG_KEY, ORIGIN)
    # Two forms of different stations, both revision 0, change places: every
    # record still checks out, but the tree is not the one signed.
    first = next(i for i, e in enumerate(entries) if b"results.tally" in _payload(e))
    swapped = list(entries)
    swapped[first], swapped[first + 1] = swapped[first + 1], swapped[first]
    lying = dict(files)
    lying.update(
        {k: v for k, v in view(swapped, LOG_KEY, ORIGIN).items() if "entries" in k}
    )
    with pytest.raises(VerificationError, match="do not hash to a tree"):
        draw(lying, plan)


def test_a_re_signed_tree_with_an_unauthorized_entry_draws_nothing(logged):
    entries, plan, _, _ = logged
    # The operator puts a form signed by a key nobody granted just after the
    # plan, and signs that tree: the audit before the seed fails.
    payload = record_payload(
        schema="results.tally/v1",
        subject=f"results/ppwp/{SIX_STATIONS[5]}",
        revision=0,
        prev=None,
        issued_at="2024-02-14T12:59:00.000Z",
        body=form({"100025": 1, "100026": 1, "100027": 1}),
    )
    forged = format_log_entry(
        parse_envelope(envelope_bytes(payload, [STRANGER])),
        "2024-02-14T13:00:00.000Z",
    )
    tampered = list(entries)
    tampered[plan + 1] = forged
    with pytest.raises(VerificationError, match="fails its audit before the seed"):
        draw(view(tampered, LOG_KEY, ORIGIN), plan)


def test_a_log_short_of_the_seed_draws_nothing_yet(logged):
    entries, plan, _, _ = logged
    with pytest.raises(SeedNotYet, match="cannot be drawn until 1 more"):
        draw(view(entries[: plan + AFTER], LOG_KEY, ORIGIN), plan)


def test_a_plan_logged_after_its_seed_and_a_non_plan_are_refused(logged):
    entries, _, _, late = logged
    files = view(entries, LOG_KEY, ORIGIN)
    with pytest.raises(PlanRefused, match="not before its seed"):
        draw(files, late)
    with pytest.raises(PlanRefused, match="not a plan"):
        draw(files, 0)
    with pytest.raises(PlanRefused, match="no entry"):
        draw(files, len(entries))


def _payload(entry: bytes) -> bytes:
    return parse_log_entry(entry).envelope.payload


def test_the_audit_finds_the_plan_the_writer_refused(logged):
    # The writer and the audit ask the same of a plan: a log that holds one
    # whose seed was known when it was logged fails its audit at that entry.
    entries, _, _, late = logged
    clean = Auditor()
    for index, entry in enumerate(entries[:late]):
        clean.add(index, entry)
    assert clean.report(True)["passed"] is True
    auditor = Auditor()
    for index, entry in enumerate(entries):
        auditor.add(index, entry)
    report = auditor.report(True)
    assert report["passed"] is False
    failed = [f for f in report["findings"] if f["check"] == "schema"]
    assert [f["index"] for f in failed] == [late]
    assert "not beyond this plan's place" in failed[0]["detail"]
