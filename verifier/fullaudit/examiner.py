"""What one log entry decides alone: checks 2 to 5, 11, and a form's state verdict.

``examine`` parses the entry (check 2), fits its record to its schema (3),
verifies the signatures by keys already known (4; the others are left
``pending`` for the auditor, which knows the registry at that position), checks
the ``issued_at`` window (5), flags tally arithmetic (11), keeps the totals and a
recap's children for recap sums, and decides a form against the election state
it is given, with that state's version. It is pure (no store, clock or file),
so it runs in worker processes (``verifier.fullaudit.run``); ``Examined`` is what it
sends back, picklable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from verifier.body_schema import check
from verifier.dsse import Envelope, pae, verify_envelope
from verifier.election import RECAP, TALLY
from verifier.errors import MalformedInput, VerificationError
from verifier.fullaudit.report import Finding
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Record,
    parse_log_entry,
    parse_record,
    parse_timestamp,
)
from verifier.registry import GENESIS, parse_genesis
from verifier.rfc6962 import hash_leaf
from verifier.rules.arithmetic import tally_flags, totals_of
from verifier.rules.forensics import LastDigits, extremes, station_figures
from verifier.rules.state import ElectionState, recap_children
from verifier.rules.watch import total_of
from verifier.sample import PLAN, admit_plan
from verifier.schema_registry import get_schema

__all__ = ["SKEW", "Examined", "compact_json", "examine"]

SKEW = dt.timedelta(minutes=5)


@dataclass(slots=True)
class Examined:
    """What one entry decides alone, for ``Auditor.apply`` (picklable)."""

    index: int
    leaf: bytes
    findings: list[Finding] = field(default_factory=list)
    # None when the entry or its schema is broken. From a worker, a form the
    # election state has decided comes back without its body but its stage
    # (``verifier.fullaudit.run``); ``Record.payload`` still holds every byte.
    record: Record | None = None
    digest: bytes = b""  # SHA-256 of the record's payload
    logged_at: str = ""
    signers: tuple[str, ...] = ()  # key IDs whose signatures verified
    # Signatures by keys the examiner did not know: (key ID, signature), and
    # the message they sign, for the auditor to check with its registry.
    pending: tuple[tuple[str, bytes], ...] = ()
    message: bytes = b""
    totals: str | None = None  # a tally's or recap's, JSON, for recap sums
    children: list[tuple[str, str]] | None = None  # a recap's (subject, hash hex)
    # The election state's verdict on a form (``ElectionState.check``): the
    # number of state records it was decided after, and its objection if any.
    # The auditor takes it when its own state is at that version.
    state_version: int = -1
    state_problem: str | None = None
    # For the forensics: a form's (entitled, voted, valid, leader, counts,
    # last digits of counts of ten or more, total, its extremes), and a
    # revision's correction reason.
    station: tuple[int, int, int, int, int, str, int, str] | None = None
    correction: str | None = None


def examine(
    index: int,
    entry: bytes,
    public_key: Callable[[str], bytes | None],
    skew: dt.timedelta = SKEW,
    election: tuple[ElectionState, int] | None = None,
) -> Examined:
    """Everything entry ``index`` decides alone.

    ``public_key`` gives the keys known so far; a signature by a key it does not
    know is left ``pending`` (the auditor knows the registry at that position).
    ``election``: the election state after that many state records, against
    which a form is decided here (the auditor uses the verdict if its state is
    at the same version when it applies the entry, and decides again if not).
    """
    out = Examined(index, hash_leaf(entry))
    try:
        logged = parse_log_entry(entry)
        envelope = logged.envelope
        if envelope.payload_type != RECORD_PAYLOAD_TYPE:
            raise MalformedInput(f"payload type {envelope.payload_type[:80]!r}")
        record = parse_record(envelope.payload)
    except VerificationError as e:
        out.findings.append(Finding("entry-format", index, None, str(e)[:500]))
        return out
    subject = record.subject
    try:
        schema = get_schema(record.schema)
        check(schema, record.body, subject)
        if record.schema == PLAN.name:
            admit_plan(record, index)
        lookup = public_key
        if record.schema == GENESIS.name:
            lookup = {a.keyid: a.public_key for a in parse_genesis(record).admins}.get
    except VerificationError as e:
        out.findings.append(Finding("schema", index, subject, str(e)[:500]))
        return out
    out.record, out.logged_at = record, logged.logged_at
    out.digest = hashlib.sha256(record.payload).digest()
    known = tuple(s for s in envelope.signatures if lookup(s.keyid) is not None)
    unknown = tuple(s for s in envelope.signatures if lookup(s.keyid) is None)
    try:
        if known:
            verify_envelope(
                Envelope(envelope.payload_type, envelope.payload, known), lookup
            )
    except VerificationError as e:
        out.findings.append(Finding("signatures", index, subject, str(e)[:500]))
    else:
        out.signers = tuple(s.keyid for s in known)
        if unknown:  # checked by the auditor, which knows the registry then
            out.pending = tuple((s.keyid, s.sig) for s in unknown)
            out.message = pae(envelope.payload_type, envelope.payload)
    _issued_at(out, record, schema.max_age_days, skew)
    if record.schema == TALLY.name:
        ballot = subject.split("/")[1]
        for flag in tally_flags(record.body, ballot):
            out.findings.append(
                Finding(
                    "arithmetic",
                    index,
                    subject,
                    f"{flag.where}: {flag.detail}",
                    flag.check,
                )
            )
        out.totals = compact_json(totals_of(record.body))
        figures = station_figures(record.body)
        if figures is not None:
            digits = LastDigits()
            digits.add(figures.counts)
            out.station = (
                figures.entitled,
                figures.voted,
                figures.valid,
                figures.leader,
                len(figures.counts),
                ",".join(map(str, digits.observed)),
                total_of(record.body) or 0,
                ",".join(extremes(figures)),
            )
        if election is not None:
            state, out.state_version = election
            try:
                state.check(record)
            except VerificationError as e:
                out.state_problem = str(e)
    elif record.schema == RECAP.name:
        try:
            out.children = [(s, d.hex()) for s, d in recap_children(record)]
        except VerificationError as e:
            out.findings.append(Finding("recap-children", index, subject, str(e)))
        out.totals = compact_json(totals_of(record.body))
    correction = record.body.get("correction")
    if record.revision > 0 and isinstance(correction, dict):
        reason = correction.get("reason_code")
        out.correction = reason if isinstance(reason, str) else "other"
    return out


def compact_json(value: object) -> str:
    """``value`` as JSON without spaces (how totals are kept)."""
    return json.dumps(value, separators=(",", ":"))


def _issued_at(
    out: Examined, record: Record, max_age_days: int, skew: dt.timedelta
) -> None:
    try:
        issued = parse_timestamp(record.issued_at, "issued_at")
        logged = parse_timestamp(out.logged_at, "logged_at")
    except VerificationError as e:
        out.findings.append(Finding("issued-at", out.index, record.subject, str(e)))
        return
    if issued > logged + skew:
        detail = f"issued_at {record.issued_at} is after logged_at {out.logged_at}"
    elif issued < logged - dt.timedelta(days=max_age_days):
        detail = (
            f"issued_at {record.issued_at} is more than {max_age_days} days before "
            f"logged_at {out.logged_at}"
        )
    else:
        return
    out.findings.append(Finding("issued-at", out.index, record.subject, detail))
