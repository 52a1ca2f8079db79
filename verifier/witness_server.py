r"""A C2SP tlog-witness server: cosign a log's checkpoints, never two histories.

``Witness`` decides ``POST /add-checkpoint`` (format: ``verifier.witness_protocol``) in
the spec's order and with its status codes: the request parses (400), the origin
is a log it witnesses (404), the log's key signed it (403), ``old`` is not beyond
the checkpoint (400), ``old`` is the size it last cosigned for that log (409,
body ``<size>\n`` as ``text/x.tlog.size``), and the proof shows the checkpoint
extends that one (422). Only then does it store the checkpoint as the log's
latest, atomically and durably, and answer 200 with its cosignature/v1 line. A
log that forks can therefore get the witness's cosignature on one branch only.

``serve_witness`` puts it behind the standard library's HTTP server. Observers
never import this module: checking cosignatures is ``verifier.cosignature``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from verifier.checkpoint import parse_checkpoint
from verifier.cosignature import cosign
from verifier.errors import VerificationError
from verifier.note import VerifierKey, parse_note, verify_note
from verifier.observe import atomic_write
from verifier.proof_check import verify_consistency
from verifier.rfc6962 import EMPTY_ROOT
from verifier.witness_protocol import (
    MAX_REQUEST,
    SIZE_TYPE,
    WitnessKey,
    parse_add_checkpoint,
)

__all__ = ["Answer", "Witness", "serve_witness"]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, content type, body."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def _text(status: int, message: str) -> Answer:
    return Answer(status, (message.rstrip() + "\n").encode("utf-8"))


class Witness:
    """The witness's decisions and its durable state (one JSON file per log).

    ``clock`` gives the cosignature timestamps (seconds since the epoch).
    """

    def __init__(
        self,
        key: WitnessKey,
        logs: Sequence[VerifierKey],
        state: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.logs = {k.name: k for k in logs}  # a log's origin is its key's name
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()

    def _file(self, origin: str) -> Path:
        return self.state / f"{hashlib.sha256(origin.encode()).hexdigest()[:32]}.json"

    def latest(self, origin: str) -> tuple[int, bytes]:
        """(size, root) this witness last cosigned for ``origin``; (0, empty root)."""
        try:
            data = json.loads(self._file(origin).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0, EMPTY_ROOT
        if data.get("origin") != origin:
            raise RuntimeError(f"witness state {self._file(origin)} is another log's")
        return int(data["size"]), bytes.fromhex(data["root"])

    def add_checkpoint(self, body: bytes) -> Answer:
        """Decide one add-checkpoint request."""
        if len(body) > MAX_REQUEST:
            return _text(400, "request too large")
        try:
            old, proof, note_bytes = parse_add_checkpoint(body)
            note = parse_note(note_bytes)
            checkpoint = parse_checkpoint(note.text)
        except VerificationError as e:
            return _text(400, f"malformed request: {e}")
        log_key = self.logs.get(checkpoint.origin)
        if log_key is None:
            return _text(404, f"unknown log {checkpoint.origin[:100]!r}")
        try:
            verify_note(note_bytes, [log_key])
        except VerificationError as e:
            return _text(403, f"no valid signature by the log's key: {e}")
        if old > checkpoint.size:
            return _text(400, f"old size {old} is beyond the checkpoint's size")
        with self._lock:
            size, root = self.latest(checkpoint.origin)
            if old != size:
                return Answer(409, f"{size}\n".encode(), SIZE_TYPE)
            problem = self._inconsistent(
                size, root, checkpoint.size, checkpoint.root_hash, proof
            )
            if problem:
                return _text(422, problem)
            if checkpoint.size > size or size == 0:
                record = {
                    "origin": checkpoint.origin,
                    "size": checkpoint.size,
                    "root": checkpoint.root_hash.hex(),
                    "checkpoint": note_bytes.decode("utf-8"),
                }
                atomic_write(
                    self._file(checkpoint.origin),
                    json.dumps(record, indent=1).encode("utf-8") + b"\n",
                )
            line = cosign(
                note.text, self.key.name, self.key.signing_key, int(self.clock())
            )
        return Answer(200, line.to_line().encode("utf-8"))

    @staticmethod
    def _inconsistent(
        size: int, root: bytes, new_size: int, new_root: bytes, proof: list[bytes]
    ) -> str:
        """Why (new_size, new_root) does not extend (size, root); "" when it does."""
        if new_size == 0 and new_root != EMPTY_ROOT:
            return "a checkpoint of size 0 must carry the empty tree's root"
        if size == 0:
            return "old size 0 takes an empty proof" if proof else ""
        if new_size == size:
            if proof:
                return "the same size takes an empty proof"
            return "" if new_root == root else f"another root for size {size}"
        try:
            verify_consistency(size, new_size, root, new_root, proof)
        except VerificationError as e:
            return f"the consistency proof does not verify: {e}"
        return ""


def serve_witness(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for ``witness`` (call ``serve_forever`` on it)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "saksi-witness"
        sys_version = ""

        def _answer(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("content-type", answer.content_type)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def do_POST(self) -> None:
            if self.path.rstrip("/").rsplit("/", 1)[-1] != "add-checkpoint":
                self._answer(_text(404, "not found"))
                return
            try:
                length = int(self.headers.get("content-length", ""))
            except ValueError:
                self._answer(_text(411, "content-length required"))
                return
            if not 0 <= length <= MAX_REQUEST:
                self._answer(_text(400, "request too large"))
                return
            self._answer(witness.add_checkpoint(self.rfile.read(length)))

        def do_GET(self) -> None:
            self._answer(_text(405, "POST add-checkpoint"))

        def log_message(self, format: str, *args: object) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)
