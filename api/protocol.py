"""The HTTP connection, guarded against slow clients (uvicorn's httptools protocol).

uvicorn closes an idle keep-alive connection, but a client that sends its
request line and headers a byte at a time holds its connection (and a slot of
``limit_concurrency``) for as long as it likes: the ASGI app is only called once
the headers are complete, so no app-level timeout can see it. This protocol
closes a connection whose request headers are not complete ``header_timeout``
seconds after the connection opened or the request began (a 408 is not sent:
the client has not finished asking). Bodies are timed by ``api.bodies``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["guarded_protocol"]

log = logging.getLogger("saksi.api")


def guarded_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """The uvicorn HTTP protocol with a deadline on every request's headers."""

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                client = (
                    f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                )
                log.info(
                    "closed a connection from %s: headers not complete in %.0f s",
                    client,
                    header_timeout,
                )
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # noqa: ANN401
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            self._arm()
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedProtocol
