"""Key files encrypted at rest: Argon2id key derivation + XSalsa20-Poly1305 secretbox.

A key file is a small JSON document (format ``saksi-key/v1``) holding the key name,
the public key, the KDF parameters, a random salt and nonce, and the secretbox
ciphertext of the 32-byte Ed25519 seed. The file is written 0600, atomically. A
wrong passphrase and a tampered file fail the same way (the MAC check) and the
error never says more than that. ``KeyFileBatch`` writes and opens many files under
one passphrase with one Argon2id derivation for all of them (see its docstring for
what the files of a batch share).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import os
import threading
from dataclasses import dataclass
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
    "KeyFileBatch",
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
    _check_passphrase(passphrase)
    ops, mem = profile.value
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    _seal(path, signer, _derive(passphrase, salt, ops, mem), salt, ops, mem)


def _check_passphrase(passphrase: bytes) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyLoadError(f"passphrase must be at least {MIN_PASSPHRASE} bytes")


def _seal(
    path: Path, signer: Ed25519Signer, key: bytes, salt: bytes, ops: int, mem: int
) -> None:
    """Seal the seed under ``key`` (derived from ``salt``, ``ops``, ``mem``); write."""
    box = nacl.secret.SecretBox(key)
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


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A key file's fields, checked, before decryption."""

    name: str
    public: bytes
    salt: bytes
    ops: int
    mem: int
    nonce: bytes
    ciphertext: bytes


def _read_sealed(path: Path) -> _Sealed:
    try:
        data = path.read_bytes()[: MAX_KEY_FILE + 1]
    except OSError as e:
        raise KeyLoadError(f"cannot read key file {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_FILE:
        raise KeyLoadError(f"key file {path}: larger than {MAX_KEY_FILE} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise KeyLoadError(f"key file {path}: not JSON") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyLoadError(f"key file {path}: expected format {FORMAT!r}")
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("alg") != "argon2id13":
        raise KeyLoadError(f"key file {path}: unsupported key derivation")
    ops, mem = kdf.get("opslimit"), kdf.get("memlimit")
    min_ops, min_mem = KdfProfile.INTERACTIVE.value
    # No more than the strongest profile writes: a file must not make the
    # loader spend unbounded time and memory before the MAC check can fail.
    max_ops, max_mem = KdfProfile.SENSITIVE.value
    if not isinstance(ops, int) or not isinstance(mem, int):
        raise KeyLoadError(f"key file {path}: bad KDF parameters")
    if ops < min_ops or mem < min_mem or ops > max_ops or mem > max_mem:
        raise KeyLoadError(f"key file {path}: KDF parameters out of range")
    name = doc.get("name")
    if not isinstance(name, str):
        raise KeyLoadError(f"key file {path}: field 'name' missing")
    return _Sealed(
        name,
        _b64(doc, "public_key", 32),
        _b64(kdf, "salt", nacl.pwhash.argon2id.SALTBYTES),
        ops,
        mem,
        _b64(doc, "nonce", nacl.secret.SecretBox.NONCE_SIZE),
        _b64(doc, "ciphertext"),
    )


def _unseal(path: Path, sealed: _Sealed, key: bytes) -> Ed25519Signer:
    box = nacl.secret.SecretBox(key)
    try:
        seed = box.decrypt(sealed.ciphertext, sealed.nonce)
    except nacl.exceptions.CryptoError as e:
        raise KeyLoadError(
            f"key file {path}: wrong passphrase or corrupted file"
        ) from e
    try:
        signer = Ed25519Signer(sealed.name, seed)
    except Exception as e:
        raise KeyLoadError(f"key file {path}: invalid key") from e
    if signer.public_key != sealed.public:
        raise KeyLoadError(f"key file {path}: public key does not match the secret")
    return signer


def load_key_file(path: Path | str, passphrase: bytes) -> Ed25519Signer:
    """Decrypt a key file and return its signer.

    Raises:
        KeyLoadError: unreadable, malformed, weak parameters, or wrong passphrase.
    """
    path = Path(path)
    sealed = _read_sealed(path)
    key = _derive(passphrase, sealed.salt, sealed.ops, sealed.mem)
    return _unseal(path, sealed, key)


class KeyFileBatch:
    """Many key files under one passphrase, for one Argon2id derivation in all.

    ``write`` seals each key under the secretbox key derived once, at the
    profile's cost, from the passphrase and one random salt, with the file's own
    random 24-byte nonce (XSalsa20: random nonces are safe for any number of
    messages under one key). Every file is an ordinary ``saksi-key/v1`` file,
    which ``load_key_file`` opens alone at its full KDF cost, so guessing the
    passphrase costs an attacker exactly what it costs for a single file. What
    the files of a batch share is the salt, so a guess is tried against all of
    them at once; as they share the passphrase, whoever opens one can open them
    all in any case. Keys meant to be opened with different passphrases are not
    one batch.

    ``load`` opens a key file (any: a batch's or one ``write_key_file`` wrote),
    deriving at most once per salt and cost, so the files of one batch cost one
    derivation in all. The derived keys stay in this object until it is dropped;
    it shows nothing in ``repr`` and cannot be pickled.
    """

    __slots__ = ("_derived", "_lock", "_passphrase", "_profile", "_salt")

    _MAX_DERIVED = 64

    def __init__(
        self, passphrase: bytes, profile: KdfProfile = KdfProfile.MODERATE
    ) -> None:
        """A batch under ``passphrase``; new files get ``profile``'s KDF cost.

        Raises:
            KeyLoadError: the passphrase is too short.
        """
        _check_passphrase(passphrase)
        self._passphrase = passphrase
        self._profile = profile
        self._salt: bytes | None = None
        self._derived: dict[tuple[bytes, int, int], bytes] = {}
        self._lock = threading.Lock()

    @property
    def salt(self) -> bytes | None:
        """The salt of the files this batch writes (None before the first)."""
        return self._salt

    def _key(self, salt: bytes, ops: int, mem: int) -> bytes:
        with self._lock:  # one derivation per salt, however many threads ask
            key = self._derived.get((salt, ops, mem))
            if key is None:
                if len(self._derived) >= self._MAX_DERIVED:
                    self._derived.clear()
                key = _derive(self._passphrase, salt, ops, mem)
                self._derived[(salt, ops, mem)] = key
            return key

    def write(self, path: Path, signer: Ed25519Signer) -> None:
        """Write ``signer``'s key to ``path`` (0600, atomic, never overwriting).

        The first call derives the batch's key (the profile's cost); the others
        only encrypt. Safe to call from several threads.

        Raises:
            KeyLoadError: the file already exists.
        """
        ops, mem = self._profile.value
        with self._lock:
            if self._salt is None:
                self._salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            salt = self._salt
        _seal(path, signer, self._key(salt, ops, mem), salt, ops, mem)

    def load(self, path: Path) -> Ed25519Signer:
        """Decrypt a key file with the batch's passphrase (as ``load_key_file``).

        Raises:
            KeyLoadError: unreadable, malformed, weak parameters, or wrong
                passphrase.
        """
        sealed = _read_sealed(path)
        return _unseal(path, sealed, self._key(sealed.salt, sealed.ops, sealed.mem))

    def __repr__(self) -> str:
        return f"KeyFileBatch({self._profile.name.lower()})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a key file batch cannot be pickled")


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
