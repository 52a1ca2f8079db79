"""Strict record-body schemas: a small declarative type language and its checker.

Every record names a versioned schema (``keys.grant/v1``); its body must match that
schema exactly: unknown members, wrong types, integers out of range and oversized
strings are refused, each with the path of the first offending value. The same
definitions run on the server (admission) and in the verifier (audit replay), so
they are data, not code paths. A schema also says how its subjects are spelled and
which part of the subject is the region the record is about (for scope checks).

Deliberately absent: defaults, coercion, floats, and optional members that may also
be null (a member is either required or may be left out).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier.errors import MalformedInput
from verifier.jcs import MAX_SAFE_INTEGER

__all__ = [
    "Bool",
    "Enum",
    "Hex",
    "Int",
    "List",
    "Map",
    "Nullable",
    "Obj",
    "Schema",
    "SchemaViolation",
    "Str",
    "Type",
    "check",
]


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class SchemaViolation(MalformedInput):
    """A value does not match its schema.

    Attributes:
        path: where, e.g. ``body.votes[3].count``.
    """

    cause = "schema-violation"

    def __init__(self, path: str, message: str, cause: str | None = None) -> None:
        super().__init__(f"{path}: {message}", cause=cause)
        self.path = path


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Str:
    """A string of ``min_len``..``max_len`` characters, maybe matching a regex."""

    max_len: int
    min_len: int = 0
    pattern: str | None = None

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, str):
            raise SchemaViolation(path, f"expected a string, found {_kind(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise SchemaViolation(
                path,
                f"expected {self.min_len} to {self.max_len} characters, "
                f"found {len(value)}",
            )
        if self.pattern is not None and not _regex(self.pattern).fullmatch(value):
            raise SchemaViolation(path, f"expected a value matching {self.pattern}")


@dataclass(frozen=True, slots=True)
class Int:
    """An integer in [minimum, maximum] (never a boolean, never a float)."""

    minimum: int = 0
    maximum: int = MAX_SAFE_INTEGER

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if type(value) is int and self.minimum <= value <= self.maximum:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaViolation(path, f"expected an integer, found {_kind(value)}")
        if not self.minimum <= value <= self.maximum:
            raise SchemaViolation(
                path,
                f"expected an integer from {self.minimum} to {self.maximum}, "
                f"found {value}",
                cause="integer-out-of-range",
            )


@dataclass(frozen=True, slots=True)
class Bool:
    """true or false."""

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, bool):
            raise SchemaViolation(path, f"expected a boolean, found {_kind(value)}")


@dataclass(frozen=True, slots=True)
class Enum:
    """One of a fixed set of strings."""

    values: tuple[str, ...]

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, str) or value not in self.values:
            shown = value if isinstance(value, str) else _kind(value)
            raise SchemaViolation(
                path, f"expected one of {', '.join(self.values)}; found {shown!r}"
            )


@dataclass(frozen=True, slots=True)
class Hex:
    """Lowercase hex of exactly ``length`` characters (64 for a SHA-256)."""

    length: int = 64

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if (
            not isinstance(value, str)
            or len(value) != self.length
            or not re.fullmatch("[0-9a-f]*", value)
        ):
            raise SchemaViolation(
                path, f"expected {self.length} lowercase hex characters"
            )


@dataclass(frozen=True, slots=True)
class Nullable:
    """null, or a value of ``inner``."""

    inner: Type

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if value is not None:
            self.inner.check(value, path)


@dataclass(frozen=True, slots=True)
class List:
    """A list of ``item`` values with ``min_items``..``max_items`` entries."""

    item: Type
    max_items: int
    min_items: int = 0
    unique: bool = False

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, list):
            raise SchemaViolation(path, f"expected a list, found {_kind(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise SchemaViolation(
                path,
                f"expected {self.min_items} to {self.max_items} items, "
                f"found {len(value)}",
            )
        for position, item in enumerate(value):
            self.item.check(item, f"{path}[{position}]")
        if self.unique:
            seen: list[object] = []
            for position, item in enumerate(value):
                if item in seen:
                    raise SchemaViolation(f"{path}[{position}]", "repeats an item")
                seen.append(item)


@dataclass(frozen=True, slots=True)
class Map:
    """An object used as a dictionary: keys match ``key``, values are ``value``."""

    key: Str
    value: Type
    max_items: int
    min_items: int = 0

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, dict):
            raise SchemaViolation(path, f"expected an object, found {_kind(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise SchemaViolation(
                path,
                f"expected {self.min_items} to {self.max_items} members, "
                f"found {len(value)}",
            )
        key, kind = self.key, self.value
        if isinstance(kind, Int) and key.pattern is not None:
            # The common case (votes by candidate id) in one tight loop; anything
            # unusual goes through the general checks for the exact error.
            match = _regex(key.pattern).fullmatch
            low, high = kind.minimum, kind.maximum
            for name, item in value.items():
                if not (
                    type(name) is str
                    and key.min_len <= len(name) <= key.max_len
                    and match(name)
                    and type(item) is int
                    and low <= item <= high
                ):
                    key.check(name, f"{path} key {name[:40]!r}")
                    kind.check(item, f"{path}.{name}")
            return
        for name, item in value.items():
            key.check(name, f"{path} key {name[:40]!r}")
            kind.check(item, f"{path}.{name}")


@dataclass(frozen=True, slots=True)
class Obj:
    """An object with exactly these members (``optional`` ones may be left out)."""

    fields: Mapping[str, Type]
    optional: frozenset[str] = field(default_factory=frozenset)

    def check(self, value: object, path: str) -> None:
        """Raise SchemaViolation unless ``value`` fits."""
        if not isinstance(value, dict):
            raise SchemaViolation(path, f"expected an object, found {_kind(value)}")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise SchemaViolation(
                path, f"unknown member {unknown[0][:40]!r}", cause="unknown-field"
            )
        for name, kind in self.fields.items():
            if name in value:
                kind.check(value[name], f"{path}.{name}")
            elif name not in self.optional:
                raise SchemaViolation(path, f"missing member {name!r}")


Type = Str | Int | Bool | Enum | Hex | Nullable | List | Map | Obj


@dataclass(frozen=True, slots=True)
class Schema:
    """A versioned record schema.

    Attributes:
        name: ``family.kind/vN``; a changed definition is a new version.
        body: the body's type.
        subject: full-match regex for the subject; a named group ``region``, if
            present, is the region code the record is about (scope checks).
        max_age_days: how long after ``issued_at`` a record may still be logged
            (offline signing: days for tallies).
        description: one line for people.
    """

    name: str
    body: Obj
    subject: str
    max_age_days: int = 30
    description: str = ""

    def region_of(self, subject: str) -> str | None:
        """The region code named by ``subject``: "" is national, None is none.

        Raises:
            SchemaViolation: the subject is not spelled as this schema requires.
        """
        match = re.fullmatch(self.subject, subject)
        if match is None:
            raise SchemaViolation(
                "subject", f"expected a subject matching {self.subject}"
            )
        if "region" not in match.groupdict():
            return None
        return match.group("region") or ""


def check(schema: Schema, body: Any, subject: str) -> None:  # noqa: ANN401
    """Check a record's subject and body against ``schema``.

    Raises:
        SchemaViolation: the first mismatch, with its path.
    """
    schema.region_of(subject)
    if not _accepts(schema.body)(body):
        schema.body.check(body, "body")  # raises with the path of the mismatch


# Each type also compiles to a predicate without paths or messages: bodies that
# fit (nearly all) are accepted by it alone, anything else goes through
# ``check`` for the exact error. A predicate may be stricter than ``check``
# (exact ``type`` tests), never more lenient; a property test holds them together.
Accepts = Callable[[object], bool]
_COMPILED: dict[int, tuple[Type, Accepts]] = {}
_SEEN_BOUND = 4096


def _accepts(kind: Type) -> Accepts:
    """The compiled predicate of ``kind`` (cached per type object)."""
    cached = _COMPILED.get(id(kind))
    if cached is not None and cached[0] is kind:
        return cached[1]
    predicate = _compile(kind)
    _COMPILED[id(kind)] = (kind, predicate)
    return predicate


def _compile(kind: Type) -> Accepts:
    if isinstance(kind, Str):
        low, high = kind.min_len, kind.max_len
        if kind.pattern is None:
            return lambda v: type(v) is str and low <= len(v) <= high
        match = _regex(kind.pattern).fullmatch
        # Names repeat across records (candidate and party IDs, stages): the
        # strings already accepted are remembered, up to a bound.
        seen: set[str] = set()

        def accepts_str(v: object) -> bool:
            if type(v) is str and v in seen:
                return True
            if type(v) is str and low <= len(v) <= high and match(v) is not None:
                if len(seen) < _SEEN_BOUND:
                    seen.add(v)
                return True
            return False

        return accepts_str
    if isinstance(kind, Int):
        low, high = kind.minimum, kind.maximum
        return lambda v: type(v) is int and low <= v <= high
    if isinstance(kind, Bool):
        return lambda v: type(v) is bool
    if isinstance(kind, Enum):
        values = frozenset(kind.values)
        return lambda v: type(v) is str and v in values
    if isinstance(kind, Hex):
        length, hex_match = kind.length, _regex("[0-9a-f]*").fullmatch
        return lambda v: (
            type(v) is str and len(v) == length and hex_match(v) is not None
        )
    if isinstance(kind, Nullable):
        inner = _compile(kind.inner)
        return lambda v: v is None or inner(v)
    if isinstance(kind, List) and isinstance(kind.item, Int):
        return _compile_int_list(kind, kind.item)
    if isinstance(kind, List):
        item, low, high, unique = (
            _compile(kind.item),
            kind.min_items,
            kind.max_items,
            kind.unique,
        )
        return lambda v: (
            type(v) is list
            and low <= len(v) <= high
            and all(item(x) for x in v)
            and (not unique or all(x not in v[:i] for i, x in enumerate(v)))
        )
    if isinstance(kind, Map) and isinstance(kind.value, Int):
        return _compile_counts(kind, kind.value)
    if isinstance(kind, Map):
        key, value = _compile(kind.key), _compile(kind.value)
        low, high = kind.min_items, kind.max_items
        return lambda v: (
            type(v) is dict
            and low <= len(v) <= high
            and all(key(k) and value(x) for k, x in v.items())
        )
    fields = {name: _compile(t) for name, t in kind.fields.items()}
    names = frozenset(fields)
    required = names - kind.optional
    members = tuple(fields.items())
    return lambda v: (
        type(v) is dict
        and v.keys() <= names
        and required <= v.keys()
        and all(accepts(v[n]) for n, accepts in members if n in v)
    )


_INT_ONLY = frozenset({int})


def _compile_counts(kind: Map, count: Int) -> Accepts:
    """A map of names to integers (votes by candidate), checked in bulk.

    The values' exact types, their least and greatest, and whether every name
    was accepted before are each one pass in C; only new names go through the
    key's own predicate. Forms carry hundreds of these counts.
    """
    key, low, high = _compile(kind.key), kind.min_items, kind.max_items
    least, most = count.minimum, count.maximum
    known: set[str] = set()  # names accepted already, up to a bound

    def accepts_counts(v: object) -> bool:
        if type(v) is not dict or not low <= len(v) <= high:
            return False
        if not v:
            return True
        values = v.values()
        if not _INT_ONLY.issuperset(map(type, values)):
            return False
        if min(values) < least or max(values) > most:
            return False
        if not known.issuperset(v):
            if not all(key(k) for k in v):
                return False
            if len(known) + len(v) <= _SEEN_BOUND:
                known.update(v)
        return True

    return accepts_counts


def _compile_int_list(kind: List, number: Int) -> Accepts:
    """A list of integers (a village's station numbers), checked in bulk.

    Exact types, least and greatest, and uniqueness (as a set: integers only)
    are each one pass in C.
    """
    low, high, unique = kind.min_items, kind.max_items, kind.unique
    least, most = number.minimum, number.maximum

    def accepts_ints(v: object) -> bool:
        if type(v) is not list or not low <= len(v) <= high:
            return False
        if not v:
            return True
        if not _INT_ONLY.issuperset(map(type, v)):
            return False
        if min(v) < least or max(v) > most:
            return False
        return not unique or len(set(v)) == len(v)

    return accepts_ints
