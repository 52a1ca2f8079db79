"""Request bodies read under a size limit."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from api.errors import ProblemError
from verifier.jcs import parse_json

__all__ = ["read_json"]


async def read_json(
    request: Request,
    limit: int,
    timeout: float | None = None,
) -> Any:  # noqa: ANN401
    """The request's JSON body, refusing more than ``limit`` bytes before parsing.

    ``timeout`` (default: the app's ``body_timeout``) bounds how long the whole
    body may take to arrive: a slow client is answered 408, not waited for.

    Raises:
        ProblemError: wrong media type, too large, too slow, or not strict I-JSON.
        ClientDisconnect: the client went away before the body was complete.
    """
    media = request.headers.get("content-type", "application/json").split(";")[0]
    if media.strip().lower() not in ("application/json", ""):
        raise ProblemError(
            "unsupported-media-type", f"send application/json, not {media[:60]}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(
            "body-too-large", f"body of {declared} bytes exceeds {limit} bytes"
        )
    if timeout is None:
        settings = getattr(request.app.state, "settings", None)
        timeout = getattr(settings, "body_timeout", None)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProblemError("body-too-large", f"body exceeds {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as e:
        raise ProblemError(
            "request-timeout", f"the body did not arrive within {timeout:g} s"
        ) from e
    # The body limit is the size limit here: parse_json only needs a ceiling.
    return parse_json(b"".join(chunks), limit, "request body")
