"""``saksi-verify witness``: cosign checkpoints as a C2SP tlog-witness.

(1) The witness's key file is private and well-formed; (2) the logs it
witnesses are pinned by key (a log's origin is its key's name); (3) it serves
``verifier.witness_server`` until stopped (SIGINT or SIGTERM).

The server is imported only when this command runs: the observer's commands
(``checkpoint`` above all) never load it.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from verifier.commands._common import (
    EXIT_IO,
    EXIT_USAGE,
    Exit,
    Subparsers,
    read,
    vkey,
)
from verifier.errors import MalformedInput
from verifier.observe import default_state_dir
from verifier.witness_protocol import WitnessKey, ensure_private

__all__ = ["register", "run"]


def _witness_key(path: Path) -> WitnessKey:
    try:
        ensure_private(path)
        return WitnessKey.parse(read(path, "--key-file").decode("utf-8", "replace"))
    except MalformedInput as e:
        raise Exit(
            EXIT_USAGE,
            f"--key-file {path}: {e}",
            "make one with 'saksi-verify witness-key --name NAME --out FILE'",
        ) from e
    except FileNotFoundError as e:
        raise Exit(EXIT_IO, f"--key-file {path}: no such file") from e


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Serve as a C2SP tlog-witness until stopped (SIGINT or SIGTERM)."""
    from verifier.witness_server import Witness, serve_witness

    # (1) and (2)
    key = _witness_key(args.key_file)
    logs = [vkey(k, "--log-key") for k in args.log_key]
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise Exit(EXIT_USAGE, f"--listen {args.listen}: expected HOST:PORT")
    state = args.state or default_state_dir() / "witness" / key.name
    # (3)
    try:
        witness = Witness(key, logs, state)
        server = serve_witness(witness, host or "127.0.0.1", int(port))
    except OSError as e:
        raise Exit(EXIT_IO, f"cannot listen on {args.listen}: {e.strerror}") from e
    bound_host, bound_port = server.server_address[:2]
    started = {
        "witness": key.name,
        "vkey": str(key.verifier_key),
        "url": f"http://{bound_host!s}:{bound_port}",
        "logs": [str(k) for k in logs],
        "state": str(state),
    }
    print(
        json.dumps(started)
        if args.json
        else (
            f"witness {key.name} ({key.verifier_key}) cosigning "
            f"{', '.join(k.name for k in logs)} on {started['url']}"
        ),
        flush=True,
    )

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return {"verified": True, "stopped": True, **started}


def register(sub: Subparsers) -> None:
    """Add the ``witness`` command."""
    parser = sub.add_parser("witness", help="cosign checkpoints (C2SP tlog-witness)")
    parser.add_argument(
        "--log-key",
        action="append",
        required=True,
        metavar="VKEY",
        help="the key of a log to witness (its name is the origin); repeat",
    )
    parser.add_argument(
        "--key-file", type=Path, required=True, help="the witness's private key"
    )
    parser.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="the address to serve the witness on, e.g. 127.0.0.1:8081",
    )
    parser.add_argument("--state", type=Path, help="where cosigned sizes are kept")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run, summary=lambda r: "witness stopped")
