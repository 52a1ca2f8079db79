"""Strict text encodings shared by the note formats (not public API)."""

from __future__ import annotations

import base64
import binascii
import re

from verifier.errors import MalformedInput

_B64_CHARS = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
_DECIMAL = re.compile(r"\A(0|[1-9][0-9]*)\Z")
MAX_UINT63 = (1 << 63) - 1


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode standard padded base64, refusing any non-canonical spelling.

    Raises:
        MalformedInput: bad characters, bad padding, or non-zero trailing bits.
    """
    if not _B64_CHARS.match(text) or len(text) % 4:
        raise MalformedInput(
            f"{what}: expected canonical base64, found {text[:40]!r}",
            cause="invalid-base64",
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedInput(f"{what}: invalid base64", cause="invalid-base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedInput(
            f"{what}: non-canonical base64 {text[:40]!r}", cause="invalid-base64"
        )
    return raw


def b64encode(raw: bytes) -> str:
    """Standard padded base64 as text."""
    return base64.b64encode(raw).decode("ascii")


def parse_decimal(text: str, what: str, maximum: int = MAX_UINT63) -> int:
    """Parse a decimal with no sign, no leading zeros and no spaces.

    Raises:
        MalformedInput: anything else, or a value above ``maximum``.
    """
    if not _DECIMAL.match(text):
        raise MalformedInput(f"{what}: expected a decimal number, found {text[:40]!r}")
    value = int(text)
    if value > maximum:
        raise MalformedInput(f"{what}: {value} exceeds {maximum}")
    return value


def split_lines_and_note(data: bytes, what: str) -> tuple[list[str], bytes]:
    """(ASCII header lines, the signed note after the first empty line).

    The shape shared by C2SP tlog-proof files and tlog-witness requests.

    Raises:
        MalformedInput: no empty line, nothing after it, or non-ASCII lines.
    """
    head, sep, note = data.partition(b"\n\n")
    if not sep or not note:
        raise MalformedInput(f"{what}: no empty line before the checkpoint")
    try:
        return head.decode("ascii").split("\n"), note
    except UnicodeDecodeError as e:
        raise MalformedInput(
            f"{what}: the lines before the checkpoint must be ASCII"
        ) from e


def parse_hash_lines(lines: list[str], what: str, most: int) -> list[bytes]:
    """Base64 SHA-256 hashes, one a line (a proof), at most ``most`` of them.

    Raises:
        MalformedInput: too many, bad base64, or not 32 bytes.
    """
    if len(lines) > most:
        raise MalformedInput(f"{what}: more than {most} hashes")
    hashes = []
    for n, line in enumerate(lines):
        item = b64decode_strict(line, f"{what} hash {n}")
        if len(item) != 32:
            raise MalformedInput(
                f"{what} hash {n}: expected 32 bytes, found {len(item)}"
            )
        hashes.append(item)
    return hashes
