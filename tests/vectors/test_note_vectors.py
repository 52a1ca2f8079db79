"""Interop: Go sumdb/note and C2SP signed-note vectors, tlog-checkpoint vectors."""

from __future__ import annotations

import nacl.signing
import pytest

from tests.helpers import load_vectors
from verifier.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from verifier.errors import MalformedInput, SignatureInvalid, VerificationError
from verifier.note import (
    KEY_TYPE_ED25519,
    VerifierKey,
    compute_key_id,
    parse_note,
    sign_note,
    verify_note,
)

NOTES = load_vectors("signed_note.json")
CHECKPOINTS = load_vectors("checkpoints.json")
KEYS = {k["name"]: k for k in NOTES["keys"]}


class SeedSigner:
    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.name = name
        pub = bytes(self._key.verify_key)
        self.key_id = compute_key_id(name, KEY_TYPE_ED25519, pub)
        self.verifier_key = VerifierKey.from_public_key(name, pub)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


def signer(name: str) -> SeedSigner:
    return SeedSigner(name, bytes.fromhex(KEYS[name]["ed25519_seed_hex"]))


@pytest.mark.parametrize("key", NOTES["keys"], ids=lambda k: k["name"])
def test_vkey_roundtrip_and_key_id(key):
    vk = VerifierKey.parse(key["vkey"])
    assert vk.name == key["name"]
    assert vk.key_id.hex() == key["key_id_hex"]
    assert vk.public_key.hex() == key["ed25519_public_hex"]
    assert str(vk) == key["vkey"]
    assert str(VerifierKey.from_public_key(vk.name, vk.public_key)) == key["vkey"]


def test_key_id_preimage():
    key = KEYS["PeterNeumann"]
    pub = bytes.fromhex(key["ed25519_public_hex"])
    preimage = b"PeterNeumann\n\x01" + pub
    assert preimage.hex() == key["key_id_preimage_hex"]
    assert compute_key_id("PeterNeumann", 1, pub).hex() == key["key_id_hex"]


@pytest.mark.parametrize("bad", NOTES["must_reject_vkeys"][:2], ids=lambda b: b["why"])
def test_bad_vkeys_rejected(bad):
    with pytest.raises(MalformedInput):
        VerifierKey.parse(bad["vkey"])


def test_every_vkey_substring_and_mutation_rejected():
    vkey = KEYS["PeterNeumann"]["vkey"]
    for i in range(len(vkey)):
        for j in range(i, len(vkey) + 1):
            if (i, j) == (0, len(vkey)):
                continue
            with pytest.raises(MalformedInput):
                VerifierKey.parse(vkey[i:j])
    for i in range(len(vkey)):
        mutated = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :]
        with pytest.raises(MalformedInput):
            VerifierKey.parse(mutated)


def test_sign_matches_published_bytes_exactly():
    vec = NOTES["signed_notes"][0]
    note = sign_note(vec["text"], [signer("PeterNeumann")])
    assert note == vec["signed_note"].encode("utf-8")
    assert note.hex() == vec["signed_note_hex"]


def test_two_signers_and_unknown_signature_ignored():
    vec = NOTES["signed_notes"][1]
    note = sign_note(vec["text"], [signer("PeterNeumann"), signer("EnochRoot")])
    assert note == vec["signed_note"].encode("utf-8")
    peter = VerifierKey.parse(KEYS["PeterNeumann"]["vkey"])
    parsed, verified = verify_note(note, [peter])
    assert verified == [peter]
    assert len(parsed.signatures) == 2


def test_c2sp_example_verifies():
    vec = NOTES["signed_notes"][2]
    key = VerifierKey.parse(KEYS["example.com/foo"]["vkey"])
    parsed, _ = verify_note(vec["signed_note"].encode(), [key])
    assert parsed.text == vec["text"]


def _reject_cases():
    peter_note = NOTES["signed_notes"][0]["signed_note"]
    line = NOTES["signed_notes"][0]["signature_line"]
    text = NOTES["signed_notes"][0]["text"]
    for case in NOTES["must_reject_notes"]:
        if "note" in case:
            yield case["why"], case["note"].encode("utf-8"), MalformedInput
        elif "note_hex" in case:
            yield case["why"], bytes.fromhex(case["note_hex"]), MalformedInput
    yield "101 signatures", (text + "\n" + line * 101).encode(), MalformedInput
    corrupted = line[:60] + "ABCD" + line[60:]
    yield (
        "corrupted known signature",
        (text + "\n" + corrupted).encode(),
        (SignatureInvalid),
    )
    yield "no trusted key", peter_note.encode(), "no-keys"


@pytest.mark.parametrize(("why", "data", "err"), list(_reject_cases()))
def test_bad_notes_rejected(why, data, err):
    peter = VerifierKey.parse(KEYS["PeterNeumann"]["vkey"])
    if err == "no-keys":
        with pytest.raises(SignatureInvalid):
            verify_note(data, [])
        return
    with pytest.raises(VerificationError):
        verify_note(data, [peter])


def test_corrupted_signature_detail():
    line = NOTES["signed_notes"][0]["signature_line"]
    text = NOTES["signed_notes"][0]["text"]
    sig = parse_note((text + "\n" + line).encode()).signatures[0]
    flipped = bytes([sig.signature[0] ^ 1]) + sig.signature[1:]
    from verifier.note import Note, NoteSignature, format_note

    bad = format_note(Note(text, (NoteSignature(sig.name, sig.key_id, flipped),)))
    peter = VerifierKey.parse(KEYS["PeterNeumann"]["vkey"])
    with pytest.raises(SignatureInvalid, match="PeterNeumann"):
        verify_note(bad, [peter])


def _valid_checkpoints():
    for cp in CHECKPOINTS["checkpoints"]:
        vkey = cp.get("vkey") or cp.get("vkey_derived")
        if cp.get("expect") == "valid" and vkey:
            yield cp, vkey


@pytest.mark.parametrize(
    ("cp", "vkey"), list(_valid_checkpoints()), ids=lambda x: str(x)[:30]
)
def test_real_checkpoints_verify(cp, vkey):
    """sum.golang.org and Rekor v2 (Ed25519), Rekor v1 (ECDSA P-256), derived."""
    key = VerifierKey.parse(vkey)
    checkpoint, _ = verify_checkpoint(cp["note"].encode(), key, cp["origin"])
    assert checkpoint.size == cp["tree_size"]
    if "root_hex" in cp:
        assert checkpoint.root_hash.hex() == cp["root_hex"]
    with pytest.raises(SignatureInvalid):
        verify_checkpoint(
            cp["note"].encode(), key, "Go rocks but I might have the wrong ID"
        )


def test_real_checkpoint_bit_flips_rejected():
    cp = CHECKPOINTS["checkpoints"][0]
    key = VerifierKey.parse(cp["vkey"])
    note = cp["note"].encode()
    body_len = len(cp["note"].split("\n\n")[0]) + 1
    for i in range(body_len):
        mutated = bytearray(note)
        mutated[i] ^= 0x01
        with pytest.raises(VerificationError):
            verify_checkpoint(bytes(mutated), key, cp["origin"])


def test_c2sp_example_checkpoint_parses():
    cp = next(c for c in CHECKPOINTS["checkpoints"] if c["id"] == "c2sp-example")
    note = parse_note(cp["note"].encode())
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size) == (cp["origin"], cp["tree_size"])
    assert note.signatures[0].key_id.hex() == "033de0ae"


def test_format_tree_golden_and_rejects():
    fmt = CHECKPOINTS["sumdb_tlog_formats"]["format_tree"]
    import base64

    cp = Checkpoint(
        "go.sum database tree", fmt["tree_size"], base64.b64decode(fmt["hash_b64"])
    )
    assert cp.to_text() == fmt["golden"]
    assert parse_checkpoint(fmt["golden"]) == cp
    for bad in CHECKPOINTS["sumdb_tlog_formats"]["must_reject_trees"]:
        try:
            parsed = parse_checkpoint(bad)
        except MalformedInput:
            continue
        # The first reject case differs only in origin: it must not match the pin.
        assert parsed.origin != "go.sum database tree"


@pytest.mark.parametrize(
    "text",
    [
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
        "o\n1\nAAAA\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\n",
        "o\n 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n9223372036854775808\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_malformed_checkpoint_bodies(text):
    with pytest.raises(MalformedInput):
        parse_checkpoint(text)
