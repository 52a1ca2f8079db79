"""RFC 9457 problem details: the one table from error cause to HTTP status.

Every refusal carries ``type`` (``/problems/<cause>``, stable: scripts key on it),
``title``, ``status``, ``detail`` (what was expected and what was found) and, where
useful, extension members (``current_revision`` for chain conflicts). Responses
never carry a stack trace or key material; an unexpected error is logged with its
traceback on the server and answered with a bare 500.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

__all__ = [
    "PROBLEMS",
    "Problem",
    "ProblemError",
    "client_gone",
    "problem_body",
    "problem_for",
    "problem_response",
]

log = logging.getLogger("saksi.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Server-side problems that are states, not failures: a load balancer polls
# /readyz every few seconds, and the metrics say why it is not ready; back-
# pressure (503 overloaded) comes in floods exactly when the server is busiest,
# and saksi_http_requests_total counts it by status.
_QUIET = frozenset({"not-ready", "overloaded"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem type: its HTTP status and a short title."""

    status: int
    title: str


PROBLEMS: dict[str, Problem] = {
    # The request itself
    "malformed-json": Problem(400, "The body is not valid JSON"),
    "body-too-large": Problem(413, "The request body is too large"),
    "unsupported-media-type": Problem(415, "Send application/json"),
    "malformed-request": Problem(400, "The request does not have the expected form"),
    "method-not-allowed": Problem(405, "This route does not answer that method"),
    "read-only": Problem(405, "This server only reads the log"),
    "request-timeout": Problem(408, "The request did not arrive in time"),
    # The envelope
    "malformed-input": Problem(400, "The envelope is malformed"),
    "invalid-base64": Problem(400, "A field is not canonical base64"),
    "too-many-signatures": Problem(400, "The envelope carries too many signatures"),
    "wrong-payload-type": Problem(400, "The payloadType is not a Saksi record"),
    "bad-signature": Problem(400, "A signature does not verify"),
    "unknown-key": Problem(403, "A signature is by a key the log does not know"),
    # The record
    "non-canonical-json": Problem(400, "The payload is not RFC 8785 canonical JSON"),
    "not-an-integer": Problem(400, "A number is not an integer"),
    "integer-out-of-range": Problem(422, "An integer is out of range"),
    "too-large": Problem(413, "The payload is too large"),
    "entry-too-large": Problem(413, "The log entry would exceed 65,535 bytes"),
    "unknown-schema": Problem(422, "The record names an unknown schema"),
    "unknown-field": Problem(422, "The record has a field its schema does not"),
    "schema-violation": Problem(422, "The record does not match its schema"),
    "issued-at-window": Problem(422, "issued_at is outside the accepted window"),
    # The election's registry in force
    "outside-registry": Problem(422, "Not in the region registry in force"),
    "unknown-candidate": Problem(422, "Not a candidate or party on this ballot here"),
    "unknown-child": Problem(422, "A recap names a child that is not logged"),
    # Authorization
    "key-revoked": Problem(403, "A signing key is revoked"),
    "key-expired": Problem(403, "A signing key's grant has expired"),
    "role-not-allowed": Problem(403, "The signer's role may not write this schema"),
    "out-of-scope": Problem(403, "The subject is outside the signer's region scope"),
    "threshold-not-met": Problem(403, "Too few admin signatures"),
    "unauthorized": Problem(403, "The signers may not write this record"),
    # The subject chain
    "stale-revision": Problem(409, "That revision is already logged"),
    "skipped-revision": Problem(409, "Revisions must not skip"),
    "wrong-prev": Problem(409, "prev does not name the current revision"),
    "revision-conflict": Problem(409, "The record does not continue its subject"),
    # Reads
    "out-of-range": Problem(404, "Beyond the log"),
    "not-found": Problem(404, "Not found"),
    # Load and the server
    "rate-limited": Problem(429, "Too many requests"),
    "overloaded": Problem(503, "The log is busy"),
    "not-ready": Problem(503, "The log is not ready to serve"),
    "storage-unavailable": Problem(503, "The database is unavailable"),
    "signer-unavailable": Problem(503, "The log key is unavailable"),
    "integrity-failure": Problem(500, "The log stopped writing: integrity failure"),
    "internal-error": Problem(500, "Internal error"),
}


class ProblemError(Exception):
    """Raised by route code to answer with a problem of ``cause``."""

    def __init__(
        self,
        cause: str,
        detail: str,
        *,
        retry_after: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.cause = cause if cause in PROBLEMS else "internal-error"
        self.detail = detail
        self.retry_after = retry_after
        self.extra = extra or {}


def problem_for(error: BaseException) -> ProblemError:
    """Map a ledger or verifier error to its problem (unknown causes: 500)."""
    if isinstance(error, ProblemError):
        return error
    cause = getattr(error, "cause", None)
    if not isinstance(cause, str) or cause not in PROBLEMS:
        return ProblemError("internal-error", "internal error")
    extra: dict[str, Any] = {}
    if hasattr(error, "revision") and hasattr(error, "payload_hash"):
        extra = {
            "current_revision": error.revision,
            "current_payload_hash": error.payload_hash,
        }
    path = getattr(error, "path", None)
    if isinstance(path, str):
        extra["path"] = path
    retry = getattr(error, "retry_after", None)
    return ProblemError(
        cause,
        str(error)[:1000],
        retry_after=retry if isinstance(retry, float | int) else None,
        extra=extra,
    )


def problem_body(problem: ProblemError, instance: str | None = None) -> dict[str, Any]:
    """The problem+json document for ``problem``."""
    spec = PROBLEMS[problem.cause]
    body: dict[str, Any] = {
        "type": f"/problems/{problem.cause}",
        "title": spec.title,
        "status": spec.status,
        "detail": problem.detail
        if spec.status < 500 or problem.cause != "internal-error"
        else "internal error",
    }
    if instance is not None:
        body["instance"] = instance
    if problem.retry_after is not None:
        # An extension member (RFC 9457 section 3.2): a batch answers each
        # envelope in its body, where no Retry-After header can say when.
        body["retry_after"] = max(1, math.ceil(problem.retry_after))
    body.update(problem.extra)
    return body


def client_gone(method: str, path: str) -> None:
    """One line, no traceback: the client closed its connection mid-request."""
    log.info("client went away during %s %s", method[:10], path[:200].encode())


def problem_response(
    error: BaseException, instance: str, method: str = ""
) -> JSONResponse:
    """The problem+json response for any error a route raised.

    Refusals (``ProblemError`` and errors with a known ``cause``) are answered as
    their problem; anything else is a bug: its traceback goes to the server's
    log and the client gets a bare 500. Server-side problems (5xx) are logged.
    """
    problem = problem_for(error)
    if problem.cause == "internal-error" and not isinstance(error, ProblemError):
        log.exception("unexpected error on %s %s", method, instance, exc_info=error)
    elif PROBLEMS[problem.cause].status >= 500 and problem.cause not in _QUIET:
        log.error("%s: %s", type(error).__name__, error)
    body = problem_body(problem, instance=instance)
    headers = {}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(problem.retry_after)))
    return JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )
