"""``saksi keys provision``: a recap key for every region at a level, in one run.

For every region the log's own region registry lists at ``--level`` under
``--prefix``, a key file ``OUT/<code>.key`` (``national.key``; what ``saksi
results recap --keys OUT`` opens) and a ``keys.grant/v1`` record granting it that
level's role over that region, signed once by every ``--admin-key``; the grants
go to the log in batches and every receipt is verified. ``OUT/manifest.json``
(replaced atomically) maps each region code to its key id, role, scope and file.

The admin keys are checked against the log's registry before anything is
written: a key that is not an active admin stops the run (exit 1) with no key
file written. Running it again skips what is done, grants a key file that is
there but not granted, and never overwrites a key file. One Argon2id derivation
serves the whole run (``keys.keyfile.KeyFileBatch`` says what the files share).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cli.args import common_flags, load_signer, passphrase_of, region_arg
from cli.connect import client_errors, open_log, write_flags
from cli.provisioning import (
    LEVELS,
    Outcome,
    Region,
    admin_problems,
    plan,
    provision,
    regions_below,
)
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, emit
from keys.errors import KeyLoadError
from keys.keyfile import KdfProfile, KeyFileBatch, read_passphrase

__all__ = ["MANIFEST", "add_command"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "saksi-provision/v1"
LOCK = ".provision.lock"


def _levels(level: str, prefix: str) -> list[str]:
    if level == "all":
        return [name for name, length in LEVELS.items() if length >= len(prefix)]
    if LEVELS[level] < len(prefix):
        raise CommandError(
            f"--level {level} is above --prefix {prefix}",
            "pick a level at or below the prefix's own "
            "(village 10 digits, district 6, regency 4, province 2, national 0)",
            EXIT_USAGE,
        )
    return [level]


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """``out`` created if need be, and held by this run alone."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # a directory of keys
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise CommandError(
            f"cannot use --out {out}: {e.strerror or e}",
            "pass a directory this user can create and write",
        ) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise CommandError(
                f"another 'saksi keys provision' is writing to {out}",
                "wait for it to finish, then run this again",
                EXIT_FAILED,
            ) from e
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"expected format {MANIFEST_FORMAT!r}")
        keys = doc["keys"]
        if not isinstance(keys, dict):
            raise TypeError("keys is not an object")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(
            f"{path} is not a provisioning manifest ({e})",
            "move it away: running this again writes it anew from the key files "
            "and the log's registry",
            EXIT_FAILED,
        ) from e
    return keys


def _write_manifest(path: Path, origin: str, keys: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest atomically (a reader sees the old one or the new)."""
    doc = {
        "format": MANIFEST_FORMAT,
        "log": origin,
        "keys": dict(sorted(keys.items())),
    }
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _progress() -> Callable[[int, int], None]:
    """``keys: done/total (rate)`` on stderr: live on a terminal, else every 10 s."""
    start = time.monotonic()
    shown = [start]

    def show(done: int, total: int) -> None:
        if not total:
            return
        now = time.monotonic()
        rate = done / (now - start) if now > start else 0.0
        line = f"keys: {done:,}/{total:,} granted or written ({rate:,.0f}/s)"
        if sys.stderr.isatty():
            end = "\n" if done == total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        elif done == total or now - shown[0] >= 10:
            shown[0] = now
            print(line, file=sys.stderr, flush=True)

    return show


def _key_batch(args: argparse.Namespace, passphrase: bytes) -> KeyFileBatch:
    if args.key_passphrase_file is not None:
        try:
            passphrase = read_passphrase(args.key_passphrase_file)
        except KeyLoadError as e:
            raise CommandError(
                str(e), "check the path given to --key-passphrase-file", EXIT_IO
            ) from e
    try:
        return KeyFileBatch(passphrase, KdfProfile[args.kdf.upper()])
    except KeyLoadError as e:
        raise CommandError(
            f"new key files: {e}",
            "pass --key-passphrase-file with a passphrase of 8 bytes or more",
            EXIT_USAGE,
        ) from e


def cmd_provision(args: argparse.Namespace) -> int:
    """Key files and grants for every region at a level under a prefix."""
    prefix = region_arg(args.prefix, "--prefix")
    levels = _levels(args.level, prefix)
    out: Path = args.out
    passphrase = passphrase_of(args)
    admins = [load_signer(path, passphrase) for path in args.admin_key]
    batch = _key_batch(args, passphrase)
    outcome = Outcome()
    planned: list[Region] = []
    with open_log(args, writes=True) as client:
        with client_errors("check --url or --db"):
            registry = client.keys()
        outcome.tree_size = int(registry["tree_size"])
        problems = admin_problems(registry, admins, dt.datetime.now(dt.UTC))
        if problems:
            raise CommandError(
                "these keys cannot grant in this log: " + "; ".join(problems),
                "nothing was written. Pass this log's admin key files "
                "(--admin-key; 'saksi init' wrote admin.key, and "
                "'saksi keys list' shows the admins)",
                EXIT_FAILED,
            )
        with client_errors(
            "load the region table into the log first ('saksi regions load "
            "--prefix CODE'), or check --prefix"
        ):
            for level in levels:
                planned += [
                    Region(code, level)
                    for code in regions_below(client, args.ballot, prefix, level)
                ]
        if not planned:
            raise CommandError(
                f"the log's region registry lists no {' or '.join(levels)} "
                f"under {prefix or 'national'}",
                "load the region table into the log first ('saksi regions "
                "load --prefix CODE'), or check --prefix",
                EXIT_FAILED,
            )
        # Nothing is written before this point: not even --out.
        with _locked(out):
            manifest = _read_manifest(out / MANIFEST)
            work = plan(out, planned, registry, batch)
            try:
                with client_errors(
                    "fix what the problem names, then run this again: "
                    "what is done is kept"
                ):
                    provision(client, out, work, admins, batch, outcome, _progress())
            except (KeyLoadError, OSError) as e:
                raise CommandError(
                    f"cannot write a key file in {out}: {e}",
                    "check that --out is writable and has room, then run this "
                    "again: what is done is kept",
                    EXIT_IO,
                ) from e
            finally:
                for region in planned:  # this run's regions, as they are now
                    manifest.pop(region.code or "national", None)
                manifest.update(outcome.keys)
                _write_manifest(out / MANIFEST, client.origin, manifest)
    return _report(args, levels, prefix, len(planned), outcome)


def _report(
    args: argparse.Namespace,
    levels: list[str],
    prefix: str,
    regions: int,
    outcome: Outcome,
) -> int:
    manifest = args.out / MANIFEST
    result = {
        "levels": levels,
        "prefix": prefix,
        "regions": regions,
        "created": outcome.created,
        "granted": outcome.granted,
        "granted_existing": outcome.granted_existing,
        "already_granted": outcome.already,
        "conflicts": outcome.conflicts,
        "refused": outcome.refused,
        "out": str(args.out),
        "manifest": str(manifest),
        "kdf": args.kdf,
        "tree_size": outcome.tree_size,
    }
    emit(
        args,
        result,
        f"{regions:,} {'/'.join(levels)} regions under {prefix or 'national'}: "
        f"{outcome.created:,} key files written, {outcome.granted:,} granted"
        + (
            f" ({outcome.granted_existing:,} of files already there)"
            if outcome.granted_existing
            else ""
        )
        + f", {outcome.already:,} already granted; manifest {manifest}",
    )
    failed = [f"{c['file']}: {c['problem']}" for c in outcome.conflicts] + [
        f"{r['file']}: refused ({r['cause']}): {r['detail']}" for r in outcome.refused
    ]
    if not failed:
        return EXIT_OK
    print(
        f"saksi: error: {len(failed):,} regions have no granted key: "
        + "; ".join(failed[:5])
        + (f"; and {len(failed) - 5:,} more" if len(failed) > 5 else ""),
        file=sys.stderr,
    )
    print(
        "saksi: hint: a key file is never overwritten: move away a file that "
        "does not open or whose key is revoked or granted otherwise; fix what a "
        "refusal names; then run this again",
        file=sys.stderr,
    )
    return EXIT_FAILED


def add_command(
    keys_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``keys provision``."""
    cmd = keys_sub.add_parser(
        "provision",
        help="a recap key for every region at a level under a prefix, granted",
    )
    write_flags(cmd)
    cmd.add_argument(
        "--admin-key",
        type=Path,
        action="append",
        required=True,
        help="an admin key file that signs every grant (repeat to sign with more)",
    )
    cmd.add_argument(
        "--level",
        required=True,
        choices=[*LEVELS, "all"],
        help="the recap level (the keys' role); all: every level at or below "
        "the prefix",
    )
    cmd.add_argument(
        "--prefix",
        required=True,
        help="region code whose regions get keys (2, 4, 6 or 10 digits), or national",
    )
    cmd.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory of key files <code>.key, national.key and manifest.json",
    )
    cmd.add_argument(
        "--ballot",
        default="ppwp",
        choices=["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"],
        help="the ballot whose region listing is read (default ppwp)",
    )
    cmd.add_argument(
        "--kdf",
        choices=["interactive", "moderate", "sensitive"],
        default="moderate",
        help="Argon2id cost of the key files (derived once per run)",
    )
    cmd.add_argument(
        "--key-passphrase-file",
        type=Path,
        help="passphrase of the new key files (default: the admin keys' one)",
    )
    common_flags(cmd)
    cmd.set_defaults(func=cmd_provision)
