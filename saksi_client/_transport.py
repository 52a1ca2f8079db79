"""One HTTP exchange with the log, retried on transport failures and 429/503.

Every way an exchange can fail before a whole answer is read (refused, reset or
dropped connections, a truncated body, a timeout, a malformed status line: any
``OSError`` or ``http.client.HTTPException``) becomes ``TransportError`` once the
retries are spent. Retrying is safe for every request the client makes: reads
are idempotent, and the log answers a repeated envelope with its original
receipt, so a write whose answer was lost can be sent again.

Deliberately not here: parsing the answer (JSON, problem documents, notes).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Answer", "TransportError", "exchange"]

# What urllib and http.client raise when an exchange does not complete:
# URLError, TimeoutError and ConnectionError are OSErrors; IncompleteRead,
# BadStatusLine and LineTooLong are HTTPExceptions.
_FAILURES = (OSError, http.client.HTTPException)
MAX_WAIT = 30.0


class TransportError(Exception):
    """The log could not be reached, or kept answering 429/503, within the retries.

    After a write (a submission), its outcome is unknown: sending the same
    envelope again is safe, the log answers a repeat with the original receipt.
    """


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer: status, the whole body, and any Retry-After."""

    status: int
    body: bytes
    retry_after: str = ""


def _once(url: str, method: str, body: bytes | None, timeout: float) -> Answer:
    request = urllib.request.Request(  # noqa: S310 - the caller checked the scheme
        url,
        data=body,
        method=method,
        headers={"content-type": "application/json"} if body else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as e:
        # The error's body is read here, under the same failure handling: a
        # problem document can be truncated or reset like any other answer.
        try:
            return Answer(e.code, e.read(), str(e.headers.get("Retry-After", "")))
        finally:
            e.close()


def _describe(error: BaseException, timeout: float) -> str:
    """What went wrong with an exchange, in words (no traceback, no internals)."""
    if isinstance(error, urllib.error.URLError) and isinstance(
        error.reason, BaseException
    ):
        error = error.reason
    if isinstance(error, http.client.IncompleteRead):
        more = "" if error.expected is None else f", {error.expected} more expected"
        return (
            "the connection closed in the middle of the answer "
            f"({len(error.partial)} bytes received{more})"
        )
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(error, http.client.BadStatusLine):
        return f"the answer is not HTTP (it starts {str(error)[:40]!r})"
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(error, ConnectionResetError):
        return "the connection was reset"
    if isinstance(error, ConnectionAbortedError):
        return "the connection was aborted"
    if isinstance(error, BrokenPipeError):
        return "the connection broke while the request was sent"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"{type(error).__name__}: {error}"


def exchange(
    url: str,
    method: str,
    body: bytes | None,
    *,
    timeout: float,
    retries: int,
    sleep: Callable[[float], None],
) -> Answer:
    """Send a request; retry transport failures and 429/503; return the answer.

    Waits ``0.5 s`` before the first retry and twice as long before each next
    one (a 429/503 that says ``Retry-After: N`` waits ``N`` s instead), never
    more than 30 s. The last 429/503 is returned like any other answer.

    Raises:
        TransportError: no complete answer after ``retries + 1`` attempts; the
            message says what failed and, for a write, that its outcome is
            unknown but safe to retry.
    """
    delay = 0.5
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            answer = _once(url, method, body, timeout)
        except _FAILURES as e:
            if last:
                raise TransportError(
                    _given_up(url, method, attempt + 1, e, timeout)
                ) from e
            sleep(delay)
            delay *= 2
            continue
        if answer.status in (429, 503) and not last:
            asked = answer.retry_after
            sleep(min(MAX_WAIT, float(asked) if asked.isdigit() else delay))
            delay *= 2
            continue
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


def _given_up(
    url: str, method: str, attempts: int, error: BaseException, timeout: float
) -> str:
    what = _describe(error, timeout)
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    message = f"{method} {url} failed ({tries}): {what}"
    if method != "GET":
        message += (
            "; the outcome of this write is unknown, and it is safe to retry: "
            "the log answers the same envelope sent again with its original "
            "receipt, never a second entry"
        )
    return message
