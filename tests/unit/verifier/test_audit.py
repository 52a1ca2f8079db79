"""The audit replay: a clean log passes; each kind of tampering fails its check.

The log is written by the real server code (``RecordLog``); its entries are then
audited as read, or tampered with and audited again. Each tampered log must fail
exactly the check that names what was done, at the entry where it was done.
"""

from __future__ import annotations

import base64
import hashlib
import json

from keys import Ed25519Signer
from tests.recordlog import RecordLog, envelope_bytes, form, setup_election
from verifier.dsse import parse_envelope
from verifier.fullaudit import Auditor, TreeHasher
from verifier.record import format_log_entry, record_payload
from verifier.rfc6962 import hash_leaf

STATIONS = ["3171011001001", "3171011001002", "3171011002001"]
# A recap's later revision says why it was signed again.
REVISED = {"correction": {"reason_code": "child_corrected", "reference": "BA-2"}}
FAILING = {
    "tree",
    "entry-format",
    "schema",
    "signatures",
    "issued-at",
    "authorization",
    "revision-chain",
    "duplicate-payload",
    "recap-children",
    "recap-sum",
}


class Built:
    """A small election log and what the tests need to forge more of it."""

    def __init__(self, tmp_path, signer):
        log = RecordLog(f"sqlite:///{tmp_path / 'audit.db'}", signer)
        self.log = log
        self.keys = keys = setup_election(log, STATIONS)
        self.gone = Ed25519Signer("gone", hashlib.sha256(b"gone").digest())
        log.grant(self.gone, "tps", STATIONS[1])
        log.revoke(self.gone)
        votes = [{"100025": 100, "100026": 90, "100027": 10}, {"100025": 5}]
        for station, v in zip(STATIONS[:2], votes, strict=True):
            log.submit(
                log.payload("results.tally/v1", f"results/ppwp/{station}", form(v)),
                [keys["reader"]],
            )
        # A form as written: its votes add up to 200, it says 199 valid.
        flagged = form({"100025": 150, "100026": 50}) | {"valid": 199, "total": 199}
        self.flagged = log.submit(
            log.payload("results.tally/v1", f"results/ppwp/{STATIONS[2]}", flagged),
            [keys["reader"]],
        ).index
        # The district corrects station 1: revision 1 of its tally.
        fixed = form({"100025": 101, "100026": 90, "100027": 10}, stage="recount")
        fixed["correction"] = {"reason_code": "recount_order", "reference": "BA-1"}
        self.correction = log.submit(
            log.payload(
                "results.tally/v1",
                f"results/ppwp/{STATIONS[0]}",
                fixed,
                reason="recount",
            ),
            [keys["district"]],
        ).index
        self.recap = log.submit(
            log.payload(
                "results.recap/v1", "recaps/ppwp/3171011001", self.recap_body()
            ),
            [keys["village"]],
        ).index
        size = log.ledger.head.size
        self.entries = [row.data for row in log.storage.read_entries(0, size)]
        self.logged_at = json.loads(self.entries[-1])["logged_at"]

    def recap_body(self, extra_valid: int = 0) -> dict:
        children, totals = {}, {"votes": {}, "valid": 0, "invalid": 0, "total": 0}
        for station in STATIONS[:2]:
            subject = f"results/ppwp/{station}"
            _, digest = self.log.heads[subject]
            children[station] = digest
        bodies = [
            form({"100025": 101, "100026": 90, "100027": 10}),
            form({"100025": 5}),
        ]
        for body in bodies:
            for k, v in body["votes"].items():
                totals["votes"][k] = totals["votes"].get(k, 0) + v
            for k in ("valid", "invalid", "total"):
                totals[k] += body[k]
        totals["valid"] += extra_valid
        totals["total"] += extra_valid
        return {"totals": totals, "children": children}

    def forge(self, schema, subject, body, signers, *, revision=None, prev=None):
        """An entry as the server would have logged it (no server asked)."""
        if revision is None:
            revision, prev = self.log.next_revision(subject)
        payload = record_payload(
            schema=schema,
            subject=subject,
            revision=revision,
            prev=prev,
            issued_at=self.logged_at,
            body=body,
            reason="forged" if revision else None,
        )
        envelope = parse_envelope(envelope_bytes(payload, signers))
        return format_log_entry(envelope, self.logged_at)

    def close(self):
        self.log.close()


def audit(entries):
    auditor = Auditor()
    for index, entry in enumerate(entries):
        auditor.add(index, entry)
    return auditor.report(True)


def failures(report):
    return {
        (f["check"], f["index"]) for f in report["findings"] if f["check"] in FAILING
    }


def test_the_clean_log_passes_with_its_flags_listed(built):
    report = audit(built.entries)
    assert report["passed"]
    assert failures(report) == set()
    flags = [f for f in report["findings"] if f["check"] == "arithmetic"]
    assert {(f["index"], f["rule"]) for f in flags} == {(built.flagged, "votes-sum")}
    assert flags[0]["subject"] == f"results/ppwp/{STATIONS[2]}"
    numbered = [c["check"] for c in report["checks"]]
    assert numbered[0] == "tree"
    assert all(c["status"] in ("pass", "flagged") for c in report["checks"])


def test_tree_hasher_matches_the_logs_root(built):
    hasher = TreeHasher()
    for entry in built.entries:
        hasher.add(entry)
    head = built.log.ledger.head
    assert hasher.size == head.size
    assert hasher.root() == head.root
    # and an independent recomputation for every prefix size up to 9
    for n in range(1, 10):
        h = TreeHasher()
        for e in built.entries[:n]:
            h.add(e)
        assert h.root() == _mth([hash_leaf(e) for e in built.entries[:n]])


def _mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_a_changed_byte_in_a_record_fails_its_signature(built):
    original = built.entries[built.flagged]
    encoded = json.loads(original)["envelope"]["payload"]
    payload = base64.b64decode(encoded)
    changed = base64.b64encode(payload.replace(b'"valid":199', b'"valid":200'))
    assert changed != encoded.encode()
    tampered = list(built.entries)
    tampered[built.flagged] = original.replace(encoded.encode(), changed)
    report = audit(tampered)
    assert not report["passed"]
    assert failures(report) == {("signatures", built.flagged)}


def test_swapped_entries_break_the_revision_chain(built):
    def subject(entry: bytes) -> str:
        payload = base64.b64decode(json.loads(entry)["envelope"]["payload"])
        return json.loads(payload)["subject"]

    first = next(
        i
        for i, e in enumerate(built.entries)
        if subject(e) == f"results/ppwp/{STATIONS[0]}"
    )
    tampered = list(built.entries)
    tampered[first], tampered[built.correction] = (
        tampered[built.correction],
        tampered[first],
    )
    report = audit(tampered)
    assert ("revision-chain", first) in failures(report)
    assert ("revision-chain", built.correction) in failures(report)


def test_a_record_resigned_by_an_out_of_scope_key_is_unauthorized(built):
    entry = built.forge(
        "results.tally/v1",
        f"results/ppwp/{STATIONS[2]}",
        form({"100025": 1}),
        [built.keys["tps"]],  # scoped to the first station only
    )
    report = audit([*built.entries, entry])
    assert failures(report) == {("authorization", len(built.entries))}
    assert "scope" in report["findings"][-1]["detail"]


def test_a_write_by_a_revoked_key_after_its_revocation_is_unauthorized(built):
    entry = built.forge(
        "results.tally/v1",
        f"results/ppwp/{STATIONS[1]}",
        form({"100025": 7}),
        [built.gone],
    )
    report = audit([*built.entries, entry])
    assert failures(report) == {("authorization", len(built.entries))}
    assert "revoked" in next(
        f["detail"] for f in report["findings"] if f["check"] == "authorization"
    )


def test_a_broken_revision_chain_is_found(built):
    subject = f"results/ppwp/{STATIONS[1]}"
    revision, _ = built.log.heads[subject]
    entry = built.forge(
        "results.tally/v1",
        subject,
        form({"100025": 5}, stage="recount")
        | {"correction": {"reason_code": "recount_order", "reference": "x"}},
        [built.keys["district"]],
        revision=revision + 1,
        prev="00" * 32,
    )
    report = audit([*built.entries, entry])
    assert failures(report) == {("revision-chain", len(built.entries))}


def test_a_recap_one_vote_off_its_children_fails_the_sum(built):
    entry = built.forge(
        "results.recap/v1",
        "recaps/ppwp/3171011001",
        built.recap_body(extra_valid=1) | REVISED,
        [built.keys["village"]],
    )
    report = audit([*built.entries, entry])
    assert failures(report) == {("recap-sum", len(built.entries))}, report["findings"]


def test_a_recap_naming_a_child_not_in_the_log_fails(built):
    body = built.recap_body() | REVISED
    body["children"][STATIONS[1]] = "ab" * 32
    entry = built.forge(
        "results.recap/v1", "recaps/ppwp/3171011001", body, [built.keys["village"]]
    )
    report = audit([*built.entries, entry])
    assert failures(report) == {("recap-children", len(built.entries))}


def test_a_record_logged_twice_is_found(built):
    report = audit([*built.entries, built.entries[built.flagged]])
    found = failures(report)
    assert ("duplicate-payload", len(built.entries)) in found
    assert ("revision-chain", len(built.entries)) in found


def test_a_superseded_child_makes_its_recap_stale(built):
    entry = built.forge(
        "results.tally/v1",
        f"results/ppwp/{STATIONS[1]}",
        form({"100025": 6}, stage="recount")
        | {"correction": {"reason_code": "recount_order", "reference": "x"}},
        [built.keys["district"]],
    )
    report = audit([*built.entries, entry])
    assert report["passed"]  # stale is a notice, not a failure
    stale = [f for f in report["findings"] if f["check"] == "stale-recaps"]
    assert [(f["index"], f["subject"]) for f in stale] == [
        (built.recap, "recaps/ppwp/3171011001")
    ]
