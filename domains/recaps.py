"""Recaps computed and signed bottom-up from what is in the log.

For a region and a ballot the builder reads, through the API, every village
under it, then walks up: each village's recap sums the latest revision of each
of its stations' tallies; each district's recap sums its villages' recaps, and
so on to the national recap. A recap is (re)signed only when it is missing or no
longer names exactly the current revisions of its children (a correction below
made it stale); a rebuilt recap is the next revision of its subject and says so
(``child_corrected``, naming the children that changed). Each recap is signed by
the key of its own region (``KEYS/<code>.key``, ``KEYS/national.key``), since a
recap is signed at exactly the level of its signer's scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from saksi_client import Refused, SaksiClient
from verifier.election import recap_subject
from verifier.record import format_timestamp, record_payload
from verifier.rules import add_totals

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


def _get(client: SaksiClient, ballot: str, region: str) -> dict[str, Any]:
    return client.get(f"/v1/results/{ballot}/{region or 'national'}")


def _villages(client: SaksiClient, ballot: str, region: str) -> list[str]:
    if len(region) == 10:
        return [region]
    out: list[str] = []
    for child in _get(client, ballot, region)["children"]:
        out += _villages(client, ballot, child["code"])
    return out


def _parents(codes: list[str], length: int) -> list[str]:
    return sorted({code[:length] for code in codes})


def build_recaps(
    client: SaksiClient,
    ballot: str,
    root: str,
    signer_for: Callable[[str], Signer | None],
    progress: Callable[[str, int, int], None] = lambda *_: None,
    now: dt.datetime | None = None,
) -> RecapReport:
    """Bring every recap under ``root`` ("" national) up to date, bottom-up.

    Raises:
        Refused: the log cannot answer a read (e.g. an unknown region).
        TransportError, VerificationError: see ``SaksiClient``.
    """
    report = RecapReport()
    villages = _villages(client, ballot, root)
    levels = [("village", villages)]
    for name, length in (("district", 6), ("regency", 4), ("province", 2)):
        if len(root) <= length:
            levels.append((name, _parents(levels[-1][1], length)))
    if root == "":
        levels.append(("national", [""]))
    issued_at = format_timestamp(now or dt.datetime.now(dt.UTC))
    for name, regions in levels:
        report.signed.setdefault(name, 0)
        report.current.setdefault(name, 0)
        for done, region in enumerate(regions, start=1):
            view = _get(client, ballot, region)
            present = [c for c in view["children"] if c["status"] == "present"]
            progress(name, done, len(regions))
            if not present:
                report.empty.append(region or "national")
                continue
            children = {c["code"]: c["payload_hash"] for c in present}
            recap = view["recap"]
            if (
                recap is not None
                and not recap["stale"]
                and not [code for code in children if code in recap["unnamed_children"]]
            ):
                report.current[name] += 1
                continue
            signer = signer_for(region)
            if signer is None:
                report.no_key.append(region or "national")
                continue
            body: dict[str, Any] = {
                "totals": add_totals(c["totals"] for c in present),
                "children": children,
            }
            subject = recap_subject(ballot, region)
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
            try:
                client.submit(client.sign(payload, [signer]))
            except Refused as e:
                report.refused.append(
                    (subject, f"{e.cause}: {e.problem.get('detail')}")
                )
                continue
            report.signed[name] += 1
    return report
