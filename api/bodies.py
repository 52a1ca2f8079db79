"""Request bodies read under a size limit."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.errors import ProblemError
from verifier.jcs import parse_json

__all__ = ["read_json"]


async def read_json(request: Request, limit: int) -> Any:  # noqa: ANN401
    """The request's JSON body, refusing more than ``limit`` bytes before parsing.

    Raises:
        ProblemError: wrong media type, too large, or not strict I-JSON.
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
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError("body-too-large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    # The body limit is the size limit here: parse_json only needs a ceiling.
    return parse_json(b"".join(chunks), limit, "request body")
