"""A record log for tests: genesis by fixed admin keys, helpers to sign and submit."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from keys import Ed25519Signer
from keys.policy import DEFAULT_POLICY
from ledger.admission import prepare_submission
from ledger.ledger import AppendReceipt
from ledger.recordlog import RecordLog as OpenRecordLog
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

    # The genesis record's policy (a subclass may pin another).
    policy: dict = DEFAULT_POLICY
    # How old an issued_at the writer accepts (None: what each schema allows).
    max_age: dt.timedelta | None = None

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
            "policy": self.policy,
        }
        self.genesis = self.submit(
            self.payload(GENESIS.name, "log/genesis", body), ADMINS[:threshold]
        )

    def open(self) -> None:
        self.service = OpenRecordLog(
            SqlStorage.open(self.url),
            self.log_signer,
            self.log_signer.verifier_key,
            ORIGIN,
            clock=self.clock,
            max_age=self.max_age,
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

    def track_head(self, subject: str, revision: int, payload_hash: str) -> None:
        """Follow a subject whose head was logged by someone else."""
        self.heads[subject] = (revision, payload_hash)

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


# Six polling stations in five villages, four districts, three regencies and two
# provinces: every recap level has more than one region and more than one child.
SIX_STATIONS = [
    "3171011001001",
    "3171011001002",
    "3171011002001",
    "3171021001001",
    "3173011001001",
    "3273011001001",
]


def district_body(stations: list[str]) -> dict:
    """A regions.registry/v1 body listing ``stations`` (all in one district)."""
    code = stations[0][:6]
    villages: dict[str, dict] = {}
    for station in stations:
        village = villages.setdefault(
            station[:10], {"name": f"village {station[:10]}", "tps": []}
        )
        village["tps"].append(int(station[10:]))
    return {
        "province": {"code": code[:2], "name": f"province {code[:2]}"},
        "regency": {"code": code[:4], "name": f"regency {code[:4]}"},
        "district": {"name": f"district {code}"},
        "villages": villages,
        "source": "test",
    }


PPWP_2024 = {
    "100025": {"number": 1, "name": "pair 1"},
    "100026": {"number": 2, "name": "pair 2"},
    "100027": {"number": 3, "name": "pair 3"},
}


def setup_election(log: RecordLog, stations: list[str]) -> dict[str, Ed25519Signer]:
    """Regions for ``stations``, the presidential candidates, and keys.

    Returns keys by name: ``tps`` (the first station), ``village``, ``district``,
    ``regency``, ``province``, ``national`` (all over the first station),
    ``reader`` (role ``tps`` over its province: the commission's reading system)
    and ``lists`` (candidates, national).
    """
    by_district: dict[str, list[str]] = {}
    for station in stations:
        by_district.setdefault(station[:6], []).append(station)
    for code, members in sorted(by_district.items()):
        log.submit(
            log.payload(
                "regions.registry/v1", f"regions/{code}", district_body(members)
            ),
            ADMINS[:1],
        )
    first = stations[0]
    scopes = {
        "tps": first,
        "village": first[:10],
        "district": first[:6],
        "regency": first[:4],
        "province": first[:2],
        "national": "",
        "candidates": "",
        "reader": first[:2],
    }
    keys = {}
    for n, (name, scope) in enumerate(scopes.items()):
        role = {"reader": "tps"}.get(name, name)
        key = Ed25519Signer(role, hashlib.sha256(b"election-%d" % n).digest())
        log.grant(key, role, scope)
        keys["lists" if role == "candidates" else name] = key
    log.submit(
        log.payload(
            "candidates.change/v1",
            "candidates/ppwp/national",
            {"candidates": PPWP_2024},
        ),
        [keys["lists"]],
    )
    return keys


def form(votes: dict[str, int], invalid: int = 0, stage: str = "officer_confirmed"):
    """A presidential tally body whose numbers add up."""
    valid = sum(votes.values())
    return {
        "stage": stage,
        "votes": votes,
        "valid": valid,
        "invalid": invalid,
        "total": valid + invalid,
    }
