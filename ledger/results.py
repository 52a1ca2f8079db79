"""Results of any region and ballot, with provenance, flags and completeness.

Read straight from the log: a region's own recap (its latest revision, its
``recap-sum`` flags, the children it names that have since been superseded and
the registry's children it does not name) and each of the region's children as
the log has it now (the latest revision of the tally or recap, who signed it, at
which stage, its flags). A recap is stale when any revision it rests on, directly
or through the recaps below it, has been superseded. Every number comes with the
entry that says it, so a reader can fetch and verify that entry (and its
inclusion proof) independently.
"""

from __future__ import annotations

from typing import Any

from ledger.service import EntryView, RecordService
from ledger.storage.sql import RecordRow
from verifier.election import child_subject, level_of, recap_subject
from verifier.rules import differences, recap_flags, tally_flags, totals_of

__all__ = ["ResultsReader"]


class ResultsReader:
    """Answers ``region(ballot, code)`` from one record log."""

    def __init__(self, service: RecordService) -> None:
        self.service = service

    def _summary(self, view: EntryView, ballot: str) -> dict[str, Any]:
        record = view.record
        body = record.body
        item: dict[str, Any] = {
            "subject": record.subject,
            "index": view.index,
            "revision": record.revision,
            "payload_hash": record.payload_hash,
            "signers": [s.keyid for s in view.entry.envelope.signatures],
            "logged_at": view.entry.logged_at,
            "totals": totals_of(body),
        }
        if record.schema == "results.tally/v1":
            item["stage"] = body["stage"]
            item["flags"] = [f.to_json() for f in tally_flags(body, ballot)]
            if "form" in body:
                item["form"] = body["form"]
        if record.reason is not None:
            item["reason"] = record.reason
        if "correction" in body:
            item["correction"] = body["correction"]
        return item

    def _heads(self, subjects: list[str]) -> dict[str, RecordRow]:
        # The latest revision of each subject: exact lookups on the index.
        return self.service.storage.chain_state((), subjects)[1] if subjects else {}

    def _stale(self, row: RecordRow | None, memo: dict[bytes, bool]) -> bool:
        """Does the recap revision ``row`` rest on a superseded revision below?"""
        if row is None or not row.subject.startswith("recaps/"):
            return False
        if row.payload_hash in memo:
            return memo[row.payload_hash]
        body = self.service.entry(row.index).record.body
        named = [bytes.fromhex(h) for h in body["children"].values()]
        rows = self.service.storage.records_by_payload(named)
        heads = self._heads([r.subject for r in rows.values()])
        stale = False
        for digest in named:
            child = rows.get(digest)
            if child is None:
                continue
            head = heads.get(child.subject)
            if head is not None and head.payload_hash != digest:
                stale = True
                break
            if self._stale(child, memo):
                stale = True
                break
        memo[row.payload_hash] = stale
        return stale

    def region(self, ballot: str, region: str) -> dict[str, Any]:
        """The results of ``region`` ("" national) on ``ballot``.

        Raises:
            KeyError: ``region`` is not a recap level (2, 4, 6, 10 digits or "").
        """
        level = level_of(region)
        election = self.service.gate.election
        listed = election.children_of(region)
        subjects = [child_subject(ballot, region, code) for code in listed]
        heads = self._heads([s for s in subjects if s is not None])
        children = []
        current: dict[str, RecordRow] = {}
        for code in listed:
            subject = child_subject(ballot, region, code)
            if subject is None:  # the registry lists only direct children
                continue
            row = heads.get(subject)
            if row is None:
                children.append({"code": code, "subject": subject, "status": "missing"})
                continue
            current[code] = row
            view = self.service.entry(row.index)
            children.append(
                {"code": code, "status": "present", **self._summary(view, ballot)}
            )
        own_subject = recap_subject(ballot, region)
        own = self.service.head_of(own_subject)
        recap: dict[str, Any] | None = None
        if own is not None:
            view = self.service.entry(
                self.service.storage.subject_indices(own_subject)[-1]
            )
            body = view.record.body
            named = {code: bytes.fromhex(h) for code, h in body["children"].items()}
            rows = self.service.storage.records_by_payload(list(named.values()))
            summed = [
                self.service.entry(rows[h].index).record.body
                for h in named.values()
                if h in rows
            ]
            stale = sorted(
                code
                for code, digest in named.items()
                if code in current
                and (
                    current[code].payload_hash != digest
                    or (len(code) < 13 and self._stale(rows.get(digest), {}))
                )
            )
            recap = {
                **self._summary(view, ballot),
                "flags": [f.to_json() for f in recap_flags(body, summed)],
                "stale_children": stale,
                "unnamed_children": sorted(set(listed) - set(named)),
                "stale": bool(stale),
            }
        present = sum(1 for c in children if c["status"] == "present")
        return {
            "ballot": ballot,
            "region": region or "national",
            "level": level,
            "recap": recap,
            "children": children,
            "completeness": {
                "listed": len(listed),
                "present": present,
                "missing": len(listed) - present,
                "flagged": sum(1 for c in children if c.get("flags")),
            },
        }

    def corrections(self, ballot: str, region: str) -> dict[str, Any]:
        """Every correction of a form or recap in ``region`` ("" national), in order.

        A correction is any later revision of a tally (authority correction,
        recount) or a recap (re-signed after a child changed): with who signed it,
        when, why (reason code, reference, free text), and what changed against
        the revision it supersedes.
        """
        level_of(region)  # a recap level, or KeyError
        rows = [
            *self.service.storage.revisions_under(f"results/{ballot}/{region}"),
            *self.service.storage.revisions_under(f"recaps/{ballot}/{region}"),
        ]
        items = []
        for row in sorted(rows, key=lambda r: r.index):
            view = self.service.entry(row.index)
            indices = self.service.storage.subject_indices(row.subject)
            before = self.service.entry(indices[row.revision - 1]).record.body
            after = view.record.body
            item = self._summary(view, ballot)
            item["changed"] = [
                {"where": where, "before": old, "after": new}
                for where, old, new in differences(
                    totals_of(before), totals_of(after), "totals"
                )
            ]
            item["supersedes"] = indices[row.revision - 1]
            items.append(item)
        return {
            "ballot": ballot,
            "region": region or "national",
            "corrections": items,
        }
