"""``saksi demo``: append real election records and verify every receipt.

Reads the commission's per-polling-station results (JSON lines from
``shared/data/sirekap2024/tps_ppwp_dki_sample``), appends each as one entry (RFC 8785
style canonical JSON: sorted keys, no whitespace), then checks what a writer and an
observer would: every receipt's inclusion proof against its signed checkpoint with
the standalone verifier, consistency between the first and last checkpoints, that a
repeated append returns the original index, and finally a full ``saksi check``.
Until signed submissions land, entries are opaque bytes to the log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.check import check_log
from verifier.checkpoint import verify_checkpoint, verify_inclusion_in_checkpoint
from verifier.merkle import verify_consistency

__all__ = ["add_demo_command"]

DEFAULT_DATA = (
    "../shared/data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
)


def _records(path: Path, limit: int) -> list[bytes]:
    out: list[bytes] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            record = {"kode_tps": doc["kode_tps"], "data": doc["data"]}
            out.append(
                json.dumps(
                    record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ).encode("utf-8")
            )
            if len(out) >= limit:
                break
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    """Append real records, verify every receipt, run a full check."""
    from ledger.cli import CommandError, emit, open_ledger

    try:
        records = _records(args.data, args.count)
    except (OSError, ValueError, KeyError) as e:
        raise CommandError(
            f"cannot read {args.data}: {e}",
            "pass --data pointing at tps_ppwp_dki_sample.jsonl",
            3,
        ) from e
    ledger = open_ledger(args.dir, args.db, args.passphrase_file)
    try:
        key, origin = ledger.verifier_key, ledger.origin
        start_size = ledger.size
        start_note = ledger.checkpoint()
        half = len(records) // 2
        receipts = [ledger.append(r) for r in records[:10]]  # single appends
        receipts += ledger.append_many(records[10:half])  # batch interface
        receipts += ledger.append_many(records[half:])
        for receipt in receipts:
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
        again = ledger.append(records[0])
        if again.index != receipts[0].index:
            raise CommandError(
                "a repeated append got a new index", "report this bug", 1
            )
        size = ledger.size
    finally:
        ledger.close()
    report = check_log(ledger.storage, key, origin)
    ledger.storage.close()
    result: dict[str, Any] = {
        "appended": len(receipts),
        "verified_receipts": len(receipts),
        "size_before": start_size,
        "size_after": size,
        "duplicate_index": again.index,
        "check_ok": report.ok,
        "checkpoint": last.to_text(),
    }
    emit(
        args,
        result,
        f"appended {len(receipts)} real TPS records ({start_size} -> {size}), "
        f"verified {len(receipts)} inclusion proofs against signed checkpoints, "
        f"consistency {first.size} -> {last.size} ok, repeat returned index "
        f"{again.index}, full check {'OK' if report.ok else 'FAILED'}",
    )
    if not args.json:
        print(last.to_text(), end="", file=sys.stdout)
    return 0 if report.ok else 1


def add_demo_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``saksi demo``."""
    demo = sub.add_parser("demo", help="append real TPS records and verify them")
    demo.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    demo.add_argument("--dir", type=Path, required=True, help="the log's directory")
    demo.add_argument(
        "--data", type=Path, default=Path(DEFAULT_DATA), help="JSONL of per-TPS results"
    )
    demo.add_argument("--count", type=int, default=1000, help="records to append")
    demo.add_argument("--passphrase-file", type=Path)
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.set_defaults(func=cmd_demo)
