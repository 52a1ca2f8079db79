"""``saksi demo``: write real, signed records and verify every receipt.

Reads the polling stations of the commission's 2024 per-TPS results (JSON lines
from ``shared/data/sirekap2024/tps_ppwp_dki_sample``) and, as the log's admin,
grants each station an officer key scoped to its real 13-digit TPS code: one
signed ``keys.grant/v1`` record per station, through the same checks as any
submission. Then it checks what a writer and an observer would: every receipt's
entry bytes, payload and inclusion proof against its signed checkpoint (with the
standalone verifier), consistency between the first and last checkpoints, that a
re-submitted record returns its original entry, that a stale revision is refused,
and finally a full ``saksi check``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from keys import Ed25519Signer, KeyLoadError, load_key_file, read_passphrase
from ledger.check import check_log
from ledger.errors import StaleRevision
from verifier.checkpoint import verify_checkpoint, verify_inclusion_in_checkpoint
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.merkle import verify_consistency
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    format_timestamp,
    parse_log_entry,
    record_payload,
)
from verifier.rfc6962 import hash_leaf

__all__ = ["add_demo_command"]

DEFAULT_DATA = (
    "../shared/data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
)


def _stations(path: Path, limit: int) -> list[str]:
    codes: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            code = str(json.loads(line)["kode_tps"])
            if len(code) == 13 and code.isdigit() and code not in codes:
                codes.append(code)
            if len(codes) >= limit:
                break
    return codes


def _grant(code: str, admin: Ed25519Signer) -> tuple[dict[str, Any], bytes]:
    officer = Ed25519Signer.generate(f"kpps-{code}")
    payload = record_payload(
        schema="keys.grant/v1",
        subject=f"keys/{officer.keyid}",
        revision=0,
        prev=None,
        issued_at=format_timestamp(dt.datetime.now(dt.UTC)),
        body={
            "keyid": officer.keyid,
            "public_key": base64.b64encode(officer.public_key).decode(),
            "role": "tps_officer",
            "scope": code,
            "holder": f"KPPS TPS {code}",
        },
    )
    envelope = sign_envelope(RECORD_PAYLOAD_TYPE, payload, [admin])
    return envelope_to_json(envelope), payload


def cmd_demo(args: argparse.Namespace) -> int:
    """Grant real polling stations officer keys; verify every receipt; check."""
    from ledger.cli import CommandError, emit, open_service

    try:
        codes = _stations(args.data, args.count)
    except (OSError, ValueError, KeyError) as e:
        raise CommandError(
            f"cannot read {args.data}: {e}",
            "pass --data pointing at tps_ppwp_dki_sample.jsonl",
            3,
        ) from e
    try:
        admin = load_key_file(
            args.admin_key or args.dir / "admin-1.key",
            read_passphrase(args.passphrase_file),
        )
    except KeyLoadError as e:
        raise CommandError(str(e), "pass --admin-key (written by 'saksi init')") from e
    service = open_service(args.dir, args.db, args.passphrase_file)
    ledger = service.ledger
    try:
        key, origin = ledger.verifier_key, ledger.origin
        start_size = ledger.size
        start_note = ledger.checkpoint()
        grants = [_grant(code, admin) for code in codes]
        subs = [service.prepare(envelope) for envelope, _ in grants]
        receipts: list[Any] = [ledger.submit(s) for s in subs[:10]]  # one by one
        receipts += ledger.submit_many(subs[10:])  # the batch interface
        for receipt, (_, payload) in zip(receipts, grants, strict=True):
            if isinstance(receipt, Exception):
                raise CommandError(
                    f"a grant was refused: {receipt}", "report this bug", 1
                )
            entry = service.entry_bytes(receipt.index)
            if hash_leaf(entry) != receipt.leaf_hash or (
                parse_log_entry(entry).envelope.payload != payload
            ):
                raise CommandError(
                    "a receipt proves another entry", "report this bug", 1
                )
            verify_inclusion_in_checkpoint(
                receipt.checkpoint,
                key,
                origin,
                receipt.index,
                receipt.leaf_hash,
                receipt.proof,
            )
        first, _ = verify_checkpoint(start_note, key, origin)
        last, _ = verify_checkpoint(ledger.checkpoint(), key, origin)
        if first.size:
            proof = ledger.consistency_proof(first.size, last.size)
            verify_consistency(
                first.size, last.size, first.root_hash, last.root_hash, proof
            )
        again = ledger.submit(service.prepare(grants[0][0]))
        if again.index != receipts[0].index or not again.duplicate:
            raise CommandError(
                "a repeated record got a new entry", "report this bug", 1
            )
        # A second "revision 0" for the first officer (another holder) loses to
        # the one logged: a record never silently replaces another.
        record = json.loads(grants[0][1])
        record["body"]["holder"] += " (rival)"
        rival = record_payload(**{k: v for k, v in record.items()})
        stale_refused = False
        try:
            ledger.submit(
                service.prepare(
                    envelope_to_json(sign_envelope(RECORD_PAYLOAD_TYPE, rival, [admin]))
                )
            )
        except StaleRevision:
            stale_refused = True
        if not stale_refused:
            raise CommandError("a rival revision 0 was accepted", "report this bug", 1)
        size = ledger.size
    finally:
        ledger.close()
    report = check_log(service.storage, key, origin)
    service.storage.close()
    result: dict[str, Any] = {
        "records": len(receipts),
        "verified_receipts": len(receipts),
        "size_before": start_size,
        "size_after": size,
        "duplicate_index": again.index,
        "stale_refused": stale_refused,
        "check_ok": report.ok,
        "checkpoint": last.to_text(),
    }
    emit(
        args,
        result,
        f"logged {len(receipts)} signed keys.grant/v1 records for real 2024 polling "
        f"stations ({start_size} -> {size} entries), verified {len(receipts)} "
        f"receipts against signed checkpoints, consistency {first.size} -> "
        f"{last.size} ok, a repeat returned entry {again.index}, "
        f"full check {'OK' if report.ok else 'FAILED'}",
    )
    if not args.json:
        print(last.to_text(), end="", file=sys.stdout)
    return 0 if report.ok else 1


def add_demo_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``saksi demo``."""
    demo = sub.add_parser("demo", help="log signed records for real TPS and verify")
    demo.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    demo.add_argument("--dir", type=Path, required=True, help="the log's directory")
    demo.add_argument(
        "--data", type=Path, default=Path(DEFAULT_DATA), help="JSONL of per-TPS results"
    )
    demo.add_argument("--count", type=int, default=1000, help="polling stations")
    demo.add_argument(
        "--admin-key", type=Path, help="admin key file (default: DIR/admin-1.key)"
    )
    demo.add_argument("--passphrase-file", type=Path)
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.set_defaults(func=cmd_demo)
