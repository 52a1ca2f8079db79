"""A record log for tests: genesis by fixed admin keys, helpers to sign and submit."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from keys import Ed25519Signer
from keys.policy import DEFAULT_POLICY
from ledger.ledger import AppendReceipt
from ledger.records import prepare_submission
from ledger.service import RecordService
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock, create_log
from verifier.dsse import envelope_to_json, sign_envelope
from verifier.record import RECORD_PAYLOAD_TYPE, format_timestamp, record_payload
from verifier.registry import GENESIS, GRANT, REVOKE

ADMINS = [Ed25519Signer(f"admin{i}", bytes([20 + i]) * 32) for i in range(3)]
START = 1_707_915_600.0  # 2024-02-14T13:00:00Z, election day


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def envelope_bytes(payload: bytes, signers) -> bytes:
    return json.dumps(
        envelope_to_json(sign_envelope(RECORD_PAYLOAD_TYPE, payload, signers))
    ).encode()


class RecordLog:
    """A started record ledger plus the chain heads a well-behaved writer tracks."""

    def __init__(self, url: str, log_signer: Ed25519Signer, threshold: int = 2):
        self.url = url
        self.log_signer = log_signer
        self.clock = FixedClock(START)
        create_log(url, log_signer).close()
        self.open()
        self.heads: dict[str, tuple[int, str]] = {}
        body = {
            "origin": ORIGIN,
            "log_key": str(log_signer.verifier_key),
            "admins": [
                {"keyid": a.keyid, "public_key": b64(a.public_key), "holder": a.name}
                for a in ADMINS
            ],
            "threshold": threshold,
            "policy": DEFAULT_POLICY,
        }
        self.genesis = self.submit(
            self.payload(GENESIS.name, "log/genesis", body), ADMINS[:threshold]
        )

    def open(self) -> None:
        self.service = RecordService(
            SqlStorage.open(self.url),
            self.log_signer,
            self.log_signer.verifier_key,
            ORIGIN,
            clock=self.clock,
        )
        self.storage = self.service.storage
        self.gate = self.service.gate
        self.ledger = self.service.ledger
        self.service.start()

    def close(self) -> None:
        self.service.close()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now, dt.UTC)

    def payload(self, schema, subject, body, *, revision=None, prev=None, reason=None):
        if revision is None:
            revision, prev = self.next_revision(subject)
            reason = reason or ("change" if revision else None)
        return record_payload(
            schema=schema,
            subject=subject,
            revision=revision,
            prev=prev,
            issued_at=format_timestamp(self.now()),
            body=body,
            reason=reason,
        )

    def next_revision(self, subject):
        if subject not in self.heads:
            return 0, None
        revision, payload_hash = self.heads[subject]
        return revision + 1, payload_hash

    def prepare(self, payload: bytes, signers):
        return prepare_submission(
            envelope_bytes(payload, signers), self.gate.public_key, self.now()
        )

    def submit(self, payload: bytes, signers) -> AppendReceipt:
        receipt = self.ledger.submit(self.prepare(payload, signers))
        self.track(payload)
        return receipt

    def track(self, payload: bytes) -> None:
        record = json.loads(payload)
        self.heads[record["subject"]] = (
            record["revision"],
            hashlib.sha256(payload).hexdigest(),
        )

    def grant_payload(self, key, role, scope, **extra):
        body = {
            "keyid": key.keyid,
            "public_key": b64(key.public_key),
            "role": role,
            "scope": scope,
            "holder": key.name,
            **extra,
        }
        return self.payload(GRANT.name, f"keys/{key.keyid}", body)

    def grant(self, key, role, scope, signers=None, **extra) -> AppendReceipt:
        return self.submit(
            self.grant_payload(key, role, scope, **extra), signers or ADMINS[:1]
        )

    def revoke(self, key, signers=None) -> AppendReceipt:
        payload = self.payload(
            REVOKE.name,
            f"keys/{key.keyid}",
            {"keyid": key.keyid, "reason_code": "retired"},
        )
        return self.submit(payload, signers or ADMINS[:1])
