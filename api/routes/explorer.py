"""The public results explorer: its static files under ``/explorer/``, and ``/``.

The page (``explorer/static``) runs entirely in the visitor's browser and reads
only the public API; the server sends its files as they are. ``trust.json``
is the one answer made here: what the page pins (the log's origin and key, the
witnesses' cosigner keys and how many of them must have cosigned), which a
visitor compares with the commission's announcement; the page keeps it and
refuses a later change of it loudly.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.errors import ProblemError
from explorer import STATIC

__all__ = ["SECURITY_HEADERS", "router"]

router = APIRouter(include_in_schema=False)

# Nothing but the page's own files and the API it reads: no inline script,
# no third party, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
_ROOT = STATIC.resolve()


@router.get("/")
async def home() -> RedirectResponse:
    """The explorer is the public face of the log."""
    return RedirectResponse("/explorer/", status_code=307)


@router.get("/explorer")
async def explorer_no_slash() -> RedirectResponse:
    """Relative links resolve under /explorer/."""
    return RedirectResponse("/explorer/", status_code=307)


@router.get("/explorer/trust.json")
async def trust(request: Request) -> JSONResponse:
    """What the page pins: origin, log key, witnesses and their quorum."""
    return JSONResponse(request.app.state.explorer_trust, headers=SECURITY_HEADERS)


@router.get("/explorer/{name:path}")
async def static_file(name: str) -> Response:
    """One of the page's files, as it is in the package."""
    path = _file(name or "index.html")
    kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(
        path.read_bytes(),
        media_type=kind or "application/octet-stream",
        headers=headers,
    )


def _file(name: str) -> Path:
    """The file ``name`` names under the page's directory, or a 404."""
    if (
        "\\" in name
        or "\0" in name
        or any(p in ("", ".", "..") for p in name.split("/"))
    ):
        raise ProblemError("not-found", "no such file in the explorer")
    path = (_ROOT / name).resolve()
    if not path.is_relative_to(_ROOT) or not path.is_file():
        raise ProblemError("not-found", "no such file in the explorer")
    return path
