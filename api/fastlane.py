"""The fast lane: the hottest routes served without FastAPI's per-request machinery.

FastAPI's routing, dependency resolution and middleware stack cost more per
request than a whole signed append costs in process (``python -m bench.http``
measures a trivial FastAPI route against bare ASGI in every run: BENCHMARKS.md,
"The HTTP stack alone"). The writes, the tlog-tiles
reads and inclusion proofs by index are therefore dispatched here first, straight
to the same route functions FastAPI calls, with the same problem+json answers
(``api.errors.problem_response``). Anything the lane does not recognise as one of
its well-formed requests (another method, an unusual query, an error on a read)
goes on to FastAPI unchanged, which also keeps documenting every route.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from api.access import method_of, route_of
from api.errors import client_gone, problem_response
from api.metrics import Metrics
from api.openapi import accurate_openapi
from api.routes import entries, proofs, tiles
from ledger.read.reader import LogReader

__all__ = ["FastLane", "SaksiAPI"]

_INDEX_QUERY = re.compile(rb"index=(0|[1-9][0-9]{0,17})")
_LEAF_QUERY = re.compile(rb"leaf_hash=([0-9a-f]{64})")
_TILE_PREFIX = "/log/tile/"

Read = Callable[[], Awaitable[Response]]


class FastLane:
    """Dispatches the hot requests of one app straight to their route functions."""

    def __init__(self, app: FastAPI, reader: LogReader) -> None:
        self.app = app
        self.reader = reader
        self._writes: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/v1/entries": entries.post_entry,
            "/v1/entries/batch": entries.post_batch,
        }

    def _read(self, path: str, query: bytes) -> Read | None:
        reader = self.reader
        if path.startswith(_TILE_PREFIX) and not query:
            rest = path[len(_TILE_PREFIX) :]
            return lambda: tiles.tile(rest, reader)
        if path == "/log/checkpoint" and not query:
            return lambda: tiles.checkpoint(reader)
        if path == "/v1/proofs/inclusion":
            if m := _INDEX_QUERY.fullmatch(query):
                index = int(m.group(1))
                return lambda: proofs.inclusion(reader, index=index, leaf_hash=None)
            if m := _LEAF_QUERY.fullmatch(query):
                leaf = m.group(1).decode()
                return lambda: proofs.inclusion(reader, index=None, leaf_hash=leaf)
        return None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Serve ``scope`` if it is a hot request; False leaves it to FastAPI."""
        method, path = scope["method"], scope["path"]
        if method == "POST":
            route = self._writes.get(path)
            if route is None:
                return False
            scope["app"] = self.app
            request = Request(scope, receive)
            try:
                response = await route(request)
            except ClientDisconnect:  # nobody left to answer
                client_gone(method, path)
                return True
            except Exception as exc:  # every refusal is answered as its problem
                response = problem_response(exc, path, method)
        elif method == "GET":
            read = self._read(path, scope.get("query_string", b""))
            if read is None:
                return False
            try:
                response = await read()
            except Exception:  # FastAPI answers the same request again
                # Errors on reads are rare and FastAPI explains them exactly as a
                # cold request would be explained: hand it over, nothing was sent.
                return False
        else:
            return False
        await response(scope, receive, send)
        return True


class SaksiAPI(FastAPI):
    """FastAPI with a ``FastLane`` in front (set by ``create_app``).

    Every HTTP request gets a request id (``X-Request-Id``, also in the access
    and security logs) and, with ``metrics``, is counted by route template,
    method and status, with its duration.
    """

    fast_lane: FastLane | None = None
    metrics: Metrics | None = None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document as the API really answers (``api.openapi``)."""
        return accurate_openapi(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: the fast lane first, then FastAPI."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id: str = state.get("request_id") or secrets.token_hex(8)
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_marked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            lane = self.fast_lane
            if lane is None or not await lane.handle(scope, receive, send_marked):
                await super().__call__(scope, receive, send_marked)
        finally:
            metrics = self.metrics
            if metrics is not None:
                metrics.request(
                    route_of(scope),
                    method_of(scope),
                    status,
                    time.perf_counter() - started,
                )
