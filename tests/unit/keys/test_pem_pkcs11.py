"""PEM import/export and the PKCS#11 log signer on a real SoftHSM2 token."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keys import Ed25519Signer, KeyLoadError
from keys.pem import (
    private_key_to_pem,
    public_key_from_pem,
    public_key_to_pem,
    signer_from_pem,
)
from verifier.checkpoint import verify_checkpoint
from verifier.dsse import key_id, sign_envelope, verify_envelope

SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"
SEED = bytes(range(1, 33))


def test_pem_roundtrip_encrypted_and_plain():
    signer = Ed25519Signer("k", SEED)
    encrypted = private_key_to_pem(signer, b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    back = signer_from_pem(encrypted, b"correct horse", "k")
    assert back.public_key == signer.public_key
    plain = private_key_to_pem(signer, None)
    assert b"BEGIN PRIVATE KEY" in plain
    assert signer_from_pem(plain, None, "k").public_key == signer.public_key
    public = public_key_to_pem(signer.public_key)
    assert public_key_from_pem(public) == signer.public_key
    assert public_key_from_pem(plain) == signer.public_key


def test_pem_of_an_unknown_key_type_is_refused():
    # Found by fuzzing (tests/fuzz/corpus/pem/crash-*): an OID that is not a
    # key type cryptography knows raised UnsupportedAlgorithm, not KeyLoadError.
    der = bytes.fromhex("302a300506032b7570032100") + bytes(32)  # 1.3.117.112
    body = base64.b64encode(der)
    for kind in (b"PUBLIC KEY", b"PRIVATE KEY"):
        pem = b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, body, kind)
        with pytest.raises(KeyLoadError):
            public_key_from_pem(pem)
        with pytest.raises(KeyLoadError):
            signer_from_pem(pem, None, "k")


def test_pem_of_a_malformed_ed448_key_is_refused():
    # Found by the full fuzzing run (tests/fuzz/corpus/pem/crash-ed448-*): an
    # Ed448 private key whose seed is 32 bytes made OpenSSL fail to set the key
    # up, which cryptography raises as InternalError.
    der = bytes.fromhex("302e020100300506032b657104220420") + bytes(range(32))
    body = base64.b64encode(der)  # 1.3.101.113 (Ed448), a 32-byte seed
    pem = b"-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % body
    with pytest.raises(KeyLoadError):
        public_key_from_pem(pem)
    with pytest.raises(KeyLoadError):
        signer_from_pem(pem, None, "k")


def test_pem_errors_never_echo_secrets():
    signer = Ed25519Signer("k", SEED)
    encrypted = private_key_to_pem(signer, b"correct horse")
    with pytest.raises(KeyLoadError) as err:
        signer_from_pem(encrypted, b"wrong horse", "k")
    assert "horse" not in str(err.value)
    assert SEED.hex() not in str(err.value)
    rsa_pem = rsa.generate_private_key(
        public_exponent=65537, key_size=2048
    ).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyLoadError, match="not Ed25519"):
        signer_from_pem(rsa_pem, None, "k")
    with pytest.raises(KeyLoadError):
        public_key_from_pem(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_reads_our_pem_and_we_read_openssl_keys(tmp_path):
    signer = Ed25519Signer("k", SEED)
    ours = tmp_path / "ours.pem"
    ours.write_bytes(private_key_to_pem(signer, None))
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(ours), "-pubout"],
        capture_output=True,
        check=True,
    ).stdout
    assert public_key_from_pem(public) == signer.public_key
    theirs = tmp_path / "theirs.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(theirs)], check=True
    )
    imported = signer_from_pem(theirs.read_bytes(), None, "imported")
    their_public = subprocess.run(
        ["openssl", "pkey", "-in", str(theirs), "-pubout"],
        capture_output=True,
        check=True,
    ).stdout
    assert public_key_from_pem(their_public) == imported.public_key


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory):
    """A throwaway SoftHSM2 token, created here and deleted afterwards."""
    if not Path(SOFTHSM_LIB).exists() or shutil.which("softhsm2-util") is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is required in CI (apt install softhsm2)")
        pytest.skip("SoftHSM2 not installed")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "saksi-test",
            "--pin",
            "246810",
            "--so-pin",
            "13579",
        ],
        check=True,
        capture_output=True,
        env={**os.environ},
    )
    from keys.pkcs11 import generate_token_key

    public = generate_token_key(SOFTHSM_LIB, "saksi-test", "246810", "log-key")
    yield public
    subprocess.run(
        ["softhsm2-util", "--delete-token", "--token", "saksi-test"],
        capture_output=True,
        env={**os.environ},
    )
    shutil.rmtree(root, ignore_errors=True)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def test_pkcs11_signer_signs_checkpoints_and_envelopes(softhsm):
    from keys.pkcs11 import Pkcs11Signer
    from ledger.publisher import CheckpointPublisher
    from verifier.rfc6962 import EMPTY_ROOT

    origin = "hsm.saksi.example/log"
    with Pkcs11Signer(SOFTHSM_LIB, "saksi-test", "246810", "log-key", origin) as signer:
        assert signer.public_key == softhsm
        note = CheckpointPublisher(origin, signer, signer.verifier_key).sign(
            0, EMPTY_ROOT
        )
        checkpoint, _ = verify_checkpoint(note, signer.verifier_key, origin)
        assert checkpoint.size == 0
        envelope = sign_envelope("t", b"payload", [signer])
        assert verify_envelope(envelope, {key_id(softhsm): softhsm}.get) == (
            signer.keyid,
        )
        assert "246810" not in repr(signer)


def test_pkcs11_ledger_appends_with_the_token_key(softhsm, tmp_path):
    from keys.pkcs11 import Pkcs11Signer
    from ledger.ledger import Ledger
    from tests.conftest import FixedClock, create_log
    from verifier.checkpoint import verify_inclusion_in_checkpoint

    origin = "hsm.saksi.example/log"
    with Pkcs11Signer(SOFTHSM_LIB, "saksi-test", "246810", "log-key", origin) as signer:
        storage = create_log(f"sqlite:///{tmp_path / 'log.db'}", signer, origin)
        ledger = Ledger.of_entries(
            storage, signer, signer.verifier_key, origin, clock=FixedClock()
        )
        ledger.start()
        try:
            receipts = ledger.append_many([b"entry %d" % i for i in range(300)])
            for r in receipts[::37]:
                verify_inclusion_in_checkpoint(
                    r.checkpoint,
                    signer.verifier_key,
                    origin,
                    r.index,
                    r.leaf_hash,
                    r.proof,
                )
        finally:
            ledger.close()
            storage.close()


def test_pkcs11_wrong_pin_and_missing_key_fail_clearly(softhsm):
    from keys.pkcs11 import Pkcs11Signer

    with pytest.raises(KeyLoadError) as err:
        Pkcs11Signer(SOFTHSM_LIB, "saksi-test", "999999", "log-key", "x")
    assert "999999" not in str(err.value)
    with pytest.raises(KeyLoadError):
        Pkcs11Signer(SOFTHSM_LIB, "saksi-test", "246810", "no-such-key", "x")
    with pytest.raises(KeyLoadError):
        Pkcs11Signer(SOFTHSM_LIB, "no-such-token", "246810", "log-key", "x")
