"""Recap keys for every region at a level under a prefix, granted in batches.

A plan (``plan``) says, for each region the log's region registry lists, what
its key file ``OUT/<code>.key`` (``national.key``) needs: nothing (the file's key
is granted that role and scope), a grant (a file that opens with the passphrase
but is not granted yet: a run that stopped between the two), a new key, or an
operator's decision (a conflict: the file does not open, or its key is revoked
or granted another role or scope; a key file is never overwritten).
``provision`` carries it out a chunk at a time: new key files first, written
durably (``keys.keyfile.KeyFileBatch``: one Argon2id derivation for the whole
run, not one per file), then the chunk's ``keys.grant/v1`` records, each signed
once by every admin key given, sent as one batch and every receipt verified.
Running it again does only what is left. It does not decide who may grant: the
log does, record by record (``verifier.registry``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.local import LocalLog
from keys.errors import KeyLoadError
from keys.keyfile import KeyFileBatch
from keys.signer import Ed25519Signer
from ledger.errors import LedgerError
from saksi_client import Receipt, Refused, SaksiClient, grant_body
from verifier.errors import VerificationError
from verifier.record import parse_timestamp

__all__ = [
    "LEVELS",
    "Outcome",
    "Region",
    "admin_problems",
    "file_name",
    "plan",
    "provision",
    "regions_below",
]

# Recap levels by code length, as ``saksi results recap`` walks them.
LEVELS = {"village": 10, "district": 6, "regency": 4, "province": 2, "national": 0}
PAGE = 500  # regions listed per request
CHUNK = 500  # keys written, then granted in one batch request
WRITERS = 8  # threads writing key files (each waits on its fsync)
RETRY_ROUNDS = 20  # rate-limited grants sent again, after the client's own retries


def file_name(code: str) -> str:
    """The key file of a region, as ``saksi results recap --keys DIR`` opens it."""
    return f"{code or 'national'}.key"


@dataclass(frozen=True, slots=True)
class Region:
    """One region to provision: its code ("" national) and level name (role)."""

    code: str
    level: str


@dataclass
class Outcome:
    """What a run found and did; ``keys`` is every region's granted key."""

    created: int = 0
    granted: int = 0
    granted_existing: int = 0
    already: int = 0
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    tree_size: int | None = None


def _listing(
    client: SaksiClient, ballot: str, root: str, level: str, after: str
) -> dict[str, Any]:
    if isinstance(client, LocalLog):
        # The route's own reader, on the log opened here.
        if root and not client.service.gate.election.has_region(root):
            raise Refused(
                404,
                {
                    "type": "/problems/not-found",
                    "detail": f"region {root} is not in the registry",
                },
            )
        return client.results().below(ballot, root, level, after, PAGE)
    return client.get(
        f"/v1/results/{ballot}/{root or 'national'}/below/{level}"
        f"?limit={PAGE}&after={after}"
    )


def regions_below(client: SaksiClient, ballot: str, root: str, level: str) -> list[str]:
    """Every code at ``level`` under ``root`` in the log's region registry.

    The listing ``GET /v1/results/{ballot}/{root}/below/{level}`` gives (for a
    log opened here, the same reader), page by page, in code order.

    Raises:
        Refused: ``root`` is not in the registry. TransportError: unreachable.
    """
    codes: list[str] = []
    after = ""
    while True:
        page = _listing(client, ballot, root, level, after)
        codes.extend(str(view["code"]) for view in page["regions"])
        if page["next"] is None:
            return codes
        after = str(page["next"])


def admin_problems(
    registry: dict[str, Any], admins: Sequence[Ed25519Signer], now: dt.datetime
) -> list[str]:
    """Why each admin key given cannot grant (empty: all are active admins)."""
    grants = {k["keyid"]: k for k in registry["keys"]}
    problems = []
    for admin in admins:
        grant = grants.get(admin.keyid)
        if grant is None:
            problems.append(f"key {admin.keyid[:16]} is not in this log's registry")
        elif grant["role"] != "admin":
            problems.append(f"key {admin.keyid[:16]} has role {grant['role']}")
        elif grant["revoked_at"] is not None:
            problems.append(
                f"key {admin.keyid[:16]} was revoked at entry {grant['revoked_at']}"
            )
        elif (
            grant["expires_at"] is not None
            and parse_timestamp(grant["expires_at"], "expires_at") <= now
        ):
            problems.append(f"key {admin.keyid[:16]} expired at {grant['expires_at']}")
    return problems


@dataclass
class Plan:
    """The regions that need a new key, those whose file needs a grant, the rest."""

    new: list[Region] = field(default_factory=list)
    to_grant: list[tuple[Region, Ed25519Signer]] = field(default_factory=list)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, str]] = field(default_factory=list)


def _entry(region: Region, keyid: str, public: str, granted_at: int) -> dict[str, Any]:
    return {
        "keyid": keyid,
        "public_key": public,
        "role": region.level,
        "scope": region.code,
        "file": file_name(region.code),
        "granted_at": granted_at,
    }


def plan(
    out: Path,
    regions: Sequence[Region],
    registry: dict[str, Any],
    batch: KeyFileBatch,
) -> Plan:
    """Decide each region from its key file in ``out`` and the key registry.

    A file that is there is opened (``batch.load``: the passphrase must open
    it), never rewritten; a stale ``<file>.tmp`` of a run that stopped while
    writing is removed (it was never granted: grants follow the files).
    """
    grants = {k["keyid"]: k for k in registry["keys"]}
    result = Plan()
    for region in regions:
        path = out / file_name(region.code)
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + ".tmp").unlink()
        if not path.exists():
            result.new.append(region)
            continue
        try:
            signer = batch.load(path)
        except KeyLoadError as e:
            result.conflicts.append(_conflict(region, path, str(e)))
            continue
        grant = grants.get(signer.keyid)
        if grant is None:
            result.to_grant.append((region, signer))
        elif grant["revoked_at"] is not None:
            result.conflicts.append(
                _conflict(
                    region,
                    path,
                    f"its key {signer.keyid[:16]} was revoked at entry "
                    f"{grant['revoked_at']}",
                )
            )
        elif (grant["role"], grant["scope"]) != (region.level, region.code):
            result.conflicts.append(
                _conflict(
                    region,
                    path,
                    f"its key {signer.keyid[:16]} is granted role {grant['role']} "
                    f"scope {grant['scope'] or 'all'}",
                )
            )
        else:
            result.done[region.code or "national"] = _entry(
                region, signer.keyid, signer.public_key.hex(), grant["granted_at"]
            )
    return result


def _conflict(region: Region, path: Path, problem: str) -> dict[str, str]:
    return {"region": region.code or "national", "file": str(path), "problem": problem}


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _submit_local(client: LocalLog, envelopes: list[dict[str, Any]]) -> list[Any]:
    """``submit_many`` for a log opened here: one commit for the batch.

    Raises:
        Refused: the batch as a whole (the writer pushed back or stopped).
    """
    out: list[Receipt | Refused | None] = [None] * len(envelopes)
    prepared = []
    for number, envelope in enumerate(envelopes):
        try:
            prepared.append((number, client.service.writer.prepare(envelope)))
        except (VerificationError, LedgerError) as e:
            out[number] = _refusal(e)
    if not prepared:
        return out
    try:
        outcomes = client.service.ledger.submit_many([s for _, s in prepared])
    except LedgerError as e:
        raise _refusal(e) from e
    for (number, submission), outcome in zip(prepared, outcomes, strict=True):
        if isinstance(outcome, Exception):
            out[number] = _refusal(outcome)
        else:
            out[number] = client.verify_receipt(
                outcome.to_json(), submission.record.payload
            )
    return out


def _refusal(error: Exception) -> Refused:
    cause = getattr(error, "cause", "internal-error")
    return Refused(0, {"type": f"/problems/{cause}", "detail": str(error)[:1000]})


def _submit(
    client: SaksiClient,
    envelopes: list[dict[str, Any]],
    sleep: Callable[[float], None],
) -> list[Receipt | Refused]:
    """Each envelope's verified receipt or refusal; rate limits waited out."""
    if isinstance(client, LocalLog):
        return _submit_local(client, envelopes)
    out: list[Receipt | Refused] = list(client.submit_many(envelopes))
    for _ in range(RETRY_ROUNDS):
        waiting = [
            i
            for i, o in enumerate(out)
            if isinstance(o, Refused) and o.status in (429, 503)
        ]
        if not waiting:
            break
        waits = [out[i].problem.get("retry_after") for i in waiting]  # type: ignore[union-attr]
        sleep(min(30.0, max(float(w) if isinstance(w, int) else 1.0 for w in waits)))
        again = client.submit_many([envelopes[i] for i in waiting])
        for i, outcome in zip(waiting, again, strict=True):
            out[i] = outcome
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def provision(
    client: SaksiClient,
    out: Path,
    work: Plan,
    admins: Sequence[Ed25519Signer],
    batch: KeyFileBatch,
    result: Outcome,
    progress: Callable[[int, int], None] = lambda *_: None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Write the new key files and grant them and the files still ungranted.

    A chunk at a time: its new key files are written and made durable (the
    directory too) before its grants are sent, so a key is never granted
    without its file on disk. ``progress(done, total)`` after each chunk.
    ``result`` is filled as chunks complete (and returned), so that what was
    done is known when a later chunk fails.

    Raises:
        KeyLoadError: a key file appeared meanwhile (never overwritten).
        OSError: a key file cannot be written.
        TransportError, VerificationError, Refused: see ``SaksiClient``.
    """
    result.conflicts.extend(work.conflicts)
    result.keys.update(work.done)
    result.already += len(work.done)
    todo: list[tuple[Region, Ed25519Signer | None]] = [
        (region, signer) for region, signer in work.to_grant
    ] + [(region, None) for region in work.new]
    done = 0
    progress(done, len(todo))
    with ThreadPoolExecutor(WRITERS) as writers:
        for chunk in _chunks(todo, CHUNK):
            signers: list[tuple[Region, Ed25519Signer, bool]] = []
            for region, existing in chunk:
                if existing is not None:
                    signers.append((region, existing, False))
                else:
                    name = (
                        f"{region.level}-{region.code}" if region.code else "national"
                    )
                    signers.append((region, Ed25519Signer.generate(name), True))
            fresh = [(r, s) for r, s, new in signers if new]
            list(
                writers.map(
                    lambda item: batch.write(out / file_name(item[0].code), item[1]),
                    fresh,
                )
            )
            if fresh:
                _fsync_dir(out)
            result.created += len(fresh)
            issued = now()
            envelopes = []
            for region, signer, _ in signers:
                body = grant_body(
                    signer.public_key,
                    region.level,
                    region.code,
                    f"{region.level} {region.code or 'all'}",
                )
                payload = client.record(
                    "keys.grant/v1", f"keys/{signer.keyid}", body, now=issued
                )
                envelopes.append(client.sign(payload, admins))
            outcomes = _submit(client, envelopes, sleep)
            for (region, signer, new), outcome in zip(signers, outcomes, strict=True):
                code = region.code or "national"
                if isinstance(outcome, Refused):
                    result.refused.append(
                        {
                            "region": code,
                            "file": str(out / file_name(region.code)),
                            "cause": outcome.cause,
                            "detail": str(outcome.problem.get("detail", "")),
                        }
                    )
                    continue
                result.granted += 1
                if not new:
                    result.granted_existing += 1
                result.keys[code] = _entry(
                    region, signer.keyid, signer.public_key.hex(), outcome.index
                )
                result.tree_size = max(result.tree_size or 0, outcome.tree_size)
            done += len(chunk)
            progress(done, len(todo))
    return result
