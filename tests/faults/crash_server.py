"""Child process for the crash test: a ledger behind a tiny line protocol on 127.0.0.1.

Request: one line of hex entry bytes. Reply: ``<index> <leaf hash hex> <size>`` once
the entry is durable, or ``ERR <reason>``. Killed with SIGKILL by the test.
"""

from __future__ import annotations

import socketserver
import sys
import time
from pathlib import Path

from keys import Ed25519Signer
from ledger.errors import LedgerError
from ledger.ledger import Ledger
from ledger.storage.sql import SqlStorage
from tests.helpers import TEST_SEED

ORIGIN = "test.saksi.example/log"


def main() -> None:
    url, port_file = sys.argv[1], Path(sys.argv[2])
    signer = Ed25519Signer(ORIGIN, TEST_SEED)
    ledger = Ledger.of_entries(
        SqlStorage.open(url), signer, signer.verifier_key, ORIGIN, clock=time.time
    )
    ledger.start()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    receipt = ledger.append(bytes.fromhex(line.decode().strip()))
                    reply = (
                        f"{receipt.index} {receipt.leaf_hash.hex()} {receipt.size}\n"
                    )
                except LedgerError as e:
                    reply = f"ERR {e}\n"
                self.wfile.write(reply.encode())
                self.wfile.flush()

    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
