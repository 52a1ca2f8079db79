"""The access log: one JSON line per request, around the whole app (fast lane too).

Each line: ``time`` (RFC 3339 UTC), ``request_id`` (also sent back as
``X-Request-Id``), ``method``, ``route`` (the route's template, never the raw
path or query: nothing a client typed is copied into the log), ``status``,
``duration_ms``, and ``keyids`` where a write named its signers. Never a body,
a header value or key material. A method that is not a plain token is logged
as ``OTHER``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog", "method_of", "route_of"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"}
_TILE = re.compile(r"^/log/tile/(entries/)?")
# The fast lane's routes (FastAPI's own are read from the matched route).
_FIXED = {
    "/v1/entries": "/v1/entries",
    "/v1/entries/batch": "/v1/entries/batch",
    "/log/checkpoint": "/log/checkpoint",
    "/v1/proofs/inclusion": "/v1/proofs/inclusion",
}


def method_of(scope: Scope) -> str:
    """The request's method, or ``OTHER`` for one that is not a plain token."""
    method = scope.get("method", "")
    return method if method in _METHODS else "OTHER"


def route_of(scope: Scope) -> str:
    """The template of the route that answered, or a fixed word when none did."""
    route = scope.get("route")
    # path_format: the template without its convertors ({index}, not {index:int}).
    template = getattr(route, "path_format", None)
    if isinstance(template, str):
        return template
    path = scope.get("path", "")
    if path in _FIXED:
        return _FIXED[path]
    match = _TILE.match(path)
    if match:
        return "/log/tile/entries/{path}" if match.group(1) else "/log/tile/{path}"
    return "(unmatched)"


class AccessLog:
    """ASGI middleware writing one JSON line per HTTP request to ``stream``."""

    def __init__(
        self,
        app: ASGIApp,
        stream: TextIO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.stream = stream
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then write its line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The app sends it back as X-Request-Id (``api.fastlane.SaksiAPI``).
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [0]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            self.write(scope, request_id, status[0], time.perf_counter() - started)

    def write(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        """One line for a finished request (status 0: no response was sent)."""
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "request_id": request_id,
            "method": method_of(scope),
            "route": route_of(scope),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        keyids = scope.get("state", {}).get("keyids")
        if keyids:
            line["keyids"] = sorted(keyids)[:16]
        try:
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or full log never fails a request
            pass
