"""``saksi demo``: write real, signed records through the HTTP API and verify them.

Reads the polling stations of the commission's 2024 per-TPS results (JSON lines
from ``shared/data/sirekap2024/tps_ppwp_dki_sample``) and, as the log's admin,
grants each station an officer key scoped to its real 13-digit TPS code, and each
of their districts a recap key scoped to its real 6-digit code: signed
``keys.grant/v1`` records sent to a running ``saksi serve`` (one by one, then in
batches). Then it shows what a writer and an observer can check for themselves:
every receipt's entry bytes, payload and inclusion proof against the signed
checkpoint (``saksi_client``), an unauthorized write refused with its problem type
and no change to the log, a re-submitted record answered with its original entry,
a rival revision refused, and the last checkpoint proved consistent with the
first.
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
from saksi_client import Receipt, Refused, SaksiClient, TransportError
from verifier.checkpoint import verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.record import format_timestamp, record_payload

__all__ = ["add_demo_command"]

DEFAULT_DATA = (
    "../shared/data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"
)
BATCH = 250


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


def _grant_payload(key: Ed25519Signer, role: str, scope: str, holder: str) -> bytes:
    return record_payload(
        schema="keys.grant/v1",
        subject=f"keys/{key.keyid}",
        revision=0,
        prev=None,
        issued_at=format_timestamp(dt.datetime.now(dt.UTC)),
        body={
            "keyid": key.keyid,
            "public_key": base64.b64encode(key.public_key).decode(),
            "role": role,
            "scope": scope,
            "holder": holder,
        },
    )


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        print(f"\r  {done:,}/{total:,} grants verified", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    """Grant real stations and districts keys over HTTP; verify; show refusals."""
    from ledger.cli import CommandError, emit

    try:
        codes = _stations(args.data, args.count)
    except (OSError, ValueError, KeyError) as e:
        raise CommandError(
            f"cannot read {args.data}: {e}",
            "pass --data pointing at tps_ppwp_dki_sample.jsonl",
            3,
        ) from e
    passphrase = read_passphrase(args.passphrase_file)
    try:
        admin = load_key_file(args.admin_key or args.dir / "admin.key", passphrase)
        key = VerifierKey.parse((args.dir / "log.vkey").read_text().strip())
    except (KeyLoadError, OSError, VerificationError) as e:
        raise CommandError(str(e), "pass the --dir that 'saksi init' wrote") from e
    client = SaksiClient(args.url, key)
    try:
        return _run(args, client, admin, codes, emit, CommandError)
    except TransportError as e:
        raise CommandError(str(e), "is 'saksi serve' running at --url?") from e
    except VerificationError as e:
        raise CommandError(
            f"the log's answer does not verify: {e}",
            "do not trust this log; keep the output as evidence",
            1,
        ) from e


def _run(
    args: argparse.Namespace,
    client: SaksiClient,
    admin: Ed25519Signer,
    codes: list[str],
    emit: Any,  # noqa: ANN401
    failure: type[Exception],
) -> int:
    start_note = client.checkpoint()
    start, _ = verify_checkpoint(start_note, client.log_key, client.origin)
    districts = sorted({code[:6] for code in codes})
    officers = {code: Ed25519Signer.generate(f"kpps-{code}") for code in codes}
    recappers = {d: Ed25519Signer.generate(f"ppk-{d}") for d in districts}
    payloads = [
        _grant_payload(k, "tps", code, f"KPPS TPS {code}")
        for code, k in officers.items()
    ] + [
        _grant_payload(k, "district", d, f"PPK district {d}")
        for d, k in recappers.items()
    ]
    envelopes = [client.sign(p, [admin]) for p in payloads]
    print(
        f"granting {len(codes):,} polling stations and {len(districts)} districts "
        f"keys through {args.url}",
        file=sys.stderr,
    )
    receipts: list[Receipt] = []
    for envelope in envelopes[:10]:  # one request each
        receipts.append(client.submit(envelope))
    _progress(len(receipts), len(envelopes))
    for i in range(10, len(envelopes), BATCH):  # then the batch endpoint
        for outcome in client.submit_many(envelopes[i : i + BATCH]):
            if isinstance(outcome, Refused):
                raise failure(f"a grant was refused: {outcome}", "report this bug", 1)
            receipts.append(outcome)
        _progress(len(receipts), len(envelopes))

    # An unauthorized write: a polling-station officer tries to grant a key.
    code, officer = next(iter(officers.items()))
    intruder = Ed25519Signer.generate("intruder")
    size_before = client.verify_growth(receipts[-1].checkpoint).size
    try:
        client.submit(
            client.sign(
                _grant_payload(intruder, "tps", code, "self-made officer"), [officer]
            )
        )
        raise failure("an officer granted a key", "report this bug", 1)
    except Refused as refusal:
        refused = f"{refusal.status} {refusal.cause}"
    size_after = client.verify_growth(receipts[-1].checkpoint).size
    if size_after != size_before:
        raise failure("a refused write changed the log", "report this bug", 1)

    # A repeat returns the original entry; a rival revision 0 is refused.
    again = client.submit(envelopes[0])
    if again.index != receipts[0].index or not again.duplicate:
        raise failure("a repeated record got a new entry", "report this bug", 1)
    record = json.loads(payloads[0])
    record["body"]["holder"] += " (rival)"
    try:
        client.submit(client.sign(record_payload(**record), [admin]))
        raise failure("a rival revision 0 was accepted", "report this bug", 1)
    except Refused as refusal:
        rival = f"{refusal.status} {refusal.cause}"
    end = client.verify_growth(start_note)
    result: dict[str, Any] = {
        "records": len(receipts),
        "verified_receipts": len(receipts),
        "polling_stations": len(codes),
        "districts": len(districts),
        "unauthorized_write": refused,
        "repeat_index": again.index,
        "rival_revision": rival,
        "size_before": start.size,
        "size_after": end.size,
        "consistent": True,
    }
    emit(
        args,
        result,
        f"logged {len(receipts):,} signed keys.grant/v1 records through HTTP "
        f"({len(codes):,} real 2024 polling stations, {len(districts)} districts); "
        f"verified {len(receipts):,} receipts against signed checkpoints\n"
        f"an officer granting a key was refused ({refused}); the log did not change\n"
        f"a repeat returned entry {again.index}; a rival revision was refused "
        f"({rival})\n"
        f"checkpoint {start.size} -> {end.size}: proved consistent",
    )
    return 0


def add_demo_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``saksi demo``."""
    demo = sub.add_parser("demo", help="log signed records for real TPS and verify")
    demo.add_argument(
        "--url",
        "--log",
        dest="url",
        required=True,
        help="a running 'saksi serve', e.g. http://127.0.0.1:8080",
    )
    demo.add_argument(
        "--dir", type=Path, required=True, help="the log's directory (log.vkey)"
    )
    demo.add_argument(
        "--data", type=Path, default=Path(DEFAULT_DATA), help="JSONL of per-TPS results"
    )
    demo.add_argument("--count", type=int, default=1000, help="polling stations")
    demo.add_argument(
        "--admin-key", type=Path, help="admin key file (default: DIR/admin.key)"
    )
    demo.add_argument("--passphrase-file", type=Path)
    demo.add_argument("--json", action="store_true", help="print JSON")
    demo.set_defaults(func=cmd_demo)
