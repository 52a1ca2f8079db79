"""``saksi``: the operator's command, one subcommand per task.

Each subcommand's code lives in its own package's ``cli.py`` (``ledger.cli`` for
init and check, ``domains.cli`` for the election and the demo); this module
only wires them together.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import signal
from pathlib import Path

from domains.cli import add_domain_commands
from keys import cli as keys_cli
from ledger.cli import CommandError, add_commands, open_service, run_command
from ledger.logcli import SERVE_URL_FILE, add_log_commands
from ledger.witnessing import parse_witnesses

__all__ = ["main"]


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the log over HTTP until interrupted (SIGINT/SIGTERM stop cleanly)."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    try:
        settings = ApiSettings.from_env()
    except ValueError as e:
        raise CommandError(str(e), "fix the SAKSI_* limit variables", 2) from e
    host, port = _listen(args)
    specs = [" ".join(pair) for pair in args.witness or ()]
    specs += [s for s in os.environ.get("SAKSI_WITNESSES", "").split(";") if s.strip()]
    try:
        witnesses = parse_witnesses(specs)
    except ValueError as e:
        raise CommandError(
            str(e), "--witness takes a URL and the witness's cosigner key", 2
        ) from e
    service = open_service(
        args.dir,
        args.db,
        args.passphrase_file,
        skew=dt.timedelta(seconds=settings.issued_at_skew),
        max_age=dt.timedelta(days=settings.issued_at_max_age_days)
        if settings.issued_at_max_age_days
        else None,
    )
    shown = f"[{host}]" if ":" in host else host
    served = args.dir / SERVE_URL_FILE
    try:
        if witnesses:
            service.witness_with(witnesses)
        logging.getLogger("saksi").info(
            "serving %s (size %d) on %s:%d", service.origin, service.size, host, port
        )
        # Where 'saksi keys grant --db' finds the writer while it runs.
        served.write_text(f"http://{shown}:{port}\n", encoding="utf-8")
        # What start-up loaded (the key and region registries, the candidate
        # lists) lives as long as the process: keep it out of every later full
        # collection's scan.
        gc.freeze()
        # uvicorn shuts down on SIGTERM, then raises the signal again with the
        # handler it found: make that one unwind, so the finally below runs.
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            uvicorn.run(
                create_app(service, settings),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
            )
        except _Stopped:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        served.unlink(missing_ok=True)
        service.close()
    return 0


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


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="serve the ledger API and tlog-tiles")
    serve.add_argument("--db", help="SQLAlchemy URL (default: sqlite:///DIR/saksi.db)")
    serve.add_argument("--dir", type=Path, required=True, help="the log's directory")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="address to serve on (127.0.0.1:8080)"
    )
    serve.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    serve.add_argument("--port", type=int, default=8080, help=argparse.SUPPRESS)
    serve.add_argument("--passphrase-file", type=Path)
    serve.add_argument(
        "--witness",
        nargs=2,
        action="append",
        metavar=("URL", "VKEY"),
        help="a C2SP tlog-witness to cosign every checkpoint (repeat; also "
        "SAKSI_WITNESSES='URL VKEY;URL VKEY')",
    )
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The full ``saksi`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="saksi", description="Saksi: a signed, append-only election ledger"
    )
    parser.add_argument("--version", action="version", version="saksi 0.1.0")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more diagnostics on stderr"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    _add_serve(sub)
    add_log_commands(sub, keys_cli.add_commands(sub))
    add_domain_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)
