"""A small client for election applications: sign, submit, retry safely, verify.

Standard library and PyNaCl only (through ``verifier``): it installs with
``pip install saksi`` and no server packages. Records can be signed offline and
submitted later (store-and-forward); submitting is idempotent, so a retry after
a timeout, a reset or a truncated answer can never log a record twice (any
failure to complete an exchange is retried, then raised as ``TransportError``).
Nothing is sent before the log proves it is the pinned one (its checkpoint
signed by the pinned key, ``SaksiClient.check_identity``). Every receipt is
checked before it is returned: the checkpoint's signature by the pinned log
key, the entry bytes against the leaf hash, the logged payload against the one
submitted, and the inclusion proof against the checkpoint's root.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from saksi_client._transport import Answer, TransportError, exchange
from verifier.checkpoint import (
    Checkpoint,
    verify_checkpoint,
    verify_inclusion_in_checkpoint,
)
from verifier.dsse import (
    EnvelopeSigner,
    envelope_to_json,
    parse_envelope,
    sign_envelope,
)
from verifier.errors import SignatureInvalid, VerificationError
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.record import (
    RECORD_PAYLOAD_TYPE,
    Evidence,
    format_log_entry,
    format_timestamp,
    parse_log_entry,
    record_payload,
)
from verifier.rfc6962 import hash_leaf

__all__ = [
    "Receipt",
    "Refused",
    "SaksiClient",
    "TransportError",
    "WrongLog",
    "grant_body",
]


def grant_body(public_key: bytes, role: str, scope: str, holder: str) -> dict[str, Any]:
    """The body of a ``keys.grant/v1`` record granting ``public_key`` a role.

    ``scope`` is a region-code prefix ("" is national). Sign the record with
    admin keys (the admin threshold's, when the role is ``admin``).
    """
    return {
        "keyid": hashlib.sha256(public_key).hexdigest(),
        "public_key": base64.b64encode(public_key).decode(),
        "role": role,
        "scope": scope,
        "holder": holder,
    }


class Refused(Exception):
    """The log refused the submission (RFC 9457 problem attached).

    Attributes:
        status: HTTP status.
        problem: the problem+json document.
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('type')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem

    @property
    def cause(self) -> str:
        """The problem type's last path segment, e.g. ``stale-revision``."""
        return str(self.problem.get("type", "")).rsplit("/", 1)[-1]


class WrongLog(SignatureInvalid):
    """The log's checkpoint is not signed by the pinned key for the pinned origin.

    Either the URL leads to another log, or the pinned key is not this log's.
    Raised before anything is sent (``SaksiClient.check_identity``).
    """

    cause = "wrong-log"


def _problem(payload: bytes) -> dict[str, Any]:
    """An error answer's problem document; a stand-in when it is not JSON."""
    try:
        problem = json.loads(payload)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return problem
    return {"type": "about:blank", "detail": payload[:200].decode("utf-8", "replace")}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A verified receipt: the record is in the log under a signed checkpoint."""

    index: int
    leaf_hash: bytes
    tree_size: int
    checkpoint: bytes
    proof: tuple[bytes, ...]
    entry: bytes
    duplicate: bool
    logged_at: str


class SaksiClient:
    """Talks to one Saksi log whose verifier key the caller pins."""

    def __init__(
        self,
        base_url: str,
        log_key: VerifierKey | str,
        *,
        timeout: float = 30.0,
        retries: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.log_key = (
            log_key if isinstance(log_key, VerifierKey) else VerifierKey.parse(log_key)
        )
        self.origin = self.log_key.name
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        self._checkpoints: dict[bytes, Checkpoint] = {}
        self._identity: Checkpoint | None = None

    # -- HTTP --------------------------------------------------------------------

    def _fetch(self, method: str, path: str, body: bytes | None = None) -> Answer:
        url = self.base_url + path
        if not url.startswith(("http://", "https://")):
            raise TransportError(f"not an http(s) URL: {url[:80]}")
        return exchange(
            url,
            method,
            body,
            timeout=self.timeout,
            retries=self.retries,
            sleep=self._sleep,
        )

    def _request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, Any]:
        answer = self._fetch(method, path, body)
        if answer.status < 400:
            return answer.status, json.loads(answer.body)
        return answer.status, _problem(answer.body)

    def check_identity(self) -> Checkpoint:
        """Check that the log at ``base_url`` is the pinned one; once per client.

        Fetches the log's signed checkpoint (``GET /log/checkpoint``) and verifies
        it under the pinned key and origin. ``submit`` and ``submit_many`` call it
        before their first request, so nothing is sent to a log the pinned key
        does not sign for. Returns the checkpoint that proved it (cached).

        Raises:
            WrongLog: the checkpoint is not signed by the pinned key for the
                pinned origin (another log, or a wrong pinned key).
            TransportError: unreachable.
            Refused: the log did not serve its checkpoint.
        """
        if self._identity is not None:
            return self._identity
        answer = self._fetch("GET", "/log/checkpoint")
        if answer.status != 200:
            raise Refused(answer.status, _problem(answer.body))
        try:
            checkpoint, _ = verify_checkpoint(answer.body, self.log_key, self.origin)
        except VerificationError as e:
            raise WrongLog(
                f"the log at {self.base_url} is not signed by the pinned key "
                f"{self.log_key} ({e})"
            ) from e
        self._identity = checkpoint
        return checkpoint

    def get(self, path: str) -> dict[str, Any]:
        """A JSON document the log serves at ``path`` (e.g. ``/v1/results/...``).

        Raises:
            TransportError: unreachable.
            Refused: any answer but 200 (the problem says why).
        """
        status, body = self._request("GET", path)
        if status != 200 or not isinstance(body, dict):
            raise Refused(status, body if isinstance(body, dict) else {})
        return body

    # -- records ---------------------------------------------------------------------

    def head(self, subject: str) -> tuple[int, str] | None:
        """The subject's latest (revision, payload hash), or None if it has none.

        Raises:
            TransportError: unreachable.
            Refused: any error but "not found".
        """
        status, body = self._request(
            "GET", "/v1/subjects/" + urllib.parse.quote(subject, safe="/")
        )
        if status == 404:
            return None
        if status != 200:
            raise Refused(status, body)
        last = body["revisions"][-1]["record"]
        return int(last["revision"]), str(last["payload_hash"])

    def keys(self, size: int | None = None) -> dict[str, Any]:
        """The key registry as of ``size`` (default: now), as the API lists it.

        Raises:
            TransportError: unreachable.
            Refused: e.g. a size beyond the log.
        """
        path = "/v1/keys" + ("" if size is None else f"?size={int(size)}")
        status, body = self._request("GET", path)
        if status != 200:
            raise Refused(status, body)
        result: dict[str, Any] = body
        return result

    @staticmethod
    def record(
        schema: str,
        subject: str,
        body: dict[str, Any],
        *,
        reason: str | None = None,
        evidence: Sequence[Evidence] = (),
        after: tuple[int, str] | None = None,
        now: dt.datetime | None = None,
    ) -> bytes:
        """A record payload continuing ``after`` (a head; None for revision 0).

        Offline callers pass the head they know; ``head()`` fetches it online.
        """
        revision, prev = (0, None) if after is None else (after[0] + 1, after[1])
        return record_payload(
            schema=schema,
            subject=subject,
            revision=revision,
            prev=prev,
            issued_at=format_timestamp(now or dt.datetime.now(dt.UTC)),
            body=body,
            reason=reason,
            evidence=tuple(evidence),
        )

    @staticmethod
    def sign(payload: bytes, signers: Sequence[EnvelopeSigner]) -> dict[str, Any]:
        """The DSSE envelope (JSON object) of a record payload; works offline."""
        return envelope_to_json(sign_envelope(RECORD_PAYLOAD_TYPE, payload, signers))

    def submit(self, envelope: dict[str, Any]) -> Receipt:
        """Submit an envelope (retrying on 429, 503 and network errors); verify.

        Before the first write, the log's identity is checked
        (``check_identity``): nothing is sent to a log the pinned key does not
        sign for.

        Raises:
            WrongLog: the log is not the pinned one; nothing was sent.
            Refused: the log refused it (the problem says why).
            TransportError: unreachable within the retries (sending the same
                envelope again is safe).
            VerificationError: the receipt does not prove what was submitted.
        """
        self.check_identity()
        status, body = self._request(
            "POST", "/v1/entries", json.dumps(envelope).encode()
        )
        if status not in (200, 201):
            raise Refused(status, body)
        return self.verify_receipt(body, base64.b64decode(envelope["payload"]))

    def submit_many(
        self, envelopes: Sequence[dict[str, Any]]
    ) -> list[Receipt | Refused]:
        """Submit envelopes in batch requests; each is accepted or refused alone.

        Envelopes refused for a while only (``rate-limited``, ``overloaded``:
        429 or 503 with a ``retry_after``) are sent again after the longest
        wait asked for, as many times as the client retries requests; sending
        one again is safe, since the same envelope is never logged twice.
        Returns, in order, each envelope's verified receipt or its refusal.

        Raises:
            WrongLog: the log is not the pinned one; nothing was sent.
            Refused: the batch as a whole (e.g. too many envelopes, too large).
            TransportError: unreachable within the retries (sending the same
                envelopes again is safe).
            VerificationError: a receipt does not prove what was submitted.
        """
        self.check_identity()
        out: list[Receipt | Refused | None] = [None] * len(envelopes)
        waiting = list(range(len(envelopes)))
        for attempt in range(self.retries + 1):
            wait = 0.0
            batch = [envelopes[i] for i in waiting]
            for i, outcome in zip(waiting, self._batch(batch), strict=True):
                out[i] = outcome
                if isinstance(outcome, Refused) and outcome.status in (429, 503):
                    retry = outcome.problem.get("retry_after")
                    wait = max(wait, float(retry) if isinstance(retry, int) else 1.0)
            waiting = [
                i
                for i in waiting
                if isinstance(out[i], Refused) and out[i].status in (429, 503)  # type: ignore[union-attr]
            ]
            if not waiting or attempt == self.retries:
                break
            self._sleep(min(30.0, wait))
        return [o for o in out if o is not None]

    def _batch(self, envelopes: Sequence[dict[str, Any]]) -> list[Receipt | Refused]:
        status, body = self._request(
            "POST",
            "/v1/entries/batch",
            json.dumps({"envelopes": list(envelopes)}).encode(),
        )
        if status != 200:
            raise Refused(status, body)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(envelopes):
            raise VerificationError("batch answer does not have one result each")
        out: list[Receipt | Refused] = []
        for envelope, result in zip(envelopes, results, strict=True):
            if result.get("status") in (200, 201):
                payload = base64.b64decode(envelope["payload"])
                out.append(self.verify_receipt(result["receipt"], payload))
            else:
                out.append(Refused(int(result.get("status", 0)), result["problem"]))
        return out

    def checkpoint(self) -> bytes:
        """The log's latest signed checkpoint (a note), its signature verified.

        Raises:
            TransportError: unreachable.
            Refused: the log did not answer it.
            VerificationError: not signed by the pinned key for this origin.
        """
        status, body = self._request("GET", "/v1/log")
        if status != 200:
            raise Refused(status, body)
        note = str(body.get("checkpoint", "")).encode()
        verify_checkpoint(note, self.log_key, self.origin)
        return note

    def verify_growth(self, old_note: bytes) -> Checkpoint:
        """The current checkpoint, proved an append-only extension of ``old_note``.

        Both checkpoints must carry the pinned key's signature.

        Raises:
            TransportError: unreachable.
            Refused: the log cannot prove it (e.g. it shrank).
            VerificationError: a bad signature or a consistency proof that fails:
                the log is not the one ``old_note`` committed to.
        """
        old, _ = verify_checkpoint(old_note, self.log_key, self.origin)
        if old.size == 0:
            status, body = self._request("GET", "/v1/proofs/consistency?old=1")
            if status == 404:  # nothing logged yet either
                return old
        else:
            status, body = self._request(
                "GET", f"/v1/proofs/consistency?old={old.size}"
            )
        if status != 200:
            raise Refused(status, body)
        new, _ = verify_checkpoint(
            str(body["checkpoint"]).encode(), self.log_key, self.origin
        )
        if old.size:
            proof = [bytes.fromhex(h) for h in body["consistency_proof"]]
            verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        return new

    def prove_entry(self, index: int) -> tuple[bytes, Checkpoint]:
        """The record payload logged at ``index``, proved in a signed checkpoint.

        The entry's bytes are rebuilt from its envelope and ``logged_at``, hashed
        to the leaf, and the leaf proved included in the checkpoint the pinned
        key signed: what is returned is what the log committed to.

        Raises:
            TransportError: unreachable.
            Refused: no such entry.
            VerificationError: the entry or its proof does not verify.
        """
        status, body = self._request("GET", f"/v1/entries/{int(index)}")
        if status != 200:
            raise Refused(status, body)
        try:
            envelope = parse_envelope(body["envelope"])
            entry = format_log_entry(envelope, str(body["logged_at"]))
        except (KeyError, TypeError) as e:
            raise VerificationError(f"malformed entry: {e}") from e
        status, proof = self._request("GET", f"/v1/proofs/inclusion?index={int(index)}")
        if status != 200:
            raise Refused(status, proof)
        leaf_hash = hash_leaf(entry)
        if proof.get("leaf_hash") != leaf_hash.hex():
            raise VerificationError(f"entry {index} does not hash to the logged leaf")
        checkpoint = verify_inclusion_in_checkpoint(
            str(proof["checkpoint"]).encode(),
            self.log_key,
            self.origin,
            int(index),
            leaf_hash,
            [bytes.fromhex(h) for h in proof["inclusion_proof"]],
        )
        return envelope.payload, checkpoint

    def verify_receipt(self, body: dict[str, Any], payload: bytes) -> Receipt:
        """Check a receipt from the API for ``payload``; return it typed.

        Raises:
            VerificationError: any check fails.
        """
        try:
            entry = base64.b64decode(body["entry"], validate=True)
            leaf_hash = bytes.fromhex(body["leaf_hash"])
            proof = tuple(bytes.fromhex(p) for p in body["inclusion_proof"])
            checkpoint = body["checkpoint"].encode("utf-8")
            index = int(body["index"])
        except (KeyError, ValueError, TypeError) as e:
            raise VerificationError(f"malformed receipt: {e}") from e
        # (1) the entry is the leaf, (2) it logs this payload, (3) the proof
        # leads from the leaf to the root the log key signed.
        if hash_leaf(entry) != leaf_hash:
            raise VerificationError("receipt entry does not hash to its leaf hash")
        logged = parse_log_entry(entry)
        if logged.envelope.payload != payload:
            raise VerificationError("the logged entry carries another payload")
        cp = self._checkpoints.get(checkpoint)
        if cp is None:  # a batch's receipts share one checkpoint: verify it once
            cp, _ = verify_checkpoint(checkpoint, self.log_key, self.origin)
            if len(self._checkpoints) >= 64:
                self._checkpoints.clear()
            self._checkpoints[checkpoint] = cp
        verify_inclusion(index, cp.size, leaf_hash, proof, cp.root_hash)
        return Receipt(
            index,
            leaf_hash,
            cp.size,
            checkpoint,
            proof,
            entry,
            bool(body.get("duplicate", False)),
            logged.logged_at,
        )
