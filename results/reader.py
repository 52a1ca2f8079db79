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

import bisect
from typing import Any

from ledger.read.entries import EntryReader, EntryView, require_subject
from ledger.storage.rows import RecordRow
from results.index import ResultsIndex
from verifier.election import LEVELS, child_subject, level_of, recap_subject
from verifier.rules import differences, recap_flags, sum_of, tally_flags, totals_of
from verifier.rules.state import ElectionState

__all__ = ["ResultsReader"]

_LEVEL_LENGTH = {name: length for length, name in LEVELS.items()}


class ResultsReader:
    """Answers ``region(ballot, code)`` from one record log.

    ``election`` is the region registry and candidate lists as of the tree the
    reads are in; ``index`` is caught up to it first.
    """

    def __init__(
        self, entries: EntryReader, election: ElectionState, index: ResultsIndex
    ) -> None:
        self.entries = entries
        self.election = election
        self.index = index
        self.index.catch_up()

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

    def region(self, ballot: str, region: str) -> dict[str, Any]:
        """The results of ``region`` ("" national) on ``ballot``.

        Raises:
            KeyError: ``region`` is not a recap level (2, 4, 6, 10 digits or "").
        """
        level_of(region)
        return self._views(ballot, [region], full=True)[0]

    def below(
        self,
        ballot: str,
        region: str,
        level: str,
        after: str = "",
        limit: int = 100,
        *,
        summed: bool = False,
    ) -> dict[str, Any]:
        """What a recap builder needs of every region at ``level`` under ``region``.

        One page of regions in code order (codes after ``after``, at most
        ``limit``; ``total`` counts them all), each with its recap's state
        (revision, payload hash, stale and unnamed children) and each child's
        latest revision and totals: the compact form of ``region``, read for
        many regions at once. ``summed``: each region carries ``sum``, what
        its present children contribute added up (``verifier.rules.sum_of``:
        the totals its recap records, before any fold), and no child carries
        its own totals; a recap builder needs no more, and a page is a tenth of
        the bytes to encode and decode.

        Raises:
            KeyError: ``region`` or ``level`` is not a recap level, or ``level``
                is above ``region``.
        """
        length = _LEVEL_LENGTH[level]
        level_of(region)
        if length < len(region):
            raise KeyError(level)
        election = self.election
        codes = [region]
        while codes and len(codes[0]) < length:
            codes = [c for code in codes for c in election.children_of(code)]
        total = len(codes)
        # In code order (each parent's children in order, parents in order).
        start = bisect.bisect_right(codes, after) if after else 0
        page = codes[start : start + limit]
        return {
            "ballot": ballot,
            "region": region or "national",
            "level": level,
            "total": total,
            "regions": self._views(ballot, page, full=False, summed=summed),
            "next": page[-1] if start + len(page) < total else None,
        }

    def _views(
        self, ballot: str, regions: list[str], *, full: bool, summed: bool = False
    ) -> list[dict[str, Any]]:
        # Every head the views need in one lookup, every entry in one read.
        election = self.election
        listed: dict[str, list[tuple[str, str]]] = {}
        for region in regions:
            pairs = [
                (c, child_subject(ballot, region, c))
                for c in election.children_of(region)
            ]
            listed[region] = [(c, s) for c, s in pairs if s is not None]
        own = {region: recap_subject(ballot, region) for region in regions}
        wanted = [s for pairs in listed.values() for _, s in pairs] + list(own.values())
        size = self.entries.reader.size  # rows the tree does not hold yet are not heads
        heads = (
            self.entries.index.record_heads(sorted(set(wanted)), below=size)
            if wanted
            else {}
        )
        views = self.entries.entries([row.index for row in heads.values()])
        for subject, row in heads.items():
            require_subject(views[row.index], subject)
        return [
            self._view(
                ballot, region, listed[region], heads, views, own[region], full, summed
            )
            for region in regions
        ]

    def _view(
        self,
        ballot: str,
        region: str,
        listed: list[tuple[str, str]],
        heads: dict[str, RecordRow],
        views: dict[int, EntryView],
        own_subject: str,
        full: bool,
        summed: bool = False,
    ) -> dict[str, Any]:
        children = []
        current: dict[str, RecordRow] = {}
        for code, subject in listed:
            row = heads.get(subject)
            if row is None:
                children.append({"code": code, "subject": subject, "status": "missing"})
                continue
            current[code] = row
            view = views[row.index]
            if full:
                summary = self._summary(view, ballot)
            else:
                summary = {
                    "subject": subject,
                    "revision": row.revision,
                    "payload_hash": row.payload_hash.hex(),
                }
                if not summed:
                    summary["totals"] = totals_of(view.record.body)
            children.append({"code": code, "status": "present", **summary})
        counts = self.election.carries_candidates(ballot, region)
        recap: dict[str, Any] | None = None
        own = heads.get(own_subject)
        if own is not None:
            view = views[own.index]
            body = view.record.body
            named = {code: bytes.fromhex(h) for code, h in body["children"].items()}
            stale = sorted(
                code
                for code, digest in named.items()
                if code in current
                and (
                    current[code].payload_hash != digest
                    or self.index.stale(current[code].subject)
                )
            )
            state = {
                "stale_children": stale,
                "unnamed_children": sorted({c for c, _ in listed} - set(named)),
                "stale": bool(stale),
            }
            if full:
                recap = {
                    **self._summary(view, ballot),
                    "flags": [
                        f.to_json()
                        for f in recap_flags(
                            body,
                            self._bodies(
                                named,
                                {
                                    row.payload_hash: views[row.index]
                                    for row in current.values()
                                },
                            ),
                            counts,
                        )
                    ],
                    **state,
                }
            else:
                recap = {
                    "subject": own_subject,
                    "revision": own.revision,
                    "payload_hash": own.payload_hash.hex(),
                    **state,
                }
        present = len(current)
        view_of: dict[str, Any] = {
            "ballot": ballot,
            "region": region or "national",
            "level": level_of(region),
            # False above the candidate lists: the recap folds candidates into
            # their parties (see verifier.rules.fold_totals).
            "counts_candidates": counts,
            "recap": recap,
            "children": children,
            "completeness": {
                "listed": len(listed),
                "present": present,
                "missing": len(listed) - present,
                "flagged": sum(1 for c in children if c.get("flags")),
            },
        }
        if not full:
            view_of["code"] = region
        if summed:
            view_of["sum"] = sum_of(
                views[row.index].record.body for row in current.values()
            )
        return view_of

    def _bodies(
        self, named: dict[str, bytes], current: dict[bytes, EntryView]
    ) -> list[dict[str, Any]]:
        """The bodies of the child revisions a recap names (those in the log).

        ``current`` holds the children already read for the view (by payload
        hash): a recap that is not stale names only those.
        """
        other = [h for h in named.values() if h not in current]
        size = self.entries.reader.size
        rows = self.entries.index.records_by_payload(other, below=size) if other else {}
        views = self.entries.entries([row.index for row in rows.values()])
        found = {**current, **{h: views[row.index] for h, row in rows.items()}}
        return [found[h].record.body for h in named.values() if h in found]

    def names(self, region: str) -> dict[str, Any]:
        """Where the names of ``region`` ("" national) and its children are said.

        For the region and each child, the latest region registry record
        (``regions/<district>``) of one district in it, which names the
        province, regency, district and villages it holds: a reader proves
        that entry and reads the name from it. Polling stations have no name.

        Raises:
            KeyError: ``region`` is not a recap level.
        """
        level_of(region)
        election = self.election
        codes = ([region] if region else []) + election.children_of(region)

        def district_in(code: str) -> str | None:
            while len(code) < 6:
                below = election.children_of(code)
                if not below:
                    return None
                code = below[0]
            return code[:6]

        wanted = {code: district_in(code) for code in codes}
        subjects = sorted({f"regions/{d}" for d in wanted.values() if d})
        size = self.entries.reader.size
        heads = (
            self.entries.index.record_heads(subjects, below=size) if subjects else {}
        )
        said = []
        for code, district in wanted.items():
            row = heads.get(f"regions/{district}") if district else None
            if row is not None:
                said.append({"code": code, "subject": row.subject, "index": row.index})
        return {"region": region or "national", "names": said}

    def corrections(
        self,
        ballot: str,
        region: str,
        latest: int | None = None,
        before: int | None = None,
    ) -> dict[str, Any]:
        """Every correction of a form or recap in ``region`` ("" national), in order.

        A correction is any later revision of a tally (authority correction,
        recount) or a recap (re-signed after a child changed): with who signed it,
        when, why (reason code, reference, free text), and what changed against
        the revision it supersedes.

        ``latest``: only the ``latest`` newest (logged before entry ``before``,
        if given), newest first, and ``next``, the ``before`` of the next page
        (None on the last): a feed read a page at a time.
        """
        level_of(region)  # a recap level, or KeyError
        rows = sorted(
            (
                RecordRow(index, subject, revision, "", b"")
                for index, subject, revision in self.index.corrections(ballot, region)
            ),
            key=lambda r: r.index,
        )
        page: dict[str, Any] = {}
        if latest is not None:
            older = [r for r in reversed(rows) if before is None or r.index < before]
            rows = older[:latest]
            page["next"] = rows[-1].index if len(older) > latest else None
        items = []
        for row in rows:
            view = self.entries.entry(row.index)
            indices = self.entries.index.subject_indices(row.subject)
            earlier = self.entries.entry(indices[row.revision - 1]).record.body
            after = view.record.body
            item = self._summary(view, ballot)
            item["changed"] = [
                {"where": where, "before": old, "after": new}
                for where, old, new in differences(
                    totals_of(earlier), totals_of(after), "totals"
                )
            ]
            item["supersedes"] = indices[row.revision - 1]
            items.append(item)
        return {
            "ballot": ballot,
            "region": region or "national",
            "corrections": items,
            **page,
        }
