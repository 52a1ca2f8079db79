"""Write the fuzz corpus's seeds: ``python -m tests.fuzz.build_corpus``.

Every seed is a small valid input of its target (``bench.fuzz_targets``), taken
from the shared vectors, the golden log, the shared data samples, or made by
the project's own writers with fixed keys. Seeds are named ``seed-*`` and
rewritten by this script; the inputs that once crashed a parser are named
``crash-*`` and are kept as regression seeds (this script never touches them).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tempfile
from pathlib import Path

from bench import fuzz_targets as ft
from domains.inputs import data_dir
from keys import Ed25519Signer
from keys.keyfile import KdfProfile, write_key_file
from keys.pem import private_key_to_pem, public_key_to_pem
from verifier import cosignature, dsse, jcs, note, proof_bundle, record, tile_format
from verifier.witness_protocol import WitnessKey, format_add_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
GOLDEN = ROOT / "tests" / "golden"
VECTORS = ROOT.parent / "shared" / "vectors"


def _vectors(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def _golden(number: int) -> bytes:
    return (GOLDEN / "answers" / f"{number:03d}.body").read_bytes()


def _entries() -> list[bytes]:
    """A few logged entries of the golden log, of different schemas."""
    entries = tile_format.parse_entry_bundle(_golden(2))
    picked: dict[str, bytes] = {}
    for entry in entries:
        schema = record.parse_record(record.parse_log_entry(entry).envelope.payload)
        picked.setdefault(schema.schema, entry)
    return sorted(picked.values(), key=len)[:4]


def _signed_checkpoint() -> tuple[str, bytes]:
    """A checkpoint signed by the fuzz log key and cosigned by its witness."""
    text = f"{ft.FUZZ_ORIGIN}\n22\n{'A' * 43}=\n"
    log = ft.log_signing_key()
    key = note.VerifierKey.from_public_key(ft.FUZZ_ORIGIN, bytes(log.verify_key))
    signed = note.NoteSignature(
        ft.FUZZ_ORIGIN, key.key_id, log.sign(text.encode()).signature
    )
    cosigned = cosignature.cosign(
        text, ft.FUZZ_WITNESS, ft.witness_signing_key(), 1_700_000_000
    )
    return text, note.format_note(note.Note(text, (signed, cosigned)))


def _bundle_stream() -> bytes:
    out = io.BytesIO()
    header = proof_bundle.Header(
        "test.saksi.example/log",
        _golden(0),
        proof_bundle.Selection(region="31", since="2024-02-14T00:00:00.000Z"),
        (proof_bundle.Pinned(_golden(0), (hashlib.sha256(b"p").digest(),)),),
        "2024-02-15T00:00:00.000Z",
    )
    writer = proof_bundle.BundleWriter(out, header)
    for index, entry in enumerate(_entries()[:2]):
        writer.add(index * 3, entry, [hashlib.sha256(entry).digest()], index == 0)
    writer.finish()
    return out.getvalue()


def _sirekap() -> list[bytes]:
    sample = data_dir()[0] / "sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
    lines = sample.read_bytes().splitlines()[:2]
    return [b"\n".join(lines) + b"\n", lines[0]]


def _kawalpemilu() -> list[bytes]:
    path = data_dir()[0] / "kawalpemilu2019/kawalpemilu2019_gorontalo_diy.jsonl.gz"
    wanted = {0, 74716, 75301, 75330, 90206}
    lines = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            node = json.loads(line)
            if node["id"] in wanted:
                # keep only the branch down to the village (a small seed)
                if node["depth"] < 4:
                    kept = ("id", "name", "depth", "parentIds", "parentNames")
                    node = {k: node[k] for k in kept if k in node} | {
                        "children": [
                            c for c in node.get("children") or [] if c[0] in wanted
                        ]
                    }
                lines.append(json.dumps(node, separators=(",", ":")))
    return ["\n".join(lines).encode() + b"\n"]


def _monitor() -> list[bytes]:
    plain = (
        '[log]\nurl = "http://127.0.0.1:8080"\nkey = "log.vkey"\n\n'
        '[monitor]\nstate = "state"\nlisten = "127.0.0.1:9464"\n'
    )
    full = (
        '[log]\nurl = "https://log.example/"\ntiles = "https://tiles.example/log"\n'
        f'key = "log.vkey"\norigin = "{ft.FUZZ_ORIGIN}"\n\n'
        '[witnesses]\nkeys = ["witness.vkey"]\nmin = 1\n\n'
        '[monitor]\nstate = "state"\nlisten = "[::1]:9464"\npoll_seconds = 0.5\n'
        'alert_log = "alerts.jsonl"\nworkers = 2\n\n'
        '[webhook]\nurls = ["https://hooks.example/a"]\ntimeout_seconds = 5.0\n'
        'max_backoff_seconds = 60.0\ndead_letter = "dead.jsonl"\n\n'
        "[thresholds]\nmax_revisions = 3\nreading_difference_ratio = 0.10\n"
        "key_region_digits = 4\n\n"
        '[[timetable]]\nname = "voting"\nfrom = 2024-02-14T00:00:00Z\n'
        'to = "2024-02-15T00:00:00.000Z"\nschemas = ["results.tally/v1"]\n'
        "expect_results = true\n\n"
        '[canary]\nkey = "canary.key"\ninterval_seconds = 5.0\n'
        'passphrase_file = "canary.pass"\n'
    )
    return [plain.encode(), full.encode()]


def _key_file(tmp: Path) -> list[bytes]:
    signer = Ed25519Signer("tps-3171", hashlib.sha256(b"fuzz key file").digest())
    path = tmp / "key.json"
    path.unlink(missing_ok=True)
    write_key_file(path, signer, b"a passphrase", KdfProfile.INTERACTIVE)
    data = path.read_bytes()
    path.unlink()
    return [data]


def _pem() -> list[bytes]:
    signer = Ed25519Signer("imported", hashlib.sha256(b"fuzz pem").digest())
    return [
        public_key_to_pem(signer.public_key),
        private_key_to_pem(signer, None),
    ]


def seeds(tmp: Path) -> dict[str, list[bytes]]:
    """Every target's seeds."""
    entries = _entries()
    envelopes = [record.parse_log_entry(e).envelope for e in entries]
    payloads = [e.payload for e in envelopes]
    notes = _vectors("signed_note")
    checkpoints = _vectors("checkpoints")["checkpoints"]
    cosigs = _vectors("cosignature_witness")
    tiles = _vectors("tlog_tiles")
    proofs = _vectors("tlog_proof")["proofs"]
    _, cosigned = _signed_checkpoint()
    golden_note = _golden(0)
    golden_text = note.parse_note(golden_note).text
    stream = _bundle_stream()
    skey = notes["keys"][0]["skey"]
    witness = WitnessKey("fuzz.saksi.example/witness", ft.witness_signing_key())
    ecdsa = next(
        c for c in checkpoints if c.get("vkey", "+ + ").split("+", 2)[2][:2] == "Aj"
    )
    spki = note.VerifierKey.parse(ecdsa["vkey"]).public_key
    reference = tiles["derived_reference_tree_tiles"]
    return {
        "dsse_envelope": [
            jcs.canonicalize(dsse.envelope_to_json(e)) for e in envelopes[:2]
        ],
        "record": payloads[:3],
        "log_entry": entries[:3],
        "logged_entry": entries[:3],
        "json": [payloads[0], b'{"a": [1, -2, true, null, "\\u00e9\\ud83d\\ude00"]}'],
        "canonical_json": [payloads[0], '{"a":[1,-2,true,null],"é":"😀"}'.encode()],
        "checkpoint": [
            golden_text.encode(),
            checkpoints[0]["note"].split("\n\n")[0].encode() + b"\n",
        ],
        "note": [golden_note, notes["signed_notes"][0]["signed_note"].encode()],
        "verifier_key": [
            (GOLDEN / "log.vkey").read_bytes().strip(),
            cosigs["key_id_vectors"][0]["vkey"].encode(),
            ecdsa["vkey"].encode(),
        ],
        "cosignature": [cosigned],
        "tlog_proof": [p["proof_text"].encode() for p in proofs],
        "add_checkpoint": [
            cosigs["witness_protocol"]["add_checkpoint_request_example"].encode(),
            format_add_checkpoint(20, [hashlib.sha256(b"x").digest()], cosigned),
        ],
        "witness_key": [skey.encode(), witness.to_text().encode()],
        "tile_path": [p["path"].encode() for p in tiles["paths"]]
        + [b"tile/entries/x001/234.p/8"],
        "tile": [bytes([21]) + _golden(1)],
        "entry_bundle": [
            bytes.fromhex(reference["entries_bundle_hex"]),
            tile_format.format_entry_bundle(entries[:2]),
        ],
        "bundle": [stream],
        "bundle_lines": [gzip.decompress(stream)],
        "p256_spki": [spki],
        "key_file": _key_file(tmp),
        "pem": _pem(),
        "sirekap_lines": _sirekap()[:1],
        "sirekap_file": [json.dumps(json.loads(_sirekap()[1])["data"]).encode()],
        "kawalpemilu": _kawalpemilu(),
        "monitor_config": _monitor(),
    }


def write(corpus: Path = CORPUS) -> int:
    """Rewrite every ``seed-*`` file under ``corpus``; the number written."""
    with tempfile.TemporaryDirectory() as tmp:
        table = seeds(Path(tmp))
    written = 0
    for name, items in table.items():
        folder = corpus / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for data in items:
            digest = hashlib.sha256(data).hexdigest()[:16]
            (folder / f"seed-{digest}").write_bytes(data)
            written += 1
    return written


if __name__ == "__main__":
    print(f"{write()} seeds written under {CORPUS}")
