"""``saksi publish``: the log's tlog-tiles tree as static files, for any web server.

``saksi publish --dir DIR --out PATH`` writes what ``saksi serve`` answers under
``/log/`` (``checkpoint``, ``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``),
byte for byte, into PATH: serve PATH with nginx, a CDN or a bucket and point
``saksi-verify audit --log`` and ``saksi monitor`` at it. It reads the log
from its database with the public key only (``saksi serve --read-only``'s
checks), proves every tile and entry before writing it, and writes the
checkpoint last (``ledger.publish``). Full tiles and bundles are written once;
a later run writes only what is new.

With ``--once`` it publishes the current tree and exits; otherwise it follows
the log every ``--interval`` seconds until SIGINT/SIGTERM, and a failed write
(a full disk) is retried until it succeeds. The checkpoint published is the
log's latest signed one: witnesses' cosignatures live in the writer's process.

With ``--explorer PATH`` it also writes the public results explorer there,
once at the start: the page's files and its ``trust.json`` (this log's origin
and key, the witnesses ``--explorer-witness`` pins and the
``--explorer-quorum`` they must reach), the same as ``saksi serve`` answers
under ``/explorer/``. Serve PATH as ``/explorer/`` beside the tiles
(``deploy/nginx/saksi-explorer.conf``); the page's reads under ``/v1/`` and
``/log/checkpoint`` (cosigned) go to read-only ``saksi serve`` processes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cli.args import explorer_pins
from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from ledger.publish import Publication, TilePublisher
    from ledger.recordlog import ReadOnlyLog
    from verifier.note import VerifierKey

__all__ = ["add_command"]

DEFAULT_INTERVAL = 1.0
_PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr


def _out_dir(
    path: Path, flag: str = "--out", what: str = "publish the tiles in"
) -> None:
    """``flag`` must be a directory, or a new one in an existing directory."""
    if path.exists() and not path.is_dir():
        raise CommandError(
            f"{flag} {path} is not a directory",
            f"pass the directory to {what} (it is made if missing)",
            EXIT_USAGE,
        )
    if not path.exists() and not path.parent.is_dir():
        raise CommandError(
            f"no directory {path.parent} for {flag}", "create it first", EXIT_IO
        )


def _write_error(e: OSError, out: Path) -> CommandError:
    """A failed write to ``out`` as a message with the hint that fixes it."""
    where = e.filename or out
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = (
            f"free space on the filesystem of {out}, then run again: nothing "
            "half-written is left and the published checkpoint has not moved"
        )
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"make {out} writable by this user (its permissions, or its mount)"
    else:
        hint = f"check {out} and run again"
    return CommandError(f"cannot write {where}: {e.strerror or e}", hint, EXIT_IO)


@contextlib.contextmanager
def _sink(out: Path) -> Iterator[Any]:
    """The locked directory sink of ``out``, made if missing."""
    from ledger.publish import DirectorySink, TargetBusy

    stack = contextlib.ExitStack()
    try:
        out.mkdir(mode=0o755, exist_ok=True)
        sink = stack.enter_context(DirectorySink.open(out))
    except TargetBusy as e:
        raise CommandError(
            str(e), "stop the other 'saksi publish' first: one writer per directory"
        ) from e
    except OSError as e:
        raise _write_error(e, out) from e
    with stack:
        yield sink


def _publish_once(
    publisher: TilePublisher,
    log: ReadOnlyLog,
    out: Path,
    progress: Callable[[int, int], None] | None,
) -> Publication:
    """Publish the log's latest tree; every failure as a ``CommandError``.

    Raises:
        CommandError: the target refused the tree (1, 2) or a write failed (3).
        LedgerError: the database cannot be read, or fails its checks.
    """
    from ledger.publish import Conflict, ForeignTarget

    try:
        return publisher.publish(log.tree.refresh(), progress)
    except ForeignTarget as e:
        raise CommandError(
            f"{out} holds another log's tree: {e}",
            "pass an empty directory, or the one this log publishes to",
            EXIT_USAGE,
        ) from e
    except Conflict as e:
        raise CommandError(
            f"{out} and the log differ: {e}",
            "keep both as evidence: run 'saksi check' on the log and compare "
            "with the published checkpoint; never delete published files",
            EXIT_FAILED,
        ) from e
    except OSError as e:
        raise _write_error(e, out) from e


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """Progress on stderr, every few seconds of a long publish (not with --json)."""
    if args.json:
        return None
    last = [time.monotonic()]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY and done < total:
            last[0] = now
            print(f"  {done:,} of {total:,} files", file=sys.stderr, flush=True)

    return report


def _site(
    args: argparse.Namespace, log: ReadOnlyLog, pinned: list[VerifierKey]
) -> dict[str, Any] | None:
    """Write the explorer's page to ``--explorer`` (None without it).

    Raises:
        CommandError: a file cannot be written (3).
    """
    from explorer import trust_document, write_site

    site: Path | None = args.explorer
    if site is None:
        return None
    trust = trust_document(log.origin, log.verifier_key, pinned, args.explorer_quorum)
    try:
        written = write_site(site, trust)
    except OSError as e:
        raise _write_error(e, site) from e
    return {"out": str(site), "written": written, "quorum": trust["quorum"]}


def _explorer_args(args: argparse.Namespace) -> list[VerifierKey]:
    """``--explorer``'s place, checked before anything is read, and its pins.

    Raises:
        CommandError: a bad key or quorum, pins without ``--explorer``, or
            ``--explorer`` that is (or is in, or holds) ``--out`` (2); no
            parent directory for it (3).
    """
    site: Path | None = args.explorer
    if site is None:
        if args.explorer_witness or args.explorer_quorum is not None:
            raise CommandError(
                "--explorer-witness and --explorer-quorum pin what the page "
                "written by --explorer trusts",
                "add --explorer PATH (the directory to write the page in)",
                EXIT_USAGE,
            )
        return []
    pinned = explorer_pins(args.explorer_witness, args.explorer_quorum)
    here, tiles = site.resolve(), args.out.resolve()
    if here == tiles or here.is_relative_to(tiles) or tiles.is_relative_to(here):
        raise CommandError(
            f"--explorer {site} and --out {args.out} overlap",
            "give the page a directory of its own beside the tiles, e.g. "
            "--out /var/www/saksi/log --explorer /var/www/saksi/explorer",
            EXIT_USAGE,
        )
    _out_dir(site, "--explorer", "write the page in")
    return pinned


def _report(
    args: argparse.Namespace,
    done: Publication,
    out: Path,
    site: dict[str, Any] | None = None,
) -> None:
    """One line on stdout for a publish (JSON with --json); ``site`` the page's."""
    files = len(done.written)
    result: dict[str, Any] = {
        "ok": True,
        "out": str(out),
        "size": done.size,
        "previous_size": done.old_size,
        "written": files,
        "bytes": done.bytes,
        "present": done.present,
    }
    if site is not None:
        result["explorer"] = site
    if args.json:
        print(json.dumps(result, sort_keys=True), flush=True)
    elif files:
        print(
            f"saksi: published the tree of {done.size:,} entries to {out}: "
            f"{files:,} files written ({done.bytes:,} bytes)",
            flush=True,
        )
    else:
        print(f"saksi: {out} is up to date at {done.size:,} entries", flush=True)
    if site is not None and not args.json:
        changed = len(site["written"])
        print(
            f"saksi: the results explorer is in {site['out']} ("
            + (f"{changed} files written" if changed else "up to date")
            + f", quorum {site['quorum']}): serve it as /explorer/",
            flush=True,
        )


def _interrupt(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish once, or follow the log (see the module docstring)."""
    from cli.local import open_reader
    from ledger.publish import TilePublisher

    interval = DEFAULT_INTERVAL if args.interval is None else args.interval
    if not 0.1 <= interval <= 3600:
        raise CommandError(
            f"--interval {interval:g} is not 0.1 to 3600 seconds",
            "e.g. --interval 1",
            EXIT_USAGE,
        )
    out: Path = args.out
    _out_dir(out)
    pinned = _explorer_args(args)
    # Looked at only when a publish asks (``refresh``): one tree per publish.
    log = open_reader(args.dir, args.db, interval=math.inf)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stops as Ctrl-C does
    try:
        with _sink(out) as sink:
            publisher = TilePublisher(log.reader, sink, log.verifier_key, log.origin)
            site = _site(args, log, pinned)
            if args.once:
                done = _publish_once(publisher, log, out, _progress(args))
                _report(args, done, out, site)
                return EXIT_OK
            return _follow(args, publisher, log, out, interval, site)
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.close()


def _follow(
    args: argparse.Namespace,
    publisher: TilePublisher,
    log: ReadOnlyLog,
    out: Path,
    interval: float,
    site: dict[str, Any] | None = None,
) -> int:
    """Publish every ``interval`` seconds until SIGINT/SIGTERM.

    A failed write or an unreachable database is said once and retried; a
    target that refuses the tree or a log that fails its checks stops it.
    """
    from ledger.errors import StorageUnavailable

    print(
        f"saksi: publishing {log.origin} to {out} every {interval:g} s (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    failing = ""
    reported = False
    try:
        while True:
            try:
                done = _publish_once(publisher, log, out, _progress(args))
            except (CommandError, StorageUnavailable) as e:
                if isinstance(e, CommandError) and e.code != EXIT_IO:
                    raise
                hint = getattr(e, "hint", "check that the database is reachable")
                if str(e) != failing:
                    print(
                        f"saksi: error: {e}\nsaksi: hint: {hint}; retrying every "
                        f"{interval:g} s",
                        file=sys.stderr,
                        flush=True,
                    )
                failing = str(e)
            else:
                if failing:
                    print("saksi: publishing again", file=sys.stderr, flush=True)
                    failing = ""
                if done.written or not reported:
                    _report(args, done, out, None if reported else site)
                    reported = True
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    print(f"saksi: stopped publishing; {_where(publisher, out)}", file=sys.stderr)
    return EXIT_OK


def _where(publisher: TilePublisher, out: Path) -> str:
    """What ``out`` holds now, read again (a stop may come at any moment)."""
    from ledger.publish import PublishError

    try:
        checkpoint = publisher.published(fresh=True)
    except (OSError, PublishError) as e:
        return f"what {out} holds is unknown: {e}"
    if checkpoint is None:
        return f"{out} holds no checkpoint yet"
    return f"{out} holds the tree of {checkpoint.size:,} entries"


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``publish`` on the ``saksi`` subparsers."""
    publish = sub.add_parser(
        "publish",
        help="write the log's tlog-tiles tree as static files for a web server "
        "or CDN to serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("--dir", type=Path, required=True, help="the log's directory")
    publish.add_argument(
        "--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)"
    )
    publish.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="PATH",
        help="the directory to publish in (made if missing; serve it as the "
        "log's tiles prefix)",
    )
    when = publish.add_mutually_exclusive_group()
    when.add_argument(
        "--once", action="store_true", help="publish the current tree and exit"
    )
    when.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help=f"how often to look for a new tree (default {DEFAULT_INTERVAL:g})",
    )
    publish.add_argument(
        "--explorer",
        type=Path,
        metavar="PATH",
        help="also write the public results explorer (its files and trust.json) "
        "in this directory, to serve as /explorer/ (made if missing)",
    )
    publish.add_argument(
        "--explorer-witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's cosigner key the explorer's trust.json pins (repeatable)",
    )
    publish.add_argument(
        "--explorer-quorum",
        type=int,
        metavar="N",
        help="how many pinned witnesses must have cosigned a checkpoint for the "
        "explorer to show it as verified (default: 1 when any is pinned)",
    )
    publish.add_argument("--json", action="store_true", help="print JSON")
    publish.set_defaults(func=cmd_publish)
