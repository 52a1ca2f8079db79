"""RFC 8785 JSON Canonicalization Scheme, for the integer-only JSON that Saksi signs.

Canonical form: object members sorted by the UTF-16 code units of their names, no
insignificant whitespace, strings with the minimal escaping of RFC 8785 section
3.2.2.2 (quote and backslash escaped, the five short control escapes, other
controls as lowercase six-character unicode escapes, everything else as UTF-8),
null, true and false as literals.

Deliberately narrower than RFC 8785: numbers must be integers within +-(2**53 - 1),
the range where ECMAScript's number serialization is the plain decimal, so no
floating-point formatting is needed (records count votes; they never need a
fraction). Parsing is I-JSON (RFC 7493): UTF-8, no duplicate member names, no lone
surrogates, bounded depth and size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from verifier.errors import MalformedInput

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "canonicalize",
    "parse_canonical",
    "parse_json",
]

MAX_SAFE_INTEGER = (1 << 53) - 1
MAX_DEPTH = 32

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_ESCAPE_TABLE = {
    **{code: f"\\u{code:04x}" for code in range(0x20)},
    **{ord(k): v for k, v in _ESCAPES.items()},
}


def _string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedInput("JSON string holds a lone surrogate") from e
    return '"' + value.translate(_ESCAPE_TABLE) + '"'


def _name_order(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _emit(value: object, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedInput(f"JSON nested deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise MalformedInput(
                f"integer {value} is outside +-(2**53 - 1), the exact JSON range"
            )
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        names = list(value)
        for name in names:
            if not isinstance(name, str):
                raise MalformedInput(f"JSON member names are strings, found {name!r}")
        for position, name in enumerate(sorted(names, key=_name_order)):
            if position:
                out.append(",")
            out.append(_string(name))
            out.append(":")
            _emit(value[name], out, depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _emit(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, float):
        raise MalformedInput(f"only integers are allowed in signed JSON, found {value}")
    else:
        raise MalformedInput(f"not a JSON value: {type(value).__name__}")


def canonicalize(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``.

    Raises:
        MalformedInput: a float, an integer outside +-(2**53 - 1), a non-string
            member name, a lone surrogate, nesting deeper than ``MAX_DEPTH``, or
            a value that is not JSON.
    """
    fast = _canonicalize_ascii(value)
    if fast is not None:
        return fast
    out: list[str] = []
    _emit(value, out, 0)
    return "".join(out).encode("utf-8")


def _canonicalize_ascii(value: object) -> bytes | None:
    """The C encoder's bytes for ``value`` when they are provably canonical.

    They are when they are ASCII and parse back (through the strict fast path:
    integers in range, no floats, shallow enough) to a value equal to
    ``value``. What the encoder writes differently from ``_emit`` never parses
    back equal: a tuple (a list comes back), a member name that is not a string
    (a string comes back), a float (refused). Otherwise None, and ``_emit``
    decides.
    """
    try:
        text = _ASCII_CANONICAL.encode(value)
    except (TypeError, ValueError, RecursionError):
        return None
    if not text.isascii():
        return None
    data = text.encode("ascii")
    parsed = _parse_canonical_ascii(data)
    if parsed is None and value is not None:
        return None
    return data if parsed == value else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, item in pairs:
        if name in result:
            raise MalformedInput(
                f"duplicate JSON member name {name[:40]!r}", cause="malformed-json"
            )
        result[name] = item
    return result


def _no_float(text: str) -> int:
    raise MalformedInput(f"only integers are allowed, found {text[:40]}")


def _no_constant(text: str) -> None:
    raise MalformedInput(f"not JSON: {text}", cause="malformed-json")


def _integer(text: str) -> int:
    # Refuse huge literals by length before int() spends time on them.
    value = int(text) if len(text) <= 17 else MAX_SAFE_INTEGER + 1
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise MalformedInput(
            f"integer {text[:20]} is outside +-(2**53 - 1)",
            cause="integer-out-of-range",
        )
    return value


def parse_json(data: bytes, max_size: int, what: str = "JSON") -> Any:  # noqa: ANN401
    """Parse I-JSON strictly (no canonical-form check).

    Raises:
        MalformedInput: over ``max_size`` bytes, not UTF-8, not JSON, a duplicate
            member name, a float, NaN or Infinity, or nested too deep.
    """
    if len(data) > max_size:
        raise MalformedInput(
            f"{what}: {len(data)} bytes exceeds {max_size}", cause="too-large"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedInput(f"{what}: not UTF-8", cause="malformed-json") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_int=_integer,
            parse_constant=_no_constant,
        )
    except MalformedInput as e:
        raise MalformedInput(f"{what}: {e}", cause=e.cause) from e
    except RecursionError as e:
        raise MalformedInput(f"{what}: nested too deep", cause="malformed-json") from e
    except ValueError as e:
        raise MalformedInput(
            f"{what}: not valid JSON ({e.args[0][:80]})", cause="malformed-json"
        ) from e
    _check_strings_and_depth(value, what)
    return value


def _check_strings_and_depth(value: object, what: str) -> None:
    # Depth, and I-JSON's rule that strings are Unicode (no lone surrogates).
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedInput(
                f"{what}: nested deeper than {MAX_DEPTH} levels", cause="malformed-json"
            )
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise MalformedInput(
                    f"{what}: a string holds a lone surrogate", cause="malformed-json"
                ) from e


# For ASCII text, RFC 8785's form is what the standard library's C encoder writes
# with these options: member names sorted by code point (the same order as by
# UTF-16 code units while every name is in the Basic Multilingual Plane, as all
# ASCII is), the same minimal escapes (lowercase \u00xx for other controls) and
# integers as plain decimals. Anything else takes the strict path below.
_ASCII_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def _parse_canonical_ascii(data: bytes) -> Any:  # noqa: ANN401
    """The value of canonical ASCII JSON ``data``, or None to take the strict path.

    A fast path only: it answers None for anything it does not accept outright
    (non-ASCII, possibly deep, duplicate names, floats, lone surrogates, not
    canonical), and ``parse_canonical`` then decides with the strict parser.
    """
    if not data.isascii():
        return None
    # Integers of at most 15 digits are inside +-(2**53 - 1): the C parser reads
    # them itself, and only text with a longer digit run (in a number or a
    # string) pays for the range check in Python.
    hook = _integer if _has_long_digit_run(data) else None
    try:
        value = json.loads(
            data, parse_float=_no_float, parse_int=hook, parse_constant=_no_constant
        )
        # Few brackets (counting any inside strings) cannot nest deeper than
        # MAX_DEPTH; otherwise measure the nesting on the text.
        if data.count(b"[") + data.count(b"{") > MAX_DEPTH and (
            _nesting(data) > MAX_DEPTH
        ):
            return None
        text = _ASCII_CANONICAL.encode(value)
        # A dropped duplicate name or a re-escaped string changes the text, and
        # a lone surrogate (written as an escape) cannot come back as ASCII.
        if not text.isascii() or text.encode("ascii") != data:
            return None
    except (ValueError, RecursionError, TypeError):
        return None  # MalformedInput is a ValueError: the strict path explains
    return value


_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))  # digit -> "0"
_SIXTEEN_DIGITS = b"0" * 16
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def _has_long_digit_run(data: bytes) -> bool:
    """Does ``data`` hold 16 digits in a row (anywhere, strings included)?"""
    return _SIXTEEN_DIGITS in data.translate(_DIGITS)


def _nesting(data: bytes) -> int:
    """How deep the brackets of valid JSON ``data`` nest (MAX_DEPTH + 1: deeper).

    Without backslashes, the quotes of valid JSON alternate between opening and
    closing strings, so every other piece between quotes is outside strings.
    Each pass then removes the innermost pairs, one level at a time. A value
    nested N brackets deep sits at most at depth N (the root is 0). Text with
    escapes answers MAX_DEPTH + 1 (the caller then takes the strict path).
    """
    if b"\\" in data:
        return MAX_DEPTH + 1
    brackets = b"".join(data.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    for depth in range(MAX_DEPTH + 1):
        if not brackets:
            return depth
        brackets = _INNERMOST.sub(b"", brackets)
    return MAX_DEPTH + 1


def parse_canonical(data: bytes, max_size: int, what: str = "JSON") -> Any:  # noqa: ANN401
    """Parse JSON that must already be in RFC 8785 canonical form.

    Raises:
        MalformedInput: anything ``parse_json`` refuses, or bytes that differ from
            the canonical form of what they parse to.
    """
    if len(data) <= max_size:
        fast = _parse_canonical_ascii(data)
        if fast is not None:
            return fast
    value = parse_json(data, max_size, what)
    if canonicalize(value) != data:
        raise MalformedInput(
            f"{what}: not in RFC 8785 canonical form", cause="non-canonical-json"
        )
    return value
