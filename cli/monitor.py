"""``saksi monitor``: the security monitor (``monitor``), as the security team runs it.

``saksi monitor --config FILE`` follows the log until SIGINT/SIGTERM: metrics
on ``[monitor] listen``, alerts as JSON lines and webhooks. ``--once`` reads and
checks the log once and prints what it found (``--json``: one object), for a
cron job or a first look at a configuration. ``--check-config`` only checks the
file.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

from cli.run import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CommandError, emit

__all__ = ["add_command"]


def cmd_monitor(args: argparse.Namespace) -> int:
    """Run the monitor (see the module docstring)."""
    from monitor.config import ConfigError, load_config
    from monitor.service import Monitor

    try:
        config = load_config(args.config)
    except ConfigError as e:
        raise CommandError(
            f"the monitor's configuration: {e}",
            "check the path" if e.io else "see docs/monitor.example.toml for every key",
            EXIT_IO if e.io else EXIT_USAGE,
        ) from e
    if args.check_config:
        emit(
            args,
            {"ok": True, "log": config.log_url, "origin": config.origin},
            f"saksi: {args.config} is a valid monitor configuration for "
            f"{config.origin}",
        )
        return EXIT_OK
    try:
        monitor = Monitor(config)
    except sqlite3.DatabaseError as e:
        raise CommandError(
            f"the monitor's state in {config.state} cannot be used: {e}",
            "point [monitor] state at an empty directory, or restore the state",
            EXIT_USAGE,
        ) from e
    try:
        if args.once:
            return _once(args, monitor)
        monitor.start_canary()
        host, port = monitor.serve_metrics()
        print(
            f"saksi: monitoring {config.origin} at {config.log_url}; metrics on "
            f"http://{host}:{port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            monitor.run(stop)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        print(
            f"saksi: stopped monitoring at {monitor.follower.checked:,} entries "
            "checked",
            file=sys.stderr,
            flush=True,
        )
    finally:
        monitor.close()
    return EXIT_OK


def _once(args: argparse.Namespace, monitor: Any) -> int:  # noqa: ANN401 (Monitor)
    result = monitor.run_once()
    active = [
        {"alert": alert.name, "severity": alert.severity, "summary": alert.summary}
        for alert, _ in monitor.book.active()
    ]
    report = {
        "ok": result.error is None and not active,
        "log_size": result.log_size,
        "checked": result.checked,
        "error": result.error,
        "alerts": active,
    }
    lines = [
        f"saksi: {monitor.config.origin}: {result.checked:,} of {result.log_size:,} "
        "entries checked" + (f" ({result.error})" if result.error else "")
    ]
    lines += [f"  {a['severity']}: {a['alert']}: {a['summary']}" for a in active]
    emit(args, report, "\n".join(lines))
    if report["ok"]:
        return EXIT_OK
    if result.error == "unreachable":  # no verdict: the log could not be read
        why, hint, code = (
            f"the log at {monitor.config.tiles_url} could not be read",
            "check [log] url and tiles, and that the log is up",
            EXIT_IO,
        )
    else:
        names = ", ".join(sorted({a["alert"] for a in active})) or result.error
        why, hint, code = (
            f"the log did not check out: {names}",
            "read the alerts above and their runbooks in the README",
            EXIT_FAILED,
        )
    print(f"saksi: error: {why}\nsaksi: hint: {hint}", file=sys.stderr)
    return code


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``monitor`` on the ``saksi`` subparsers."""
    monitor = sub.add_parser(
        "monitor",
        help="watch the public log as an observer does; alert the security team",
    )
    monitor.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="the monitor's TOML configuration (docs/monitor.example.toml)",
    )
    monitor.add_argument(
        "--once",
        action="store_true",
        help="read and check the log once, print what was found, exit (1 if any "
        "alert is active or the log failed a check, 3 if it could not be read)",
    )
    monitor.add_argument(
        "--check-config",
        action="store_true",
        help="only check the configuration file",
    )
    monitor.add_argument("--json", action="store_true", help="print JSON")
    monitor.set_defaults(func=cmd_monitor)
