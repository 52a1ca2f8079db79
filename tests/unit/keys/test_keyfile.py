"""Key files: round trip, wrong passphrase, tampering, no secrets in errors or reprs."""

from __future__ import annotations

import json
import stat

import pytest

from keys import Ed25519Signer, KdfProfile, KeyLoadError, load_key_file, write_key_file
from keys.keyfile import read_passphrase
from tests.helpers import TEST_SEED

PASS = b"correct horse battery"


@pytest.fixture
def key_path(tmp_path):
    path = tmp_path / "log.key"
    write_key_file(
        path, Ed25519Signer("log.example", TEST_SEED), PASS, KdfProfile.INTERACTIVE
    )
    return path


def test_roundtrip_and_mode(key_path):
    signer = load_key_file(key_path, PASS)
    assert signer.public_key == Ed25519Signer("log.example", TEST_SEED).public_key
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert TEST_SEED.hex() not in key_path.read_text()


def test_wrong_passphrase_refused_without_leaking(key_path):
    with pytest.raises(KeyLoadError, match="wrong passphrase") as err:
        load_key_file(key_path, b"not the passphrase")
    assert "not the passphrase" not in str(err.value)


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "public_key"])
def test_tampered_file_refused(key_path, field):
    doc = json.loads(key_path.read_text())
    raw = bytearray(__import__("base64").b64decode(doc[field]))
    raw[0] ^= 1
    doc[field] = __import__("base64").b64encode(bytes(raw)).decode()
    key_path.write_text(json.dumps(doc))
    with pytest.raises(KeyLoadError):
        load_key_file(key_path, PASS)


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[]", b'{"format": "other"}', b"x" * 10_000]
)
def test_malformed_files_refused(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyLoadError):
        load_key_file(path, PASS)


def test_weakened_kdf_refused(key_path):
    doc = json.loads(key_path.read_text())
    doc["kdf"]["memlimit"] = 1024
    key_path.write_text(json.dumps(doc))
    with pytest.raises(KeyLoadError, match="out of range"):
        load_key_file(key_path, PASS)


def test_never_overwrites(key_path):
    with pytest.raises(KeyLoadError, match="already exists"):
        write_key_file(
            key_path, Ed25519Signer.generate("x"), PASS, KdfProfile.INTERACTIVE
        )


def test_repr_and_pickle_hide_the_key():
    signer = Ed25519Signer("log.example", TEST_SEED)
    assert TEST_SEED.hex() not in repr(signer)
    assert "log.example" in repr(signer)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(signer)


def test_passphrase_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("SAKSI_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("SAKSI_KEY_PASSPHRASE_FILE", raising=False)
    with pytest.raises(KeyLoadError, match="SAKSI_KEY_PASSPHRASE"):
        read_passphrase()
    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE", "from-env")
    assert read_passphrase() == b"from-env"
    secret = tmp_path / "pass"
    secret.write_bytes(b"from-file\n")
    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE_FILE", str(secret))
    assert read_passphrase() == b"from-file"


def test_kdf_cost_beyond_the_strongest_profile_refused(key_path):
    # Found writing the key_file fuzz target: a file asking for 64 passes over
    # 4 GiB was accepted, and the loader would spend that before the MAC check.
    max_ops, max_mem = KdfProfile.SENSITIVE.value
    for ops, mem in ((max_ops + 1, max_mem), (max_ops, max_mem + 1), (64, 4 << 30)):
        doc = json.loads(key_path.read_text())
        doc["kdf"]["opslimit"], doc["kdf"]["memlimit"] = ops, mem
        bad = key_path.with_name(f"cost-{ops}-{mem}.key")
        bad.write_text(json.dumps(doc))
        with pytest.raises(KeyLoadError, match="out of range"):
            load_key_file(bad, PASS)


def test_deeply_nested_key_file_refused(tmp_path):
    path = tmp_path / "deep.key"
    path.write_bytes(b"[" * 2500)
    with pytest.raises(KeyLoadError, match="not JSON"):
        load_key_file(path, PASS)
