"""Recaps computed and signed bottom-up from what is in the log.

For a region and a ballot the builder reads, through the API, the state of every
village under it, a page of villages at a time, then walks up: each village's
recap sums the latest revision of each of its stations' tallies; each
district's recap sums its villages' recaps, and so on to the national recap.
The log adds each region's children up as it reads them (``totals=sum``: the
sum, not every child's totals, crosses the wire), and names each child's
latest revision, whose payload hash the recap records. A
recap is (re)signed only when it is missing or no longer names exactly the
current revisions of its children (a correction below made it stale); a rebuilt
recap is the next revision of its subject and says so (``child_corrected``,
naming the children that changed). Each recap is signed by
the key of its own region (``KEYS/<code>.key``, ``KEYS/national.key``), since a
recap is signed at exactly the level of its signer's scope.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from saksi_client import Refused, SaksiClient, TransportError
from verifier.election import recap_subject
from verifier.record import format_timestamp, record_payload
from verifier.rules import fold_totals

__all__ = ["RecapReport", "build_recaps"]

Signer = Any  # an EnvelopeSigner (Ed25519Signer, Pkcs11Signer)


@dataclass
class RecapReport:
    """What one build did, per level."""

    signed: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    no_key: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


LEVELS = [
    ("village", 10),
    ("district", 6),
    ("regency", 4),
    ("province", 2),
    ("national", 0),
]
PAGE = 200  # regions read per request
BATCH = 500  # recaps signed and sent per batch request


def _pages(
    client: SaksiClient, ballot: str, root: str, level: str
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """(regions, total) page by page; the next page is read while this one is used."""

    def fetch(after: str) -> dict[str, Any]:
        return client.get(
            f"/v1/results/{ballot}/{root or 'national'}/below/{level}"
            f"?limit={PAGE}&after={after}&totals=sum"
        )

    with ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(fetch, "")
        while True:
            page = ahead.result()
            if page["next"] is not None:
                ahead = reader.submit(fetch, page["next"])
            yield page["regions"], page["total"]
            if page["next"] is None:
                return


def _recap_of(
    view: dict[str, Any], ballot: str, issued_at: str
) -> tuple[str, bytes] | str:
    """(subject, payload) of the recap ``view`` needs, or "empty" or "current"."""
    present = [c for c in view["children"] if c["status"] == "present"]
    if not present:
        return "empty"
    children = {c["code"]: c["payload_hash"] for c in present}
    recap = view["recap"]
    if (
        recap is not None
        and not recap["stale"]
        and not [code for code in children if code in recap["unnamed_children"]]
    ):
        return "current"
    totals = view["sum"]
    body: dict[str, Any] = {
        "totals": totals if view["counts_candidates"] else fold_totals(totals),
        "children": children,
    }
    subject = recap_subject(ballot, view["code"])
    revision, prev, reason = 0, None, None
    if recap is not None:
        changed = sorted(
            set(recap["stale_children"])
            | (set(children) & set(recap["unnamed_children"]))
        )
        revision, prev = recap["revision"] + 1, recap["payload_hash"]
        reason = f"rebuilt: {len(changed)} children changed"
        body["correction"] = {
            "reason_code": "child_corrected",
            "reference": ("children " + ", ".join(changed))[:500],
        }
    payload = record_payload(
        schema="results.recap/v1",
        subject=subject,
        revision=revision,
        prev=prev,
        issued_at=issued_at,
        body=body,
        reason=reason,
    )
    return subject, payload


def build_recaps(
    client: SaksiClient,
    ballot: str,
    root: str,
    signer_for: Callable[[str], Signer | None],
    progress: Callable[[str, int, int], None] = lambda *_: None,
    now: dt.datetime | None = None,
    *,
    reader: SaksiClient | None = None,
) -> RecapReport:
    """Bring every recap under ``root`` ("" national) up to date, bottom-up.

    Level by level from the villages up: every region's recap state and its
    children's latest revisions are read a page of regions at a time; the
    recaps that are missing or stale are signed and sent in batches (one batch
    on its way while the next pages are read and signed), and a level is
    complete (every recap logged or refused) before the next is read.
    ``progress(level, done, total)`` is called as regions are read.

    ``reader`` is where the pages are read, if not ``client``: a read-only
    server of the same log, which takes the reads (the larger part of the
    work) off the server that takes the writes. A level is read there only
    once it serves a tree that holds every recap of the level below.

    Raises:
        Refused: the log cannot answer a read (e.g. an unknown region).
        TransportError, VerificationError: see ``SaksiClient``.
        TransportError: also when ``reader`` did not come to serve the
            recaps just logged within two minutes.
    """
    report = RecapReport()
    issued_at = format_timestamp(now or dt.datetime.now(dt.UTC))
    source = reader or client
    logged = 0  # the tree size the next level's reads must include
    with ThreadPoolExecutor(1, thread_name_prefix="recap-send") as sender:
        for name, length in LEVELS:
            if length < len(root):
                continue
            report.signed.setdefault(name, 0)
            report.current.setdefault(name, 0)
            if reader is not None and logged:
                _caught_up(reader, logged)
            pending: list[tuple[str, dict[str, Any]]] = []
            sent: list[Future[int]] = []
            done = 0
            for page, total in _pages(source, ballot, root, name):
                for view in page:
                    region = view["code"]
                    outcome = _recap_of(view, ballot, issued_at)
                    signer = signer_for(region)
                    if outcome == "empty":
                        report.empty.append(region or "national")
                    elif outcome == "current":
                        report.current[name] += 1
                    elif signer is None:
                        report.no_key.append(region or "national")
                    elif not isinstance(outcome, str):
                        subject, payload = outcome
                        pending.append((subject, client.sign(payload, [signer])))
                done += len(page)
                progress(name, done, total)
                if len(pending) >= BATCH:
                    if len(sent) > 1:
                        sent[-2].result()  # at most one batch waiting to go
                    sent.append(sender.submit(_send, client, pending, report, name))
                    pending = []
            sent.append(sender.submit(_send, client, pending, report, name))
            logged = max([logged, *(f.result() for f in sent)])
    return report


def _caught_up(reader: SaksiClient, size: int, timeout: float = 120.0) -> None:
    """Wait until ``reader`` serves a tree of at least ``size`` entries."""
    deadline = time.monotonic() + timeout
    while reader.get("/healthz")["tree_size"] < size:
        if time.monotonic() > deadline:
            raise TransportError(
                f"{reader.base_url} did not reach the {size} entries logged in "
                f"{timeout:.0f} s: does it read the writer's database?"
            )
        time.sleep(0.02)


def _send(
    client: SaksiClient,
    pending: list[tuple[str, dict[str, Any]]],
    report: RecapReport,
    level: str,
) -> int:
    """Send ``pending``; the size of the largest tree a receipt came with."""
    logged = 0
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        outcomes = client.submit_many([envelope for _, envelope in chunk])
        for (subject, _), outcome in zip(chunk, outcomes, strict=True):
            if isinstance(outcome, Refused):
                report.refused.append(
                    (subject, f"{outcome.cause}: {outcome.problem.get('detail')}")
                )
            else:
                report.signed[level] += 1
                logged = max(logged, outcome.tree_size)
    return logged
