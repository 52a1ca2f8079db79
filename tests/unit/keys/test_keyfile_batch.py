"""Key file batches: ordinary key files, one Argon2id derivation for them all."""

from __future__ import annotations

import json
import pickle
import stat
import threading

import pytest

import keys.keyfile as keyfile
from keys import Ed25519Signer, KdfProfile, KeyLoadError, load_key_file, write_key_file
from keys.keyfile import KeyFileBatch

PASS = b"correct horse battery"


@pytest.fixture
def derivations(monkeypatch):
    """How many times Argon2id runs."""
    count = [0]
    real = keyfile._derive

    def counted(*args):
        count[0] += 1
        return real(*args)

    monkeypatch.setattr(keyfile, "_derive", counted)
    return count


def _signers(n):
    return [Ed25519Signer(f"region-{i}", bytes([i + 1]) * 32) for i in range(n)]


def test_a_batch_derives_once_and_writes_ordinary_key_files(tmp_path, derivations):
    batch = KeyFileBatch(PASS, KdfProfile.INTERACTIVE)
    signers = _signers(5)
    for i, signer in enumerate(signers):
        batch.write(tmp_path / f"{i}.key", signer)
    assert derivations[0] == 1
    docs = [json.loads((tmp_path / f"{i}.key").read_text()) for i in range(5)]
    # One salt and cost for the batch; a fresh nonce for every file.
    assert len({d["kdf"]["salt"] for d in docs}) == 1
    assert len({d["nonce"] for d in docs}) == 5
    ops, mem = KdfProfile.INTERACTIVE.value
    assert (docs[0]["kdf"]["opslimit"], docs[0]["kdf"]["memlimit"]) == (ops, mem)
    for i, signer in enumerate(signers):
        path = tmp_path / f"{i}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # Each opens alone, at the full cost of its KDF.
        assert load_key_file(path, PASS).public_key == signer.public_key
    assert derivations[0] == 1 + 5


def test_batch_load_derives_once_per_salt(tmp_path, derivations):
    writer = KeyFileBatch(PASS, KdfProfile.INTERACTIVE)
    for i, signer in enumerate(_signers(4)):
        writer.write(tmp_path / f"{i}.key", signer)
    write_key_file(tmp_path / "alone.key", _signers(5)[4], PASS, KdfProfile.INTERACTIVE)
    derivations[0] = 0
    reader = KeyFileBatch(PASS)
    loaded = [reader.load(tmp_path / f"{i}.key") for i in range(4)]
    loaded.append(reader.load(tmp_path / "alone.key"))
    assert [s.public_key for s in loaded] == [s.public_key for s in _signers(5)]
    assert derivations[0] == 2  # the batch's salt, and the lone file's


def test_batch_load_refuses_a_wrong_passphrase_and_tampering(tmp_path):
    KeyFileBatch(PASS, KdfProfile.INTERACTIVE).write(tmp_path / "a.key", _signers(1)[0])
    with pytest.raises(KeyLoadError, match="wrong passphrase"):
        KeyFileBatch(b"another passphrase").load(tmp_path / "a.key")
    doc = json.loads((tmp_path / "a.key").read_text())
    doc["public_key"] = doc["public_key"][::-1]
    (tmp_path / "b.key").write_text(json.dumps(doc))
    with pytest.raises(KeyLoadError):
        KeyFileBatch(PASS).load(tmp_path / "b.key")


def test_batch_never_overwrites_and_refuses_short_passphrases(tmp_path):
    batch = KeyFileBatch(PASS, KdfProfile.INTERACTIVE)
    batch.write(tmp_path / "a.key", _signers(1)[0])
    before = (tmp_path / "a.key").read_bytes()
    with pytest.raises(KeyLoadError, match="refusing to overwrite"):
        batch.write(tmp_path / "a.key", _signers(2)[1])
    assert (tmp_path / "a.key").read_bytes() == before
    with pytest.raises(KeyLoadError, match="at least"):
        KeyFileBatch(b"short")


def test_threads_share_one_derivation(tmp_path, derivations):
    batch = KeyFileBatch(PASS, KdfProfile.INTERACTIVE)
    signers = _signers(16)
    threads = [
        threading.Thread(target=batch.write, args=(tmp_path / f"{i}.key", s))
        for i, s in enumerate(signers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert derivations[0] == 1
    salts = {json.loads(p.read_text())["kdf"]["salt"] for p in tmp_path.iterdir()}
    assert len(salts) == 1


def test_batch_repr_and_pickle_hide_the_passphrase():
    batch = KeyFileBatch(PASS, KdfProfile.INTERACTIVE)
    assert PASS.decode() not in repr(batch)
    with pytest.raises(TypeError):
        pickle.dumps(batch)
