"""Key files encrypted at rest: Argon2id key derivation + XSalsa20-Poly1305 secretbox.

A key file is a small JSON document (format ``saksi-key/v1``) holding the key name,
the public key, the KDF parameters, a random salt and nonce, and the secretbox
ciphertext of the 32-byte Ed25519 seed. The file is written 0600, atomically. A
wrong passphrase and a tampered file fail the same way (the MAC check) and the
error never says more than that.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import os
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from keys.errors import KeyLoadError
from keys.signer import Ed25519Signer

__all__ = [
    "PASSPHRASE_ENV",
    "PASSPHRASE_FILE_ENV",
    "KdfProfile",
    "load_key_file",
    "read_passphrase",
    "write_key_file",
]

FORMAT = "saksi-key/v1"
PASSPHRASE_ENV = "SAKSI_KEY_PASSPHRASE"  # noqa: S105 (a variable name)
PASSPHRASE_FILE_ENV = "SAKSI_KEY_PASSPHRASE_FILE"  # noqa: S105
MAX_KEY_FILE = 4096
MIN_PASSPHRASE = 8


class KdfProfile(enum.Enum):
    """libsodium's Argon2id cost profiles (ops, memory in bytes)."""

    INTERACTIVE = (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
    MODERATE = (
        nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
        nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
    )
    SENSITIVE = (
        nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE,
        nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE,
    )


def _derive(passphrase: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem
        )
    )


def write_key_file(
    path: Path,
    signer: Ed25519Signer,
    passphrase: bytes,
    profile: KdfProfile = KdfProfile.MODERATE,
) -> None:
    """Encrypt ``signer``'s key under ``passphrase`` and write it to ``path`` (0600).

    Raises:
        KeyLoadError: the passphrase is too short or the file already exists.
    """
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyLoadError(f"passphrase must be at least {MIN_PASSPHRASE} bytes")
    ops, mem = profile.value
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = box.encrypt(signer._seed_for_keyfile(), nonce).ciphertext
    doc = {
        "format": FORMAT,
        "name": signer.name,
        "public_key": base64.b64encode(signer.public_key).decode(),
        "kdf": {
            "alg": "argon2id13",
            "opslimit": ops,
            "memlimit": mem,
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": "xsalsa20poly1305",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyLoadError(f"{tmp} exists: remove the stale temporary file") from e
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if path exists: never overwrite a key
    except FileExistsError as e:
        raise KeyLoadError(f"{path} already exists; refusing to overwrite a key") from e
    finally:
        tmp.unlink()


def _b64(doc: dict[str, Any], key: str, size: int | None = None) -> bytes:
    value = doc.get(key)
    if not isinstance(value, str):
        raise KeyLoadError(f"key file: field {key!r} missing")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise KeyLoadError(f"key file: field {key!r} is not base64") from e
    if size is not None and len(raw) != size:
        raise KeyLoadError(f"key file: field {key!r} must be {size} bytes")
    return raw


def load_key_file(path: Path, passphrase: bytes) -> Ed25519Signer:
    """Decrypt a key file and return its signer.

    Raises:
        KeyLoadError: unreadable, malformed, weak parameters, or wrong passphrase.
    """
    try:
        data = path.read_bytes()[: MAX_KEY_FILE + 1]
    except OSError as e:
        raise KeyLoadError(f"cannot read key file {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_FILE:
        raise KeyLoadError(f"key file {path}: larger than {MAX_KEY_FILE} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise KeyLoadError(f"key file {path}: not JSON") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyLoadError(f"key file {path}: expected format {FORMAT!r}")
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("alg") != "argon2id13":
        raise KeyLoadError(f"key file {path}: unsupported key derivation")
    ops, mem = kdf.get("opslimit"), kdf.get("memlimit")
    min_ops, min_mem = KdfProfile.INTERACTIVE.value
    if not isinstance(ops, int) or not isinstance(mem, int):
        raise KeyLoadError(f"key file {path}: bad KDF parameters")
    if ops < min_ops or mem < min_mem or ops > 64 or mem > (4 << 30):
        raise KeyLoadError(f"key file {path}: KDF parameters out of range")
    name = doc.get("name")
    if not isinstance(name, str):
        raise KeyLoadError(f"key file {path}: field 'name' missing")
    salt = _b64(kdf, "salt", nacl.pwhash.argon2id.SALTBYTES)
    nonce = _b64(doc, "nonce", nacl.secret.SecretBox.NONCE_SIZE)
    sealed = _b64(doc, "ciphertext")
    public = _b64(doc, "public_key", 32)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem))
    try:
        seed = box.decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError as e:
        raise KeyLoadError(
            f"key file {path}: wrong passphrase or corrupted file"
        ) from e
    try:
        signer = Ed25519Signer(name, seed)
    except Exception as e:
        raise KeyLoadError(f"key file {path}: invalid key") from e
    if signer.public_key != public:
        raise KeyLoadError(f"key file {path}: public key does not match the secret")
    return signer


def read_passphrase(passphrase_file: Path | None = None) -> bytes:
    """Read the passphrase from a file, ``$SAKSI_KEY_PASSPHRASE_FILE`` or the env.

    Order: an explicit file, then ``SAKSI_KEY_PASSPHRASE_FILE``, then
    ``SAKSI_KEY_PASSPHRASE``. One trailing newline of a file is dropped.

    Raises:
        KeyLoadError: none is set, or the file cannot be read.
    """
    path = passphrase_file
    if path is None and os.environ.get(PASSPHRASE_FILE_ENV):
        path = Path(os.environ[PASSPHRASE_FILE_ENV])
    if path is not None:
        try:
            value = path.read_bytes()
        except OSError as e:
            raise KeyLoadError(
                f"cannot read passphrase file {path}: {e.strerror}"
            ) from e
        return value[:-1] if value.endswith(b"\n") else value
    env = os.environ.get(PASSPHRASE_ENV)
    if not env:
        raise KeyLoadError(
            f"no passphrase: set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}"
        )
    return env.encode("utf-8")
