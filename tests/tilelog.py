"""A plain C2SP tlog-tiles log in memory, served over HTTP on 127.0.0.1.

Entries are opaque bytes (nothing Saksi-specific): what the observer commands
must handle for any log. Tiles are made here from the definition (a level-L tile
holds the roots of 256**L-leaf subtrees, by the test oracle's hashing), so a test
can serve any view it likes, honest or not: ``view(entries)`` makes the files of
one tree (checkpoint signed by the test's key), ``serve(files)`` swaps what the
server answers.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.signing

from tests import oracle
from verifier.checkpoint import Checkpoint
from verifier.note import KEY_TYPE_ED25519, VerifierKey, compute_key_id, sign_note
from verifier.rfc6962 import hash_pairs
from verifier.tile_format import entries_path, format_entry_bundle, tile_path


class NoteKey:
    """An Ed25519 signed-note signer from a seed (the log's key in these tests)."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.name = name
        public = bytes(self._key.verify_key)
        self.key_id = compute_key_id(name, KEY_TYPE_ED25519, public)
        self.verifier_key = VerifierKey.from_public_key(name, public)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


def levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Stored hashes per tile level: level L holds roots of 256**L-leaf subtrees."""
    out = [leaves]
    while len(out[-1]) >= 256:
        below = out[-1]
        up = []
        for start in range(0, len(below) - 255, 256):
            nodes = below[start : start + 256]
            while len(nodes) > 1:
                nodes = hash_pairs(nodes)
            up.append(nodes[0])
        out.append(up)
    return out


def view(entries: list[bytes], key: NoteKey, origin: str) -> dict[str, bytes]:
    """Every file of the tree of ``entries``: checkpoint, tiles, entry bundles."""
    leaves = [oracle.leaf(e) for e in entries]
    files: dict[str, bytes] = {}
    for level, stored in enumerate(levels(leaves)):
        for index in range(0, len(stored), 256):
            part = stored[index : index + 256]
            files[tile_path(level, index // 256, len(part))] = b"".join(part)
    for index in range(0, len(entries), 256):
        part = entries[index : index + 256]
        files[entries_path(index // 256, len(part))] = format_entry_bundle(part)
    text = Checkpoint(origin, len(entries), oracle.mth(leaves)).to_text()
    files["checkpoint"] = sign_note(text, [key])
    return files


class TileServer:
    """Serves a dict of files under ``/`` on 127.0.0.1; 404 for anything else."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.files.get(self.path.lstrip("/").split("?")[0])
                self.send_response(200 if body is not None else 404)
                payload = body if body is not None else b"not found\n"
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, files: dict[str, bytes]) -> None:
        self.files = files

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
