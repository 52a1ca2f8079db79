"""A raw HTTP/1.1 server on 127.0.0.1 that misbehaves on cue, else forwards.

Each request takes the next behaviour scripted for its path (query left off);
when a path's script is used up, requests pass. Behaviours:

* ``pass``: forward to the upstream and relay its whole answer (without an
  upstream: answer ``200`` with the canned JSON);
* ``drop``: read the request, close without answering (``RemoteDisconnected``);
* ``reset``: read the request, close with a TCP RST (``ConnectionResetError``);
* ``truncate``: ``200`` with a Content-Length larger than the body sent, then
  close (``IncompleteRead``);
* ``truncated-503``: the same with a ``503`` problem (the client reads an
  error's body too);
* ``garbage``: answer a line that is not HTTP (``BadStatusLine``);
* ``stall``: answer nothing until the client has timed out (``TimeoutError``);
* ``lost``: forward (the upstream acts on it), then close without answering;
* ``lost-truncated``: forward, then relay only half of the answer's body.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class FlakyServer:
    def __init__(
        self,
        script: dict[str, list[str]] | None = None,
        *,
        upstream: str | None = None,
        answer: bytes = b'{"ok": true}',
    ) -> None:
        self.script = {path: list(steps) for path, steps in (script or {}).items()}
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        self.answer = answer
        self.requests: list[tuple[str, str, str]] = []  # method, path, behaviour
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def attempts(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.requests if (m, p) == (method, path))

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> FlakyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving --------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            method, target, headers, body = _read_request(conn)
            path = urllib.parse.urlsplit(target).path
            with self._lock:
                steps = self.script.get(path)
                behaviour = steps.pop(0) if steps else "pass"
                self.requests.append((method, path, behaviour))
            self._behave(conn, behaviour, method, target, headers, body)
        except OSError:
            pass
        finally:
            conn.close()

    def _behave(
        self,
        conn: socket.socket,
        behaviour: str,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        if behaviour == "drop":
            return
        if behaviour == "reset":
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            return
        if behaviour == "truncate":
            conn.sendall(_head(200, "OK", [("Content-Type", "application/json")], 100))
            conn.sendall(b'{"tree')
            return
        if behaviour == "truncated-503":
            head = _head(503, "Service Unavailable", [], 300)
            conn.sendall(head + b'{"type": "/problems/overloaded"')
            return
        if behaviour == "garbage":
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            return
        if behaviour == "stall":
            self._stop.wait(5)
            return
        status, reason, extra, answer = self._forward(method, target, headers, body)
        if behaviour == "lost":
            return
        if behaviour == "lost-truncated":
            conn.sendall(_head(status, reason, extra, len(answer)))
            conn.sendall(answer[: len(answer) // 2])
            return
        assert behaviour == "pass", behaviour
        conn.sendall(_head(status, reason, extra, len(answer)) + answer)

    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        if self.upstream is None:
            return 200, "OK", [("Content-Type", "application/json")], self.answer
        upstream = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        try:
            sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
            upstream.request(method, target, body=body or None, headers=sent)
            response = upstream.getresponse()
            answer = response.read()
            extra = [
                (k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
            ]
            return response.status, response.reason, extra, answer
        finally:
            upstream.close()


def _head(
    status: int, reason: str, headers: list[tuple[str, str]], length: int
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client went away")
        body += chunk
    return method, target, headers, body
