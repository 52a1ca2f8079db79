"""The demo's scenario: a real slice of the 2024 election, written and verified.

Against a running ``saksi serve`` of a fresh log (nothing in it but the genesis
record 'saksi init' wrote: any other log is refused before anything is
written), as the log's admin and the keys it grants, through the same API any
election application uses:

1. keys for 1,000 real 2024 polling stations (their 13-digit codes) and for the
   recap committees of every region above them, the commission's reading system
   (a ``tps`` key over DKI Jakarta) and the candidate-list keeper;
2. the commission's region table for DKI Jakarta (44 districts, 30,766 stations)
   and the 2024 presidential candidates;
3. the published per-station results of the sample (1,000 documents): complete
   ones logged as machine readings, exactly as published (flags and all);
4. a station officer writing another station's form: refused, log unchanged; a
   repeated record answered with its original entry; a rival revision refused;
5. recaps built bottom-up, village to national;
6. a correction of a real misread form by its district authority, with its
   reason and reference, and the recaps above it re-signed;
7. the provenance of one number, from the national total down to the signed form
   (its revisions, signers, photo pages), every entry proved in the log.

Every receipt is checked against the pinned log key; the last checkpoint is
proved consistent with the first. The command, ``saksi demo`` (its flags, input
files and errors), is ``cli.demo``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from domains.recaps import build_recaps
from domains.sirekap import tally_body
from domains.submit import Head, submit_new
from keys import Ed25519Signer
from saksi_client import Receipt, Refused, SaksiClient, grant_body
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.election import recap_subject, tally_subject
from verifier.record import record_payload
from verifier.rules import tally_flags

__all__ = [
    "CANDIDATES",
    "DATA_FILE",
    "DemoFailed",
    "fresh",
    "run",
]

# Under the data directory (``domains.inputs.data_dir``).
DATA_FILE = "sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
CANDIDATES = Path(__file__).parent / "data" / "candidates_ppwp_2024.json"
# A real misread form of the sample: the chart adds up to 86 + 119 + 38 = 243
# valid votes, the form says 235. Its district authority corrects it.
CORRECTED = "3101011001003"
FOLLOWED = "valid"  # the number whose national total the demo traces
BATCH = 250


class DemoFailed(Exception):
    """The demo cannot go on (exit 1); ``hint`` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _grant(key: Ed25519Signer, role: str, scope: str, holder: str) -> bytes:
    body = grant_body(key.public_key, role, scope, holder)
    return SaksiClient.record("keys.grant/v1", f"keys/{key.keyid}", body)


def _submit_all(client: SaksiClient, envelopes: list[dict[str, Any]]) -> list[Receipt]:
    receipts: list[Receipt] = []
    for start in range(0, len(envelopes), BATCH):
        for outcome in client.submit_many(envelopes[start : start + BATCH]):
            if isinstance(outcome, Refused):
                raise DemoFailed(f"refused: {outcome}", "report this bug")
            receipts.append(outcome)
    return receipts


def _regions_above(stations: list[str]) -> dict[str, str]:
    """Every region above ``stations``: code -> the recap role that signs it."""
    out = {"": "national"}
    for code in stations:
        out[code[:10]] = "village"
        out[code[:6]] = "district"
        out[code[:4]] = "regency"
        out[code[:2]] = "province"
    return out


def fresh(client: SaksiClient) -> tuple[bytes, Checkpoint]:
    """The log's first checkpoint, if the log holds nothing but its genesis.

    Raises:
        DemoFailed: the log holds more.
        TransportError, VerificationError: see ``SaksiClient``.
    """
    note = client.checkpoint()
    start, _ = verify_checkpoint(note, client.log_key, client.origin)
    if start.size > 1:
        raise DemoFailed(
            "the demo writes only into a fresh log, as 'saksi init' leaves it (its "
            f"genesis record alone); this log holds {start.size - 1:,} entries "
            "beyond its genesis record (entry 0). Nothing was written",
            "a fresh log is the demo's home: 'saksi init --dir DEMO', "
            "'saksi serve --dir DEMO', then 'saksi demo --url URL --dir DEMO'",
        )
    return note, start


def run(
    client: SaksiClient,
    admin: Ed25519Signer,
    opening: tuple[bytes, Checkpoint],
    stations: list[Any],
    districts: list[tuple[str, dict[str, Any]]],
    candidates: dict[str, Any],
    read_head: Head | None = None,
) -> tuple[dict[str, Any], str]:
    """Steps 1 to 7 of the module docstring, on a log ``fresh`` found fresh.

    ``read_head`` reads a subject's head for the imports (default:
    ``client.head``). Returns the result (for JSON) and the report of step 7.

    Raises:
        DemoFailed: the log did what it must not (a bug: the hint says so).
        Refused, TransportError, VerificationError: see ``SaksiClient``.
    """
    start_note, start = opening
    codes = [s.code for s in stations]

    # 1. Keys.
    officers = {code: Ed25519Signer.generate(f"kpps-{code}") for code in codes}
    regions = _regions_above(codes)
    committees = {
        code: Ed25519Signer.generate(f"recap-{code or 'national'}") for code in regions
    }
    reader = Ed25519Signer.generate("sirekap-dki")
    keeper = Ed25519Signer.generate("kpu-candidates")
    grants = (
        [_grant(k, "tps", code, f"KPPS TPS {code}") for code, k in officers.items()]
        + [
            _grant(k, regions[code], code, f"{regions[code]} recap {code or 'ID'}")
            for code, k in committees.items()
        ]
        + [
            _grant(reader, "tps", "31", "KPU Sirekap reading, DKI Jakarta"),
            _grant(keeper, "candidates", "", "KPU candidate lists"),
        ]
    )
    _say(f"1. granting {len(grants):,} keys (polling stations, recap committees)")
    receipts = _submit_all(client, [client.sign(g, [admin]) for g in grants])

    # 2. Regions and candidates.
    _say(f"2. region table for DKI Jakarta: {len(districts)} districts; candidates")
    logged, refused, _ = submit_new(
        client,
        admin,
        "regions.registry/v1",
        [(f"regions/{code}", body) for code, body in districts],
        lambda *_: None,
        read_head,
    )
    if refused:
        raise DemoFailed(f"regions refused: {refused[0][1]}", "report this bug")
    receipts += [r for _, r in logged]
    receipts.append(
        client.submit(
            client.sign(
                client.record(
                    candidates["schema"], candidates["subject"], candidates["body"]
                ),
                [keeper],
            )
        )
    )

    # 3. The published results.
    records = []
    pending = 0
    for station in stations:
        body = tally_body(station).body
        if body is None:
            pending += 1
        else:
            records.append((tally_subject("ppwp", station.code), body))
    logged, refused, _ = submit_new(
        client, reader, "results.tally/v1", records, lambda *_: None, read_head
    )
    if refused:
        raise DemoFailed(f"a tally was refused: {refused[0][1]}", "report this")
    receipts += [r for _, r in logged]
    flagged = sum(1 for _, body in records if tally_flags(body, "ppwp"))
    _say(
        f"3. imported {len(records)} published forms as machine readings "
        f"({flagged} flagged by the arithmetic rules), {pending} still pending"
    )

    # 4. Refusals and repeats.
    intruder, victim = codes[0], codes[1]
    size_before = client.verify_growth(receipts[-1].checkpoint).size
    try:
        client.submit(
            client.sign(
                client.record(
                    "results.tally/v1",
                    tally_subject("ppwp", victim),
                    {
                        "stage": "officer_confirmed",
                        "votes": {"100025": 1},
                        "valid": 1,
                        "invalid": 0,
                        "total": 1,
                    },
                ),
                [officers[intruder]],
            )
        )
        raise DemoFailed("a station wrote another's form", "report this bug")
    except Refused as refusal:
        unauthorized = f"{refusal.status} {refusal.cause}"
    if client.verify_growth(receipts[-1].checkpoint).size != size_before:
        raise DemoFailed("a refused write changed the log", "report this bug")
    first_grant = client.sign(grants[0], [admin])
    again = client.submit(first_grant)
    if again.index != receipts[0].index or not again.duplicate:
        raise DemoFailed("a repeated record got a new entry", "report this bug")
    rival = json.loads(grants[0])
    rival["body"]["holder"] += " (rival)"
    try:
        client.submit(client.sign(record_payload(**rival), [admin]))
        raise DemoFailed("a rival revision was accepted", "report this bug")
    except Refused as refusal:
        rival_answer = f"{refusal.status} {refusal.cause}"
    _say(
        f"4. a station officer writing another station's form: {unauthorized}; "
        f"a repeat: entry {again.index} again; a rival revision: {rival_answer}"
    )

    # 5. Recaps.
    first = build_recaps(client, "ppwp", "", committees.get)
    _say(
        "5. recaps signed bottom-up: "
        + ", ".join(f"{n} {c}" for n, c in first.signed.items())
    )

    # 6. A correction, and the recaps above it re-signed.
    subject = tally_subject("ppwp", CORRECTED)
    head = client.head(subject)
    if head is not None:
        read = dict(records)[subject]
        counted = sum(read["votes"].values())
        fixed = {
            **{k: v for k, v in read.items() if k not in ("form", "source")},
            "stage": "authority_correction",
            "valid": counted,
            "total": counted + read["invalid"],
            "correction": {
                "reason_code": "plenary_decision",
                "reference": "Berita acara rapat pleno PPK Kepulauan Seribu Utara "
                "(demo)",
            },
        }
        client.submit(
            client.sign(
                client.record(
                    "results.tally/v1",
                    subject,
                    fixed,
                    reason=f"valid votes are {counted} as counted per candidate, "
                    f"not {read['valid']} as written",
                    after=head,
                ),
                [committees[CORRECTED[:6]]],
            )
        )
    second = build_recaps(client, "ppwp", "", committees.get)
    _say(
        f"6. {CORRECTED} corrected by its district; recaps re-signed: "
        + ", ".join(f"{n} {c}" for n, c in second.signed.items() if c)
    )

    # 7. Provenance of one number.
    trail = _provenance(client, CORRECTED)
    end = client.verify_growth(start_note)
    result: dict[str, Any] = {
        "records": len(receipts),
        "verified_receipts": len(receipts),
        "polling_stations": len(codes),
        "imported": len(records),
        "flagged": flagged,
        "pending": pending,
        "unauthorized_write": unauthorized,
        "repeat_index": again.index,
        "rival_revision": rival_answer,
        "recaps_signed": first.signed,
        "recaps_resigned": second.signed,
        "provenance": trail,
        "size_before": start.size,
        "size_after": end.size,
        "consistent": True,
    }
    lines = [
        "7. where the national count of valid votes comes from "
        "(every entry proved in the signed checkpoint):"
    ]
    for step in trail:
        lines.append(
            f"   {step['level']:<8} {step['code'] or 'national':<13} "
            f"entry {step['index']:>5} rev {step['revision']} "
            f"{FOLLOWED}={step['value']:>9,}  signed by {step['signer'][:16]}"
            + (f"  [{step['stage']}]" if "stage" in step else "")
        )
        for earlier in step.get("earlier", []):
            lines.append(
                f"            superseded: entry {earlier['index']} rev "
                f"{earlier['revision']} [{earlier.get('stage', 'recap')}] by "
                f"{earlier['signer'][:16]}, {FOLLOWED}={earlier['value']}"
            )
        for page in step.get("form", []):
            lines.append(
                f"            form page {page['page']}: "
                f"sha256 {page.get('sha256') or '(photo not fetched)'} "
                f"{page.get('url', '')}"
            )
    lines.append(
        f"logged {len(receipts):,} records through HTTP and verified every receipt; "
        f"checkpoint {start.size} -> {end.size}: proved consistent"
    )
    return result, "\n".join(lines)


def _provenance(client: SaksiClient, station: str) -> list[dict[str, Any]]:
    """From the national recap down to ``station``'s form, each entry proved."""
    trail = []
    path = ["", station[:2], station[:4], station[:6], station[:10]]
    levels = ["national", "province", "regency", "district", "village"]
    for level, region in zip(levels, path, strict=True):
        head = client.head(recap_subject("ppwp", region))
        if head is None:
            continue
        trail.append(_step(client, level, region, recap_subject("ppwp", region)))
    trail.append(_step(client, "station", station, tally_subject("ppwp", station)))
    return trail


def _step(client: SaksiClient, level: str, code: str, subject: str) -> dict[str, Any]:
    revisions = client.get(f"/v1/subjects/{subject}")["revisions"]
    out: list[dict[str, Any]] = []
    for revision in revisions:
        payload, _ = client.prove_entry(revision["index"])
        record = json.loads(payload)
        body = record["body"]
        source = body.get("totals", body)
        out.append(
            {
                "level": level,
                "code": code,
                "subject": subject,
                "index": revision["index"],
                "revision": record["revision"],
                "signer": revision["signers"][0],
                "value": source[FOLLOWED],
                **({"stage": body["stage"]} if "stage" in body else {}),
                **({"form": body["form"]} if "form" in body else {}),
            }
        )
    latest = out[-1]
    if len(out) > 1:
        latest["earlier"] = out[:-1]
        latest.setdefault("form", next((o["form"] for o in out if "form" in o), []))
    return latest
