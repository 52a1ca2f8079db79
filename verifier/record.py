"""Saksi records (the DSSE payload) and log entries (the Merkle leaf), per DESIGN.md.

A record is RFC 8785 canonical JSON with exactly these members: ``schema``,
``subject``, ``revision``, ``prev``, ``issued_at``, ``body``, and ``reason`` (required
from revision 1 on, absent at 0) and ``evidence`` (optional). ``subject`` +
``revision`` + ``prev`` chain each subject's records: revision 0 has ``prev`` null,
revision n has the SHA-256 of revision n-1's payload bytes.

A log entry is canonical ``{"envelope": <DSSE>, "logged_at": <RFC 3339>}``.

This module checks form only. Whether the schema is registered and the body fits it
(``verifier.body_schema``), whether the chain continues the subject's last revision, and
whether the signers may write it, depend on the log's history and are checked where
that history is known.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from verifier._encoding import b64encode
from verifier.dsse import Envelope, EnvelopeSignature, parse_envelope
from verifier.errors import MalformedInput, VerificationError
from verifier.jcs import MAX_SAFE_INTEGER, canonicalize, parse_canonical
from verifier.tile_format import MAX_ENTRY_SIZE

__all__ = [
    "MAX_PAYLOAD_SIZE",
    "RECORD_PAYLOAD_TYPE",
    "Evidence",
    "LogEntry",
    "Record",
    "decode_logged_entry",
    "format_log_entry",
    "format_timestamp",
    "parse_log_entry",
    "parse_record",
    "parse_timestamp",
    "record_payload",
]

RECORD_PAYLOAD_TYPE = "application/vnd.saksi.record+json"
# Base64 grows a payload by 4/3 and up to 16 signatures add about 2.8 KB: a payload
# of this size still fits a log entry of at most 65,535 bytes.
MAX_PAYLOAD_SIZE = 45_000

_MEMBERS = {"schema", "subject", "revision", "prev", "issued_at", "body"}
_OPTIONAL = {"reason", "evidence"}
_SCHEMA_NAME = re.compile(r"\A[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*/v[1-9][0-9]{0,3}\Z")
_SUBJECT = re.compile(r"\A[a-z][a-z0-9_-]*(/[A-Za-z0-9_.:-]{1,80}){1,6}\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_TIMESTAMP = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z\Z"
)
MAX_EVIDENCE = 64


def parse_timestamp(text: object, what: str) -> dt.datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (RFC 3339, UTC, milliseconds).

    Raises:
        MalformedInput: any other spelling, or not a real date and time.
    """
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        raise MalformedInput(
            f"{what}: expected an RFC 3339 UTC time with milliseconds, "
            "like 2024-02-14T13:05:00.000Z"
        )
    year, month, day, hour, minute, second, milli = map(int, match.groups())
    try:
        return dt.datetime(
            year, month, day, hour, minute, second, milli * 1000, tzinfo=dt.UTC
        )
    except ValueError as e:
        raise MalformedInput(f"{what}: {text} is not a real date and time") from e


def format_timestamp(moment: dt.datetime) -> str:
    """``moment`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Evidence:
    """A document behind a record: its SHA-256, media type and a name."""

    sha256: str
    media_type: str
    name: str


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed record, with the exact payload bytes it came from."""

    schema: str
    subject: str
    revision: int
    prev: str | None
    issued_at: str
    body: dict[str, Any]
    reason: str | None
    evidence: tuple[Evidence, ...]
    payload: bytes

    @property
    def payload_hash(self) -> str:
        """Hex SHA-256 of the payload bytes: what the next revision's prev names."""
        return hashlib.sha256(self.payload).hexdigest()


def _evidence(value: object) -> tuple[Evidence, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_EVIDENCE:
        raise MalformedInput(f"record evidence: expected 1 to {MAX_EVIDENCE} items")
    items = []
    for position, item in enumerate(value):
        what = f"record evidence[{position}]"
        if not isinstance(item, dict) or set(item) != {"sha256", "media_type", "name"}:
            raise MalformedInput(f"{what}: expected sha256, media_type and name")
        sha, media, name = item["sha256"], item["media_type"], item["name"]
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise MalformedInput(f"{what}.sha256: expected 64 lowercase hex")
        if not isinstance(media, str) or not re.fullmatch(
            r"[a-z]+/[A-Za-z0-9.+-]{1,100}", media
        ):
            raise MalformedInput(f"{what}.media_type: expected a media type")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise MalformedInput(f"{what}.name: expected 1 to 200 characters")
        items.append(Evidence(sha, media, name))
    return tuple(items)


def parse_record(payload: bytes) -> Record:
    """Parse and check the form of a record payload.

    Raises:
        MalformedInput: over ``MAX_PAYLOAD_SIZE``, not canonical JSON, a member
            missing or unknown, or a member of the wrong form (see module doc).
    """
    raw = parse_canonical(payload, MAX_PAYLOAD_SIZE, "record")
    if not isinstance(raw, dict):
        raise MalformedInput("record: expected a JSON object")
    members = set(raw)
    if not members >= _MEMBERS or not members <= _MEMBERS | _OPTIONAL:
        missing = sorted(_MEMBERS - members)
        unknown = sorted(members - _MEMBERS - _OPTIONAL)
        raise MalformedInput(
            "record: "
            + "; ".join(
                ([f"missing {missing}"] if missing else [])
                + ([f"unknown member {unknown[0][:40]!r}"] if unknown else [])
            )
        )
    schema, subject = raw["schema"], raw["subject"]
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise MalformedInput("record schema: expected a name like results.tally/v1")
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise MalformedInput(
            "record subject: expected a path like results/ppwp/3171011001001"
        )
    revision = raw["revision"]
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise MalformedInput("record revision: expected an integer")
    if not 0 <= revision <= MAX_SAFE_INTEGER:
        raise MalformedInput(f"record revision: {revision} is out of range")
    prev = raw["prev"]
    if revision == 0 and prev is not None:
        raise MalformedInput("record prev: must be null at revision 0")
    if revision > 0 and (not isinstance(prev, str) or not _HEX64.match(prev)):
        raise MalformedInput(
            "record prev: expected the hex SHA-256 of the previous revision's payload"
        )
    parse_timestamp(raw["issued_at"], "record issued_at")
    body = raw["body"]
    if not isinstance(body, dict):
        raise MalformedInput("record body: expected a JSON object")
    reason = raw.get("reason")
    if revision > 0:
        if not isinstance(reason, str) or not 1 <= len(reason) <= 2000:
            raise MalformedInput(
                "record reason: revision > 0 needs a reason of 1 to 2,000 characters"
            )
    elif "reason" in raw:
        raise MalformedInput("record reason: revision 0 supersedes nothing")
    evidence = _evidence(raw["evidence"]) if "evidence" in raw else ()
    return Record(
        schema,
        subject,
        revision,
        prev,
        raw["issued_at"],
        body,
        reason,
        evidence,
        payload,
    )


def record_payload(
    *,
    schema: str,
    subject: str,
    revision: int,
    prev: str | None,
    issued_at: str,
    body: dict[str, Any],
    reason: str | None = None,
    evidence: tuple[Evidence, ...] = (),
) -> bytes:
    """Build the canonical payload of a record (checked by ``parse_record``).

    Raises:
        MalformedInput: the result would not parse as a record.
    """
    raw: dict[str, Any] = {
        "schema": schema,
        "subject": subject,
        "revision": revision,
        "prev": prev,
        "issued_at": issued_at,
        "body": body,
    }
    if reason is not None:
        raw["reason"] = reason
    if evidence:
        raw["evidence"] = [
            {"sha256": e.sha256, "media_type": e.media_type, "name": e.name}
            for e in evidence
        ]
    payload = canonicalize(raw)
    parse_record(payload)
    return payload


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A parsed log entry: the submitted envelope and when the log took it."""

    envelope: Envelope
    logged_at: str


def format_log_entry(envelope: Envelope, logged_at: str) -> bytes:
    """The canonical entry bytes for ``envelope`` logged at ``logged_at``.

    Raises:
        MalformedInput: ``logged_at`` is malformed, or the entry would exceed
            the 65,535-byte entry limit.
    """
    parse_timestamp(logged_at, "logged_at")
    # The canonical form spelled out (members in RFC 8785 order): every value but
    # payloadType is base64, hex or a timestamp, which need no escaping. A
    # property test holds this equal to canonicalize() of the same object.
    signatures = ",".join(
        f'{{"keyid":"{s.keyid}","sig":"{b64encode(s.sig)}"}}'
        for s in envelope.signatures
    )
    data = (
        f'{{"envelope":{{"payload":"{b64encode(envelope.payload)}",'
        f'"payloadType":{canonicalize(envelope.payload_type).decode()},'
        f'"signatures":[{signatures}]}},"logged_at":"{logged_at}"}}'
    ).encode()
    if len(data) > MAX_ENTRY_SIZE:
        raise MalformedInput(
            f"log entry of {len(data)} bytes exceeds {MAX_ENTRY_SIZE} bytes"
        )
    return data


def parse_log_entry(data: bytes) -> LogEntry:
    """Parse a log entry.

    Raises:
        MalformedInput: not canonical JSON with exactly envelope and logged_at,
            or a malformed envelope or time.
    """
    if len(data) <= MAX_ENTRY_SIZE:
        # The quick way, taken by every entry the log wrote: parse plainly, check
        # the parts, then require the bytes to be exactly the canonical entry
        # those parts make. Anything else takes the strict parser below, which
        # says precisely what is wrong.
        try:
            raw = json.loads(data)
            if isinstance(raw, dict) and set(raw) == {"envelope", "logged_at"}:
                entry = LogEntry(parse_envelope(raw["envelope"]), raw["logged_at"])
                if format_log_entry(entry.envelope, entry.logged_at) == data:
                    return entry
        except (ValueError, TypeError, RecursionError, VerificationError):
            pass  # RecursionError: nested too deep; the strict parser says so
    raw = parse_canonical(data, MAX_ENTRY_SIZE, "log entry")
    if not isinstance(raw, dict) or set(raw) != {"envelope", "logged_at"}:
        raise MalformedInput("log entry: expected exactly envelope and logged_at")
    parse_timestamp(raw["logged_at"], "log entry logged_at")
    return LogEntry(parse_envelope(raw["envelope"]), raw["logged_at"])


def decode_logged_entry(data: bytes) -> tuple[LogEntry, Record]:
    """Decode an entry a log admitted (and proved): its envelope and its record.

    The fast twin of ``parse_log_entry`` + ``parse_record``, for bytes that were
    checked in full when they were admitted (canonical form, schema, signatures)
    and that the caller has just proven to be in the signed tree: it skips the
    canonical-form re-check and decodes plain JSON (BENCHMARKS.md, "Decoding
    logged entries", has the ratio). It decides every entry the strict parsers
    accept exactly as they do (a property test holds the two together).
    Anything that does not decode plainly, or carries evidence, takes the
    strict parsers, whose errors then say what is wrong.

    Raises:
        MalformedInput: the bytes are not a well-formed entry.
    """
    try:
        raw = json.loads(data)
        wrapped = raw["envelope"]
        envelope = Envelope(
            wrapped["payloadType"],
            base64.b64decode(wrapped["payload"], validate=True),
            tuple(
                EnvelopeSignature(s["keyid"], base64.b64decode(s["sig"], validate=True))
                for s in wrapped["signatures"]
            ),
        )
        fields = json.loads(envelope.payload)
        if "evidence" not in fields and isinstance(fields["body"], dict):
            record = Record(
                fields["schema"],
                fields["subject"],
                fields["revision"],
                fields["prev"],
                fields["issued_at"],
                fields["body"],
                fields.get("reason"),
                (),
                envelope.payload,
            )
            return LogEntry(envelope, raw["logged_at"]), record
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        pass
    entry = parse_log_entry(data)
    return entry, parse_record(entry.envelope.payload)
