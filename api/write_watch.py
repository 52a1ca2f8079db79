"""What the security team sees of each write: its metrics and its event line.

The write routes report every record's outcome here, accepted or refused:
``WriteWatch`` counts it (``api.metrics``) and writes it to the security event
log (``api.security_log``), either of which may be switched off. Everything it
puts in a label or a line is from a closed set or was checked first: a problem
type, a role the key registry gives a key it knows, a subject that passed its
schema, a province code of a record the registry accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from api.access import route_of
from api.errors import PROBLEMS, ProblemError
from api.metrics import AUTHORIZATION_CAUSES, Metrics
from api.security_log import SecurityLog
from ledger.admission import Submission
from ledger.ledger import AppendReceipt
from verifier.election import TALLY
from verifier.rules import tally_flags

__all__ = ["WriteWatch"]

Roles = Callable[[str], str | None]

_COUNTED = ("results/", "recaps/")


def _province(subject: str) -> str | None:
    """The province code of a results or recaps subject (``national`` above)."""
    if not subject.startswith(_COUNTED):
        return None
    code = subject.rsplit("/", 1)[-1]
    return "national" if code == "national" else code[:2]


def _what(submission: Submission) -> dict[str, Any]:
    """What a checked record is: its schema, subject, revision and payload hash."""
    record = submission.record
    return {
        "schema": record.schema,
        "subject": record.subject,
        "revision": record.revision,
        "payload_sha256": submission.payload_hash.hex(),
    }


class WriteWatch:
    """Counts and logs the outcome of every record a write route is sent."""

    def __init__(
        self,
        metrics: Metrics | None,
        events: SecurityLog | None,
        roles: Roles,
    ) -> None:
        self.metrics = metrics
        self.events = events
        self.roles = roles

    def rate_limited(self, limit: str) -> None:
        """A write refused by the ``client`` or ``key`` rate limit."""
        if self.metrics is not None:
            self.metrics.rate_limited.labels(limit).inc()

    def finished(self, route: str, seconds: float) -> None:
        """A write request answered with at least one receipt."""
        if self.metrics is not None:
            self.metrics.appended(route, seconds)

    def appended(
        self, request: Request, submission: Submission, receipt: AppendReceipt
    ) -> None:
        """A record logged now (201) or before (200, a duplicate)."""
        metrics = self.metrics
        if metrics is not None:
            if receipt.duplicate:
                metrics.duplicate.inc()
            else:
                metrics.accepted.inc()
                self._count_record(metrics, submission)
        if self.events is not None:
            result = "duplicate" if receipt.duplicate else "accepted"
            fields = self._base(request, result)
            fields["status"] = 200 if receipt.duplicate else 201
            fields["index"] = receipt.index
            fields.update(self._who(submission))
            fields.update(_what(submission))
            self.events.write(fields)

    def refused(
        self,
        request: Request,
        problem: ProblemError,
        submission: Submission | None = None,
    ) -> None:
        """A record (or a whole write request) refused with ``problem``."""
        cause = problem.cause
        metrics = self.metrics
        who = self._who(submission) if submission is not None else {}
        if metrics is not None:
            metrics.refusals.labels(cause).inc()
            if cause in AUTHORIZATION_CAUSES:
                roles = who.get("roles") or ["unknown"]
                metrics.authorization_refusals.labels(roles[0], cause).inc()
        if self.events is not None:
            fields = self._base(request, "refused")
            fields["status"] = PROBLEMS[cause].status
            fields["cause"] = cause
            fields.update(who)
            if submission is not None:
                fields.update(_what(submission))
            self.events.write(fields)

    # -- parts --------------------------------------------------------------------

    def _count_record(self, metrics: Metrics, submission: Submission) -> None:
        record = submission.record
        province = _province(record.subject)
        if province is None:
            return
        if record.revision > 0:
            metrics.corrections.labels(province).inc()
        if record.schema == TALLY.name:
            ballot = record.subject.split("/")[1]
            for flag in tally_flags(record.body, ballot):
                metrics.arithmetic_flags.labels(province, flag.check).inc()

    def _who(self, submission: Submission) -> dict[str, Any]:
        keyids, roles = [], []
        for keyid in submission.signers:
            role = self.roles(keyid)
            if role is not None:
                keyids.append(keyid)
                roles.append(role)
        return {"keyids": keyids, "roles": roles}

    @staticmethod
    def _base(request: Request, result: str) -> dict[str, Any]:
        scope = request.scope
        client = scope.get("client")
        return {
            "event": "append",
            "request_id": scope.get("state", {}).get("request_id", ""),
            "route": route_of(scope),
            "client": client[0] if client else "",
            "result": result,
        }
