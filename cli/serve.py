"""``saksi serve``: the log over HTTP, its ledger API and tlog-tiles.

The address is bound before the log is opened (a busy port costs nothing);
then the writer starts, the witnesses are asked once, and uvicorn serves the
app (``api.app.create_app``) with its slow-client guards until SIGINT/SIGTERM.
With ``--read-only`` no key is unlocked and no writer starts: the process
serves the reads of a log another ``saksi serve`` writes, from the signed
head in the database (as many such processes as you like).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cli.args import explorer_pins
from cli.connect import SERVE_URL_FILE
from cli.local import open_cluster, open_reader, open_service
from cli.run import CommandError
from ledger.cluster import ClusterLog
from ledger.cosigning import WitnessEndpoint, parse_witnesses
from ledger.errors import IntegrityFailure, LedgerError
from ledger.recordlog import ReadOnlyLog, RecordLog
from verifier.note import VerifierKey

if TYPE_CHECKING:
    from api.settings import ApiSettings

__all__ = ["add_command"]


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the log over HTTP until interrupted (SIGINT/SIGTERM stop cleanly).

    The address is bound before the log is opened, so a busy port costs
    nothing; then the writer starts (and proves what it will act on), the
    witnesses are asked once, and the server runs with its slow-client guards.
    With ``--workers N`` that happens in N processes sharing the address.
    """
    from api.settings import ApiSettings

    try:
        settings = ApiSettings.from_env()
    except ValueError as e:
        raise CommandError(str(e), "fix the SAKSI_* limit variables", 2) from e
    host, port = _listen(args)
    specs = [" ".join(pair) for pair in args.witness or ()]
    if args.read_only and specs:
        raise CommandError(
            "a read-only server asks no witnesses",
            "give --witness to the writer's 'saksi serve' only",
            2,
        )
    if not args.read_only:  # a shared SAKSI_WITNESSES is the writer's
        specs += [
            s for s in os.environ.get("SAKSI_WITNESSES", "").split(";") if s.strip()
        ]
    try:
        witnesses = parse_witnesses(specs)
    except ValueError as e:
        raise CommandError(
            str(e), "--witness takes a URL and the witness's cosigner key", 2
        ) from e
    pinned = explorer_pins(
        args.explorer_witness, args.explorer_quorum, [w.key for w in witnesses]
    )
    if not 0 < args.refresh < 3600:
        raise CommandError(
            f"--refresh {args.refresh} is not a number of seconds under an hour",
            "e.g. --refresh 1",
            2,
        )
    access = _log_stream(args.access_log, args.no_access_log, "--access-log")
    try:
        security = _log_stream(
            args.security_log, args.no_security_log, "--security-log"
        )
    except BaseException:
        _close(access)
        raise
    if args.workers < 1 or args.workers > 64:
        raise CommandError(
            f"--workers {args.workers} is not between 1 and 64", "e.g. --workers 4", 2
        )
    if args.workers > 1 and not args.read_only and not _clustered(args.db):
        raise CommandError(
            "SQLite is written by one process: --workers needs PostgreSQL",
            "serve a PostgreSQL log (--db postgresql://...), or add --read-only",
            2,
        )
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    if args.workers == 1:
        return _serve(
            args, sock, host, port, settings, witnesses, pinned, access, security
        )
    return _supervise(
        args.workers,
        lambda: _serve(
            args, sock, host, port, settings, witnesses, pinned, access, security
        ),
        sock,
    )


def _serve(
    args: argparse.Namespace,
    sock: socket.socket,
    host: str,
    port: int,
    settings: ApiSettings,
    witnesses: list[WitnessEndpoint],
    pinned: list[VerifierKey],
    access: TextIO | None,
    security: TextIO | None,
) -> int:
    """Open the log and serve it on ``sock`` in this process, until stopped.

    ``pinned``: the witnesses the results explorer pins (with
    ``--explorer-quorum``).
    """
    import uvicorn

    from api.access import AccessLog
    from api.app import create_app
    from api.protocol import guarded_protocol

    try:
        service: RecordLog | ReadOnlyLog | ClusterLog
        if args.read_only:
            service = open_reader(
                args.dir,
                args.db,
                interval=args.refresh,
                trusted=args.trusted_checkpoint or (),
            )
        else:
            skew = dt.timedelta(seconds=settings.issued_at_skew)
            max_age = (
                dt.timedelta(days=settings.issued_at_max_age_days)
                if settings.issued_at_max_age_days
                else None
            )
            trusted = args.trusted_checkpoint or ()
            if _clustered(args.db):
                # The sequencer of the moment asks the witnesses; every
                # member serves what they cosigned (ledger.cluster).
                service = open_cluster(
                    args.dir,
                    args.db,
                    args.passphrase_file,
                    skew=skew,
                    max_age=max_age,
                    trusted=trusted,
                    witnesses=witnesses,
                )
            else:
                service = open_service(
                    args.dir,
                    args.db,
                    args.passphrase_file,
                    skew=skew,
                    max_age=max_age,
                    trusted=trusted,
                    wait_for_lease=True,
                )
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    # Where 'saksi keys grant --db' finds the writer while it runs.
    served = None if args.read_only else args.dir / SERVE_URL_FILE
    mode = " read-only" if args.read_only else ""
    try:
        if witnesses and isinstance(service, RecordLog):
            try:
                service.witness_with(witnesses)
            except IntegrityFailure as e:
                raise CommandError(
                    str(e),
                    "restore the database that holds the witnessed tree, or find "
                    "who else signs with the log key; do not serve this one",
                    1,
                ) from e
        print(
            f"saksi: serving {service.origin} ({_entries(service.reader.size)})"
            f"{mode} on http://{shown}:{port}",
            file=sys.stderr,
            flush=True,
        )
        if served is not None:
            served.write_text(f"http://{shown}:{port}\n", encoding="utf-8")
        # What start-up loaded (the key and region registries, the candidate
        # lists) lives as long as the process: keep it out of every later full
        # collection's scan.
        gc.freeze()
        app = create_app(
            service,
            settings,
            metrics=not args.no_metrics,
            security_log=security,
            backend=service.storage.dialect,
            witnesses=pinned,
            quorum=args.explorer_quorum,
        )
        config = uvicorn.Config(
            app if access is None else AccessLog(app, access),
            http=guarded_protocol(settings.header_timeout),
            timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
            limit_concurrency=settings.max_connections,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        # uvicorn shuts down on SIGTERM, then raises the signal again with the
        # handler it found: make that one unwind, so the finally below runs.
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except _Stopped:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if app.state.security_log is not None:
                app.state.security_log.close()  # what is queued is written
        try:
            stopped_at = _entries(service.reader.size)
        except LedgerError as e:  # a read-only server that found a bad head
            stopped_at = f"a head it refused ({e.cause})"
        print(
            f"saksi: stopped serving {service.origin} at {stopped_at}",
            file=sys.stderr,
            flush=True,
        )
    finally:
        if served is not None:
            served.unlink(missing_ok=True)
        sock.close()
        service.close()
        _close(access)
        _close(security)
    return 0


def _supervise(workers: int, serve: Callable[[], int], sock: socket.socket) -> int:
    """Run ``serve`` in ``workers`` processes sharing ``sock``, until stopped.

    Each worker opens the log itself (its own connections; on PostgreSQL each
    is a member of the cluster). A worker that dies is started again after a
    second; SIGTERM or SIGINT stops them all, and the exit status is the
    first nonzero one a worker stopped with.
    """
    children: dict[int, int] = {}
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = serve()
            except CommandError as e:
                print(
                    f"saksi: error: {e}\nsaksi: hint: {e.hint}",
                    file=sys.stderr,
                    flush=True,
                )
                code = e.code
            except KeyboardInterrupt:
                code = 0
            finally:
                os._exit(code)
        children[pid] = slot

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
        signal.SIGINT: signal.signal(signal.SIGINT, stop),
    }
    status = 0
    try:
        for slot in range(workers):
            spawn(slot)
        print(
            f"saksi: {workers} workers on one address (pids "
            f"{', '.join(str(p) for p in children)})",
            file=sys.stderr,
            flush=True,
        )
        while children:
            try:
                pid, raw = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid not in children:
                continue
            slot = children.pop(pid)
            code = os.waitstatus_to_exitcode(raw)
            if stopping:
                if code > 0 and status == 0:
                    status = code
                continue
            print(
                f"saksi: worker {pid} stopped ({code}); starting another",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(1.0)
            if not stopping:
                spawn(slot)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return status


def _clustered(db: str | None) -> bool:
    """On PostgreSQL every writing ``saksi serve`` is a member of the log's cluster."""
    return db is not None and db.split(":", 1)[0].split("+", 1)[0] in (
        "postgresql",
        "postgres",
    )


def _entries(size: int) -> str:
    return f"{size:,} {'entry' if size == 1 else 'entries'}"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else is opened."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise CommandError(
                f"{shown} is already in use",
                "stop what listens there (another 'saksi serve'?) or choose "
                "another --listen HOST:PORT",
                3,
            ) from e
        raise CommandError(
            f"cannot listen on {shown}: {e.strerror or e}",
            "check the address (--listen HOST:PORT) and your permissions",
            3,
        ) from e
    sock.set_inheritable(True)
    return sock


def _log_stream(target: str | None, off: bool, flag: str) -> TextIO | None:
    """Where a JSON-lines log goes: stderr (``-``, the default), a file, or off."""
    if off:
        return None
    if target in (None, "-"):
        return sys.stderr
    try:
        return open(target, "a", encoding="utf-8")
    except OSError as e:
        raise CommandError(
            f"cannot open {target} for {flag}: {e.strerror or e}",
            f"pass a writable {flag} FILE, or {flag} - for stderr",
            3,
        ) from e


def _close(stream: TextIO | None) -> None:
    if stream is not None and stream is not sys.stderr:
        stream.close()


class _Stopped(Exception):
    """SIGTERM after uvicorn's graceful shutdown."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Stopped


def _listen(args: argparse.Namespace) -> tuple[str, int]:
    if args.listen is None:
        return args.host, args.port
    host, sep, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(
            f"--listen {args.listen!r} is not HOST:PORT",
            "e.g. --listen 127.0.0.1:8080 or --listen [::1]:8080",
            2,
        )
    return host, int(port)


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` on the ``saksi`` subparsers."""
    serve = sub.add_parser("serve", help="serve the ledger API and tlog-tiles")
    serve.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    serve.add_argument("--dir", type=Path, required=True, help="the log's directory")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="address to serve on (127.0.0.1:8080)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the older form of --listen: the address (default 127.0.0.1)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8080,
        help="the older form of --listen: the port (default 8080)",
    )
    serve.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the log key's passphrase from this file "
        "(default: SAKSI_KEY_PASSPHRASE)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes on the one address (PostgreSQL, where each "
        "is a member of the log's cluster, or --read-only; default 1)",
    )
    serve.add_argument(
        "--read-only",
        action="store_true",
        help="serve the reads of a log another 'saksi serve' writes: no key, no "
        "writer, no passphrase (writes are answered 405 read-only)",
    )
    serve.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --read-only: how often to look for the writer's new signed "
        "head (default 1)",
    )
    serve.add_argument(
        "--trusted-checkpoint",
        type=Path,
        action="append",
        metavar="FILE",
        help="a checkpoint of this log kept outside its database (an observer's "
        "checkpoint file, a saved /log/checkpoint or a witness's state file); "
        "the log does not start unless it extends it (repeat)",
    )
    for name, what, each in (
        ("access", "access log", "request"),
        ("security", "security event log", "write and refusal"),
    ):
        serve.add_argument(
            f"--{name}-log",
            metavar="FILE",
            help=f"where the {what} goes, one JSON line per {each} "
            "(default: - for stderr)",
        )
        serve.add_argument(
            f"--no-{name}-log", action="store_true", help=f"write no {what}"
        )
    serve.add_argument(
        "--no-metrics",
        action="store_true",
        help="count nothing and answer /metrics with 404 (metrics are on by default)",
    )
    serve.add_argument(
        "--witness",
        nargs=2,
        action="append",
        metavar=("URL", "VKEY"),
        help="a C2SP tlog-witness to cosign every checkpoint (repeat; also "
        "SAKSI_WITNESSES='URL VKEY;URL VKEY')",
    )
    serve.add_argument(
        "--explorer-witness",
        action="append",
        metavar="VKEY",
        help="a witness the results explorer pins besides the --witness ones "
        "(repeat; a read-only server has no --witness)",
    )
    serve.add_argument(
        "--explorer-quorum",
        type=int,
        metavar="N",
        help="how many pinned witnesses a checkpoint must carry for the results "
        "explorer to show it as verified (default: 1 when any is pinned)",
    )
    serve.set_defaults(func=cmd_serve)
