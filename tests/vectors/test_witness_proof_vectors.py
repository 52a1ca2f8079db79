"""Interop: ECDSA checkpoints, C2SP tlog-cosignature and tlog-proof vectors."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest

from tests.helpers import load_vectors
from verifier.checkpoint import verify_checkpoint
from verifier.cosignature import (
    WitnessPolicy,
    cosign,
    cosigner_key,
    parse_cosignature,
    verify_cosigned,
)
from verifier.errors import MalformedInput, SignatureInvalid, VerificationError
from verifier.note import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ECDSA,
    NoteSignature,
    VerifierKey,
    cosignature_message,
    parse_note,
)
from verifier.p256 import parse_spki, verify_p256
from verifier.rfc6962 import hash_leaf
from verifier.tlog_proof import format_tlog_proof, parse_tlog_proof

CHECKPOINTS = {c["id"]: c for c in load_vectors("checkpoints.json")["checkpoints"]}
COSIG = load_vectors("cosignature_witness.json")
PROOFS = {p["id"]: p for p in load_vectors("tlog_proof.json")["proofs"]}


# -- ECDSA P-256 (Rekor v1) -------------------------------------------------------


def _rekor_v1() -> tuple[VerifierKey, bytes, str]:
    cp = CHECKPOINTS["rekor-v1-798034"]
    return VerifierKey.parse(cp["vkey"]), cp["note"].encode(), cp["origin"]


def test_ecdsa_vkey_key_id_is_the_spki_hash():
    key, _, _ = _rekor_v1()
    assert key.key_type == KEY_TYPE_ECDSA
    assert key.key_id == hashlib.sha256(key.public_key).digest()[:4]
    assert key.key_id.hex() == "c0d23d6a"
    assert str(key) == CHECKPOINTS["rekor-v1-798034"]["vkey"]


def test_ecdsa_checkpoint_every_signature_bit_flip_rejected():
    key, note, origin = _rekor_v1()
    verify_checkpoint(note, key, origin)
    sig = parse_note(note).signatures[0]
    text = parse_note(note).text.encode()
    verify_p256(key.public_key, text, sig.signature)
    for i in range(len(sig.signature) * 8):
        flipped = bytearray(sig.signature)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(VerificationError):
            verify_p256(key.public_key, text, bytes(flipped))


def test_ecdsa_checkpoint_body_mutations_rejected():
    key, note, origin = _rekor_v1()
    body_len = note.index(b"\n\n") + 1
    for i in range(body_len):
        mutated = bytearray(note)
        mutated[i] ^= 0x01
        with pytest.raises(VerificationError):
            verify_checkpoint(bytes(mutated), key, origin)


def test_ecdsa_signature_encodings_rejected():
    key, note, _ = _rekor_v1()
    sig = parse_note(note).signatures[0].signature
    text = parse_note(note).text.encode()
    # r and s as the DER holds them; then the same values badly encoded.
    r_len = sig[3]
    r = sig[4 : 4 + r_len]
    s = sig[4 + r_len + 2 :]
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    twin_s = n - int.from_bytes(s, "big")
    high_s = twin_s.to_bytes(twin_s.bit_length() // 8 + 1, "big")  # minimal DER
    for bad in [
        sig + b"\x00",  # trailing byte
        sig[:-1],  # truncated
        b"\x30" + bytes([sig[1] + 1]) + sig[2:4] + b"\x00" + sig[4:],  # padded r
        b"\x30\x81" + sig[1:],  # long-form length where short is required
    ]:
        with pytest.raises(SignatureInvalid):
            verify_p256(key.public_key, text, bad)
    # (r, n - s) is the same signature's twin: ECDSA accepts it (as Go does);
    # nothing here uses signature bytes as an identifier. A wrong s is refused.
    twin = b"\x02" + bytes([len(r)]) + r + b"\x02" + bytes([len(high_s)]) + high_s
    verify_p256(key.public_key, text, b"\x30" + bytes([len(twin)]) + twin)
    wrong = (int.from_bytes(s, "big") + 1).to_bytes(32, "big")
    other = b"\x02" + bytes([len(r)]) + r + b"\x02\x20" + wrong
    with pytest.raises(SignatureInvalid):
        verify_p256(key.public_key, text, b"\x30" + bytes([len(other)]) + other)


def test_ecdsa_point_off_the_curve_rejected():
    key, _, _ = _rekor_v1()
    spki = bytearray(key.public_key)
    spki[-1] ^= 0x01
    with pytest.raises(MalformedInput, match="not on P-256"):
        parse_spki(bytes(spki))
    with pytest.raises(MalformedInput):
        VerifierKey(key.name, key.key_id, KEY_TYPE_ECDSA, bytes(spki))


def test_extra_signatures_each_verify_under_their_own_key():
    cp = CHECKPOINTS["sumdb-6476701-extra-sigs"]
    note = cp["note"].encode()
    log = VerifierKey.parse(cp["vkey"])
    verify_checkpoint(note, log, "go.sum database tree")
    message = parse_note(note).text.encode()
    lines = {s.name: s for s in parse_note(note).signatures}
    for vkey in cp["extra_vkeys"]:
        key = VerifierKey.parse(vkey)
        key.verify(message, lines[key.name].signature)


def test_rekor_v2_entry_inclusion_reproduces_the_signed_root():
    from verifier.checkpoint import verify_inclusion_in_checkpoint

    cp = CHECKPOINTS["rekor-v2-412115"]
    key = VerifierKey.parse(cp["vkey_derived"])
    assert key.public_key.hex() == cp["ed25519_public_hex"]
    entry = cp["entry"]
    leaf = hash_leaf(base64.b64decode(entry["canonicalized_body_b64"]))
    assert leaf.hex() == entry["leaf_hash_hex"]
    proof = [base64.b64decode(h) for h in entry["inclusion_proof_b64"]]
    note = cp["note"].encode()
    verify_inclusion_in_checkpoint(
        note, key, cp["origin"], entry["log_index"], leaf, proof
    )
    with pytest.raises(VerificationError):
        verify_inclusion_in_checkpoint(
            note, key, cp["origin"], entry["log_index"] - 1, leaf, proof
        )


# -- cosignature/v1 ---------------------------------------------------------------


def test_cosignature_decode_vectors():
    example, stamped, plain = COSIG["decode_vectors"]
    line = parse_note(("x\n\n" + example["line"] + "\n").encode()).signatures[0]
    decoded = parse_cosignature(line)
    assert 4 + len(line.signature) == example["decoded_len"]
    assert (decoded.key_id.hex(), decoded.timestamp) == (
        example["key_id_hex"],
        example["timestamp"],
    )
    text = example["signed_message_example"].split("\n", 2)[2]
    assert (
        cosignature_message(text, decoded.timestamp).decode()
        == example["signed_message_example"]
    )
    raw = base64.b64decode(stamped["signature_b64"])
    decoded = parse_cosignature(NoteSignature("w", raw[:4], raw[4:]))
    assert (decoded.key_id.hex(), decoded.timestamp) == (
        stamped["key_id_hex"],
        stamped["timestamp"],
    )
    raw = base64.b64decode(plain["signature_b64"])
    with pytest.raises(MalformedInput):
        parse_cosignature(NoteSignature("w", raw[:4], raw[4:]))


def test_cosignature_key_ids():
    native, converted = COSIG["key_id_vectors"]
    key = VerifierKey.parse(native["vkey"])
    assert (key.key_type, key.key_id.hex()) == (native["type"], native["key_id_hex"])
    assert key.is_cosigner
    plain = VerifierKey.parse(converted["vkey"])
    assert plain.key_id.hex() == converted["key_id_type1_hex"]
    as_witness = cosigner_key(plain.name, plain.public_key)
    assert as_witness.key_type == KEY_TYPE_COSIGNATURE_V1
    assert as_witness.key_id.hex() == converted["key_id_type4_hex"]


def test_derived_cosignature_exact_bytes_and_policy():
    d = COSIG["derived_cosignature"]
    signing = nacl.signing.SigningKey(bytes.fromhex(d["ed25519_seed_hex"]))
    line = cosign(d["checkpoint_text"], d["cosigner_name"], signing, d["timestamp"])
    assert line.to_line() == d["signature_line"]
    assert (
        cosignature_message(d["checkpoint_text"], d["timestamp"]).hex()
        == d["signed_message_hex"]
    )
    witness = VerifierKey.parse(d["vkey"])
    assert witness.key_id.hex() == d["key_id_hex"]
    log = VerifierKey.parse(CHECKPOINTS["derived-reference-8"]["vkey"])
    note = d["cosigned_checkpoint"].encode()
    checkpoint, _, cosigned = verify_cosigned(
        note, log, "PeterNeumann", WitnessPolicy((witness,), 1)
    )
    assert checkpoint.size == 8
    assert cosigned == {"EnochRoot": d["timestamp"]}
    # Without the cosignature the same policy refuses the checkpoint.
    bare = CHECKPOINTS["derived-reference-8"]["note"].encode()
    with pytest.raises(SignatureInvalid, match="cosigned by 0"):
        verify_cosigned(bare, log, "PeterNeumann", WitnessPolicy((witness,), 1))
    # A cosignature that does not verify rejects the note outright.
    raw = bytearray(note)
    at = note.rindex(b"EnochRoot ") + len(b"EnochRoot ") + 20
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    with pytest.raises(VerificationError):
        verify_cosigned(bytes(raw), log, "PeterNeumann", WitnessPolicy((witness,), 1))


def test_witness_policy_refuses_a_log_key_as_witness():
    log = VerifierKey.parse(CHECKPOINTS["derived-reference-8"]["vkey"])
    with pytest.raises(MalformedInput, match="type 0x04"):
        WitnessPolicy((log,), 1)
    witness = VerifierKey.parse(COSIG["derived_cosignature"]["vkey"])
    with pytest.raises(MalformedInput, match="quorum"):
        WitnessPolicy((witness,), 2)


# -- tlog-proof@v1 ----------------------------------------------------------------


@pytest.mark.parametrize("pid", sorted(PROOFS))
def test_tlog_proofs_parse_verify_and_round_trip(pid):
    p = PROOFS[pid]
    data = p["proof_text"].encode()
    proof = parse_tlog_proof(data)
    assert format_tlog_proof(proof) == data
    leaf = bytes.fromhex(p["leaf_hash_hex"])
    if "canonicalized_body_b64" in p:
        assert hash_leaf(base64.b64decode(p["canonicalized_body_b64"])) == leaf
        key = VerifierKey.parse(p["vkey"])
        policy = WitnessPolicy()
    else:
        assert hash_leaf(bytes.fromhex(p["leaf_data_hex"])) == leaf
        assert proof.extra == base64.b64decode(p["extra_b64"])
        key = VerifierKey.parse(p["log_vkey"])
        policy = WitnessPolicy((VerifierKey.parse(p["witness_vkey"]),), 1)
    checkpoint, _ = proof.verify(leaf, key, key.name, policy)
    assert proof.index < checkpoint.size
    with pytest.raises(VerificationError):
        proof.verify(hashlib.sha256(leaf).digest(), key, key.name, policy)


@pytest.mark.parametrize("pid", sorted(PROOFS))
def test_tlog_proof_every_line_mutation_rejected(pid):
    """Each line of the proof part, changed in one character, dropped or
    doubled, is either refused by the parser or fails verification."""
    p = PROOFS[pid]
    text = p["proof_text"]
    head, checkpoint = text.split("\n\n", 1)
    lines = head.split("\n")
    leaf = bytes.fromhex(p["leaf_hash_hex"])
    key = VerifierKey.parse(p.get("vkey") or p["log_vkey"])
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("extra "):
            continue  # unauthenticated by design
        flipped = line[:-2] + ("A" if line[-2] != "A" else "B") + line[-1]
        variants.append([*lines[:i], flipped, *lines[i + 1 :]])
        variants.append(lines[:i] + lines[i + 1 :])
        variants.append([*lines[: i + 1], line, *lines[i + 1 :]])
    for variant in variants:
        data = ("\n".join(variant) + "\n\n" + checkpoint).encode()
        with pytest.raises(VerificationError):
            parse_tlog_proof(data).verify(leaf, key, key.name)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"c2sp.org/tlog-proof@v2\nindex 0\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\n",
        b"c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\nx\n",
        b"c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n",
        b"c2sp.org/tlog-proof@v1\n\xff\nindex 0\n\nx\n",
    ],
)
def test_malformed_tlog_proofs_refused(data):
    with pytest.raises(MalformedInput):
        parse_tlog_proof(data)


# -- witness key files --------------------------------------------------------------


def test_go_note_private_key_reads_as_a_witness_key():
    """Go's note.GenerateKey form (type 0x01) gives the same Ed25519 key, whose
    cosigner key (type 0x04) is what observers pin."""
    from verifier.witness_protocol import WitnessKey

    notes = load_vectors("signed_note.json")
    peter = next(k for k in notes["keys"] if k["name"] == "PeterNeumann")
    key = WitnessKey.parse(peter["skey"])
    assert bytes(key.signing_key.verify_key).hex() == peter["ed25519_public_hex"]
    assert key.verifier_key == cosigner_key("PeterNeumann", key.verifier_key.public_key)
    mangled = peter["skey"].replace("c74f20a3", "c74f20a4")
    with pytest.raises(MalformedInput, match="key ID"):
        WitnessKey.parse(mangled)


def test_witness_key_files_round_trip():
    from verifier.witness_protocol import WitnessKey

    for n in range(64):  # base64 bodies with '+' and '/' among them
        key = WitnessKey.generate(f"w{n}.example.org")
        again = WitnessKey.parse(key.to_text())
        assert bytes(again.signing_key) == bytes(key.signing_key)
        assert again.verifier_key == key.verifier_key
