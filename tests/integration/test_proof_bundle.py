"""Selective proof bundles through the commands, as an operator and an auditor run them.

``saksi export bundle`` writes a selection of a real record log (the golden
log: regions, keys, candidate lists, forms, a recap, a correction and the
recap signed again) with its proofs; ``saksi-verify check-bundle`` checks it
offline. What a bundle holds is exactly what matches its selection, plus the
registry records before it; pinned and witnessed checkpoints are proven; a
selection says what it cannot prove. Exit codes: 0 verified, 1 refused, 2 usage,
3 I/O.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import nacl.signing
import pytest

from tests.golden.build import SIGNER, write_log
from tests.helpers import ROOT
from tests.recordlog import SIX_STATIONS
from verifier.checkpoint import parse_checkpoint
from verifier.cosignature import cosign, cosigner_key
from verifier.note import Note, format_note, parse_note
from verifier.proof_bundle import CONTEXT_SCHEMAS, FORMAT
from verifier.record import parse_log_entry, parse_record

WITNESS = nacl.signing.SigningKey(bytes(range(7, 39)))
WITNESS_NAME = "witness.bundle.example"


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def saksi(*args: str) -> subprocess.CompletedProcess[str]:
    return run("api", *args)


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return run("verifier", *args)


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """(directory, db URL, every record logged as (index, record, keyids), notes)."""
    directory = tmp_path_factory.mktemp("golden")
    log = write_log(directory)
    try:
        notes = {c.size: c.note for c in log.storage.iter_checkpoints()}
        logged = []
        for row in log.storage.iter_entries():
            entry = parse_log_entry(row.data)
            keyids = [s.keyid for s in entry.envelope.signatures]
            logged.append((row.index, parse_record(entry.envelope.payload), keyids))
    finally:
        log.close()
    (directory / "log.vkey").write_text(str(SIGNER.verifier_key) + "\n")
    return directory, f"sqlite:///{directory / 'golden.db'}", logged, notes


def export(golden, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    directory, db, _, _ = golden
    return saksi(
        "export",
        "bundle",
        "--dir",
        str(directory),
        "--db",
        db,
        "--out",
        str(out),
        *args,
    )


def lines(path: Path) -> list[dict]:
    with gzip.open(path, "rb") as f:
        return [json.loads(line) for line in f]


def check(golden, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    key = golden[0] / "log.vkey"
    return verify("check-bundle", str(path), "--key", str(key), *args)


def test_a_region_bundle_holds_its_records_and_the_registry_before_them(
    golden, tmp_path
):
    _, _, logged, _ = golden
    out = tmp_path / "3171.bundle"
    made = export(golden, out, "--region", "317101", "--json")
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["verified"] is True
    # Every record of a subject in the district: the regions record, the
    # forms and their correction, the village recap and its revision.
    wanted = [
        i
        for i, record, _ in logged
        if record.subject.split("/")[-1].startswith("317101")
        and record.schema != "keys.grant/v1"
    ]
    last = wanted[-1]
    context = [
        i
        for i, record, _ in logged
        if i < last and i not in wanted and record.schema in CONTEXT_SCHEMAS
    ]
    body = lines(out)
    header, entries, trailer = body[0], body[1:-1], body[-1]
    assert header["format"] == FORMAT
    assert header["selection"] == {"region": "317101"}
    assert [e["index"] for e in entries if e["selected"]] == wanted
    assert [e["index"] for e in entries if not e["selected"]] == context
    assert trailer["end"]["entries"] == len(entries) == result["entries"]
    assert result["selected"] == len(wanted)

    checked = check(golden, out, "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["passed"] is True
    assert (report["selected"], report["context"]) == (len(wanted), len(context))
    assert report["tree_size"] == len(logged)
    by_name = {c["check"]: c for c in report["checks"]}
    assert by_name["tree"]["status"] == "skipped"  # proofs instead of the tree
    assert by_name["recap-sum"]["checked"] == 2  # both recaps, children in it
    assert by_name["authorization"]["findings"] == 0
    assert "full audit" in report["does_not_prove"]
    # The forensics of what the bundle holds: the district's forms.
    assert report["forensics"]["provinces"]["31"]["reported"]["ppwp"] == 3
    text = check(golden, out)
    assert text.returncode == 0
    assert "does not prove" in text.stdout
    assert text.stdout.endswith("VERIFIED\n")


def test_a_selection_without_a_recaps_children_counts_the_sum_as_not_checkable(
    golden, tmp_path
):
    out = tmp_path / "recaps.bundle"
    assert export(golden, out, "--schema", "results.recap/v1").returncode == 0
    report = json.loads(check(golden, out, "--json").stdout)
    assert report["passed"] is True
    assert report["selected"] == 2
    # The recap's children are not in the selection: neither that they are
    # logged nor the sum can be decided; the revised recap's chain can.
    assert report["not_checkable"] == {"recap-children": 2, "recap-sum": 2}
    by_name = {c["check"]: c for c in report["checks"]}
    assert by_name["recap-sum"]["checked"] == 0


def test_subjects_signers_and_index_ranges_select_exactly(golden, tmp_path):
    _, _, logged, _ = golden
    station = SIX_STATIONS[0]
    subject = f"results/ppwp/{station}"
    out = tmp_path / "subject.bundle"
    assert export(golden, out, "--subject", subject).returncode == 0
    selected = [e for e in lines(out)[1:-1] if e["selected"]]
    assert [e["index"] for e in selected] == [
        i for i, r, _ in logged if r.subject == subject
    ]
    # The correction is the second revision: its chain is checked in the bundle.
    report = json.loads(check(golden, out, "--json").stdout)
    assert report["passed"]
    assert report["not_checkable"] == {}

    signer = next(k for _, r, k in logged if r.subject == subject)[0]
    out = tmp_path / "signer.bundle"
    made = export(golden, out, "--signer", signer, "--from", "5", "--to", "40")
    assert made.returncode == 0, made.stderr
    wanted = [i for i, _, k in logged if signer in k and 5 <= i < 40]
    assert [e["index"] for e in lines(out)[1:-1] if e["selected"]] == wanted
    assert check(golden, out).returncode == 0


def test_pinned_checkpoints_are_proven_and_yours_must_be_among_them(golden, tmp_path):
    _, _, logged, notes = golden
    early, later = sorted(s for s in notes if 0 < s < len(logged))[2:4]
    pin = tmp_path / "early.checkpoint"
    pin.write_bytes(notes[early])
    out = tmp_path / "pinned.bundle"
    assert export(golden, out, "--region", "3171", "--pin", str(pin)).returncode == 0
    ok = check(golden, out, "--pin", str(pin), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["pinned"] == [early]
    other = tmp_path / "later.checkpoint"
    other.write_bytes(notes[later])
    refused = check(golden, out, "--pin", str(other))
    assert refused.returncode == 1
    assert f"pinned checkpoint of size {later:,}" in refused.stderr
    assert "saksi export bundle --pin" in refused.stderr


def test_a_witnessed_checkpoint_carries_its_cosignature_into_the_bundle(
    golden, tmp_path
):
    _, _, logged, notes = golden
    note = parse_note(notes[len(logged)])
    line = cosign(note.text, WITNESS_NAME, WITNESS, 1_700_000_123)
    witnessed = tmp_path / "witnessed.checkpoint"
    witnessed.write_bytes(format_note(Note(note.text, (*note.signatures, line))))
    vkey = str(cosigner_key(WITNESS_NAME, bytes(WITNESS.verify_key)))
    out = tmp_path / "witnessed.bundle"
    made = export(
        golden,
        out,
        "--region",
        "3171",
        "--checkpoint",
        str(witnessed),
        "--witness",
        vkey,
        "--json",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["cosigned_by"] == {WITNESS_NAME: 1_700_000_123}
    ok = check(golden, out, "--witness", vkey, "--json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["cosigned_by"] == {WITNESS_NAME: 1_700_000_123}
    # Without the witness's cosignature, a policy that asks for it refuses.
    plain = tmp_path / "plain.bundle"
    assert export(golden, plain, "--region", "3171").returncode == 0
    refused = check(golden, plain, "--witness", vkey)
    assert refused.returncode == 1
    assert "checkpoint" in refused.stderr


def test_an_earlier_checkpoint_proves_only_what_it_held(golden, tmp_path):
    _, _, logged, notes = golden
    size = sorted(s for s in notes if 0 < s < len(logged))[-3]
    earlier = tmp_path / "earlier.checkpoint"
    earlier.write_bytes(notes[size])
    out = tmp_path / "earlier.bundle"
    assert (
        export(golden, out, "--region", "3171", "--checkpoint", str(earlier)).returncode
        == 0
    )
    assert parse_checkpoint(parse_note(notes[size]).text).size == size
    entries = lines(out)[1:-1]
    assert entries
    assert max(e["index"] for e in entries) < size
    assert json.loads(check(golden, out, "--json").stdout)["tree_size"] == size


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ((), 2, "no selection given"),
        (("--region", "31x"), 2, "not a region code"),
        (("--signer", "abc"), 2, "key ID"),
        (("--since", "yesterday"), 2, "since"),
        (("--region", "3171", "--checkpoint", "/nonexistent/cp"), 3, "cannot read"),
    ],
)
def test_export_refuses_bad_requests_with_a_clear_error(
    golden, tmp_path, args, code, says
):
    out = tmp_path / "x.bundle"
    made = export(golden, out, *args)
    assert made.returncode == code, made.stderr
    assert says in made.stderr
    assert "Traceback" not in made.stderr
    assert not out.exists()


def test_export_refuses_a_checkpoint_of_another_log(golden, tmp_path):
    other = tmp_path / "other.checkpoint"
    note = parse_note(golden[3][len(golden[2])])
    # The same text under a signature line of another key: not this log's.
    forged = note.signatures[0].__class__(
        note.signatures[0].name, b"\x00\x00\x00\x01", bytes(64)
    )
    other.write_bytes(format_note(Note(note.text, (forged,))))
    out = tmp_path / "x.bundle"
    made = export(golden, out, "--region", "3171", "--checkpoint", str(other))
    assert made.returncode == 1
    assert "does not verify" in made.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


def test_check_bundle_exit_codes(golden, tmp_path):
    missing = check(golden, tmp_path / "missing.bundle")
    assert missing.returncode == 3
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(b"not a bundle at all")
    refused = check(golden, junk)
    assert refused.returncode == 1
    assert "not a valid proof bundle" in refused.stderr
    out = tmp_path / "ok.bundle"
    assert export(golden, out, "--region", "3171").returncode == 0
    other_key = "other.example+00000001+" + "A" * 43 + "="
    wrong = verify("check-bundle", str(out), "--key", other_key)
    assert wrong.returncode in (1, 2)
    assert "Traceback" not in wrong.stderr + missing.stderr + refused.stderr
