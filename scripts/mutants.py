"""Plant bugs in the security-critical code, one at a time, and run the tests.

    .venv/bin/python scripts/mutants.py [--only NAME ...] [--list] [--json]

Each mutant is one small edit of one source file (what a careless change or an
attacker's patch would look like): a prefix dropped, a comparison skipped, a
check inverted. For each, a copy of the working tree gets the edit and the
tests that own the property run on it (``pytest -x``, first failure stops).
A mutant the tests do not fail on SURVIVES: that is a missing test. Exit 0 when
every mutant is killed, 1 when one survives, 2 on usage errors.

The table below is the list; ``tests/test_mutants.py`` checks that every edit
still applies to the code, so the list cannot rot silently.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VERIFIER = ("tests/unit/verifier", "tests/vectors", "tests/property")
WRITER = (
    "tests/faults/test_writer_tamper.py",
    "tests/unit/ledger",
    "tests/integration/test_records.py",
)
STORAGE = (
    "tests/unit/ledger",
    "tests/faults/test_writer_tamper.py",
    "tests/integration/test_ledger_backends.py",
)
WITNESS = ("tests/integration/test_witness.py", "tests/vectors")
READER = ("tests/integration/test_read_only_log.py",)
AUDIT = ("tests/unit/verifier/test_audit.py", "tests/unit/verifier/test_audit_paths.py")
MONITOR = ("tests/unit/monitor", "tests/integration/test_monitor.py")
METRICS = ("tests/api/test_metrics.py",)
SAMPLE = (
    "tests/unit/verifier/test_sample.py",
    "tests/unit/verifier/test_sample_check.py",
    "tests/integration/test_audit_sample.py",
)
REPORT = (
    "tests/unit/audit",
    "tests/unit/verifier/test_audit_timeline.py",
    "tests/integration/test_audit_report.py",
)
CLUSTER = ("tests/cluster/test_lease.py", "tests/cluster/test_queue.py")
PROOFS = (
    "tests/property/test_batch_proofs.py",
    "tests/property/test_tree_properties.py",
)
PAGE = ("tests/explorer/test_js_verifier.py",)
BROWSER = ("tests/explorer/test_browser.py",)
ARITHMETIC = ("tests/explorer/test_js_arithmetic.py",)
BUNDLE = (
    "tests/integration/test_bundle_mutations.py",
    "tests/integration/test_proof_bundle.py",
    "tests/unit/verifier/test_sparse_audit.py",
)


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (found exactly once) by ``new`` in ``path``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    source: str = "own"  # "review": one of the outside review's survivors


MUTANTS = [
    # -- the outside review's survivors ----------------------------------------
    Mutant(
        "note-key-id-ignored",
        "verifier/note.py",
        "key = by_id.get((sig.name, sig.key_id))",
        "key = {k.name: k for k in keys}.get(sig.name)",
        VERIFIER,
        "review",
    ),
    Mutant(
        "dsse-key-filed-under-another-id",
        "verifier/dsse.py",
        "if len(key) != 32 or hashlib.sha256(key).hexdigest() != signature.keyid:",
        "if len(key) != 32:",
        VERIFIER,
        "review",
    ),
    Mutant(
        "cosigned-origin-unchecked",
        "verifier/cosignature.py",
        "    if checkpoint.origin != origin:\n        raise SignatureInvalid(",
        "    if False:\n        raise SignatureInvalid(",
        VERIFIER,
        "review",
    ),
    Mutant(
        "start-root-uncompared",
        "ledger/read/tree.py",
        "    if state.root != head.root:",
        "    if False:",
        STORAGE,
        "review",
    ),
    Mutant(
        "sqlite-synchronous-normal",
        "ledger/storage/engine.py",
        'cur.execute("PRAGMA synchronous=FULL")',
        'cur.execute("PRAGMA synchronous=NORMAL")',
        STORAGE,
        "review",
    ),
    Mutant(
        "failed-commit-swallowed",
        "ledger/storage/writes.py",
        'raise StorageUnavailable(f"append not committed: {safe_message(e)}") from e',
        "return head",
        STORAGE,
        "review",
    ),
    Mutant(
        "consistency-old-root-uncompared",
        "verifier/proof_check.py",
        '    _compare_roots(first, old_root, "consistency (old tree)")\n',
        "",
        VERIFIER,
        "review",
    ),
    Mutant(
        "hash-pairs-without-node-prefix",
        "verifier/rfc6962.py",
        "sha256(NODE_PREFIX + nodes[i] + nodes[i + 1]).digest()",
        "sha256(nodes[i] + nodes[i + 1]).digest()",
        VERIFIER,
        "review",
    ),
    Mutant(
        "recap-sum-ignores-missing-keys",
        "verifier/rules/arithmetic.py",
        "        for key in sorted(set(recorded) | set(summed)):",
        "        for key in sorted(set(recorded)):",
        VERIFIER,
        "review",
    ),
    # -- hashing and proofs -----------------------------------------------------
    Mutant(
        "leaf-prefix-dropped",
        "verifier/rfc6962.py",
        "return hashlib.sha256(LEAF_PREFIX + entry).digest()",
        "return hashlib.sha256(entry).digest()",
        VERIFIER,
    ),
    Mutant(
        "node-prefix-dropped",
        "verifier/rfc6962.py",
        "return hashlib.sha256(NODE_PREFIX + left + right).digest()",
        "return hashlib.sha256(left + right).digest()",
        VERIFIER,
    ),
    Mutant(
        "inclusion-right-edge-ignored",
        "verifier/proof_check.py",
        "        if fn & 1 or fn == sn:\n            node = hash_children(item, node)",
        "        if fn & 1:\n            node = hash_children(item, node)",
        VERIFIER,
    ),
    Mutant(
        "inclusion-root-uncompared",
        "verifier/proof_check.py",
        '    _compare_roots(calculated, root, "inclusion")',
        "    pass",
        VERIFIER,
    ),
    Mutant(
        "consistency-new-root-uncompared",
        "verifier/proof_check.py",
        '    _compare_roots(second, new_root, "consistency (new tree)")',
        "    pass",
        VERIFIER,
    ),
    # -- notes, checkpoints, cosignatures ---------------------------------------
    Mutant(
        "note-bad-signature-skipped",
        "verifier/note.py",
        "        key.verify(message, sig.signature)\n        verified.append(key)",
        "        verified.append(key)",
        VERIFIER,
    ),
    Mutant(
        "checkpoint-origin-unchecked",
        "verifier/checkpoint.py",
        "    if checkpoint.origin != origin:",
        "    if False:",
        VERIFIER,
    ),
    Mutant(
        "witness-quorum-unchecked",
        "verifier/cosignature.py",
        "    if len(cosigned) < policy.quorum:",
        "    if False:",
        VERIFIER,
    ),
    # -- DSSE, registry, authorization ------------------------------------------
    Mutant(
        "dsse-pae-lengths-dropped",
        "verifier/dsse.py",
        'return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)',
        'return b"DSSEv1 %s %s" % (kind, payload)',
        VERIFIER,
    ),
    Mutant(
        "revoked-key-accepted",
        "verifier/registry/authorize.py",
        "        if grant.revoked_at is not None:\n            raise KeyRevoked(",
        "        if False:\n            raise KeyRevoked(",
        VERIFIER,
    ),
    Mutant(
        "admin-threshold-ignored",
        "verifier/registry/authorize.py",
        "        if len(admins) < policy.threshold:",
        "        if False:",
        VERIFIER,
    ),
    # -- the writer's gate --------------------------------------------------------
    Mutant(
        "chain-prev-unchecked",
        "verifier/rules/chain.py",
        "    if current_hash is not None and prev != current_hash:",
        "    if False:",
        WRITER + AUDIT,
    ),
    Mutant(
        "chain-stale-revision-accepted",
        "verifier/rules/chain.py",
        "    if revision < expected:",
        "    if False:",
        WRITER + AUDIT,
    ),
    Mutant(
        "dedupe-ignores-the-log",
        "ledger/admission.py",
        "known = batch_payloads.get(payload_hash, stored.get(payload_hash))",
        "known = batch_payloads.get(payload_hash)",
        WRITER,
    ),
    Mutant(
        "recap-child-subject-unchecked",
        "verifier/rules/chain.py",
        "        if logged_subject(digest) != subject:",
        "        if logged_subject(digest) is None:",
        WRITER + AUDIT,
    ),
    # -- what the writer acts on --------------------------------------------------
    Mutant(
        "registry-replayed-unproven",
        "ledger/read/registry.py",
        "                prove(position, data)\n",
        "                pass  # unproven\n",
        WRITER,
    ),
    Mutant(
        "window-not-checked-at-logged-time",
        "ledger/admission.py",
        "                check_window(item.record, item.schema, logged, self.skew, "
        "self.max_age)",
        "                pass",
        ("tests/faults/test_clock.py",),
    ),
    Mutant(
        "checkpoint-older-than-its-entries",
        "ledger/sequencer.py",
        "            made_at = max(self._now_ms(head), logged_ms)",
        "            made_at = self._now_ms(head)",
        ("tests/faults/test_clock.py",),
    ),
    Mutant(
        "repeat-answered-unproven",
        "ledger/sequencer.py",
        "            proven[index] = (prove(index, data), data)",
        "            proven[index] = (hash_leaf(data), data)",
        WRITER,
    ),
    Mutant(
        "repeat-answered-with-another-entry",
        "ledger/sequencer.py",
        "                and not decision.holds(proven[decision.index][1])",
        "                and False",
        ("tests/integration/test_one_writer_mode.py",),
    ),
    Mutant(
        "seal-not-compared",
        "ledger/startup.py",
        "    return digest if hmac.compare_digest(sealed, head.seal) else None",
        "    return digest",
        WRITER,
    ),
    Mutant(
        "seal-ignores-the-subject",
        "ledger/seal.py",
        "        self._hash.update(head + subject_bytes + schema_bytes)",
        "        self._hash.update(head + schema_bytes)",
        WRITER,
    ),
    Mutant(
        "guards-ignore-altered-triggers",
        "ledger/storage/guards.py",
        "        elif have != want:",
        "        elif False:",
        STORAGE,
    ),
    Mutant(
        "rows-beyond-the-head-ignored",
        "ledger/startup.py",
        "    beyond = storage.beyond(size)  # (5)",
        "    beyond: list[str] = []  # (5)",
        STORAGE,
    ),
    Mutant(
        "stored-head-checkpoint-unchecked",
        "ledger/read/tree.py",
        "    if stored is None or (stored.root, stored.note) != (head.root, head.note)",
        "    if False",
        STORAGE,
    ),
    Mutant(
        "rollback-unchecked",
        "ledger/trusted.py",
        "    if trusted.size > size:",
        "    if False:",
        WRITER,
    ),
    Mutant(
        "head-cas-unchecked",
        "ledger/storage/writes.py",
        "                if moved != 1:\n                    raise IntegrityFailure(\n"
        '                        f"tree head is no longer at size {expected_size}: "',
        "                if False:\n                    raise IntegrityFailure(\n"
        '                        f"tree head is no longer at size {expected_size}: "',
        STORAGE,
    ),
    # -- the reader apart from the writer ----------------------------------------
    Mutant(
        "reader-entry-unproven",
        "ledger/read/entries.py",
        "            leaf_hash = prove(row.index, row.data)",
        "            leaf_hash = row.leaf_hash",
        READER,
    ),
    Mutant(
        "reader-serves-a-rolled-back-head",
        "ledger/read/stored.py",
        "            if head.size < old.size:",
        "            if False:",
        READER,
    ),
    # -- the witness and the audit ------------------------------------------------
    Mutant(
        "witness-cosigns-inconsistent",
        "verifier/witness_server.py",
        '            return f"the consistency proof does not verify: {e}"',
        '            return ""',
        WITNESS,
    ),
    Mutant(
        "audit-recap-sum-unchecked",
        "verifier/fullaudit/auditor.py",
        '        self.checked["recap-sum"] += 1',
        '        self.checked["recap-sum"] += 1\n        return',
        AUDIT,
    ),
    # -- monitoring (issue 22) ----------------------------------------------
    Mutant(
        "cut-off-answer-read-as-whole",
        "verifier/tile_client.py",
        "        if declared.isdigit() and len(data) < int(declared):",
        "        if False:",
        ("tests/unit/verifier/test_http_fetch.py",),
    ),
    Mutant(
        "read-ahead-out-of-order",
        "verifier/tile_client.py",
        "            got = pending.popleft().result()",
        "            got = pending.pop().result()",
        ("tests/property/test_entries_ahead.py",),
    ),
    Mutant(
        "read-ahead-error-dropped",
        "verifier/tile_client.py",
        "            got = pending.popleft().result()",
        "            head = pending.popleft()\n"
        "            if head.exception() is not None:\n"
        "                return\n"
        "            got = head.result()",
        ("tests/property/test_entries_ahead.py",),
    ),
    Mutant(
        "monitor-trusts-entries-without-the-root",
        "monitor/follower.py",
        "if auditor.size != size or auditor.hasher.root() != root:",
        "if auditor.size != size:",
        MONITOR,
    ),
    Mutant(
        "monitor-fork-reported-as-unreachable",
        "monitor/follower.py",
        '        self.book.event(\n            Alert(\n                "fork",',
        "        self.book.event(\n            Alert(\n"
        '                "log-unreachable",',
        MONITOR,
    ),
    Mutant(
        "monitor-revoked-write-not-named",
        "monitor/checks.py",
        'revoked = finding.rule == "key-revoked"',
        "revoked = False",
        MONITOR,
    ),
    Mutant(
        "webhook-drops-undelivered-alerts",
        "monitor/webhook.py",
        'self.owner.dead(self.url, alert, f"not delivered in time: {why}")',
        "continue  # dropped",
        MONITOR,
    ),
    Mutant(
        "monitor-config-typos-ignored",
        "monitor/config.py",
        "unknown = sorted(set(table) - allowed)",
        "unknown: list[str] = []",
        MONITOR,
    ),
    Mutant(
        "metrics-label-from-the-raw-path",
        "api/access.py",
        'return "(unmatched)"',
        'return str(path) or "(unmatched)"',
        METRICS,
    ),
    Mutant(
        "readyz-ignores-checkpoint-age",
        "ledger/health.py",
        "    if age > max_age:",
        "    if age > max_age * 1e9:",
        METRICS,
    ),
    Mutant(
        "counts-accept-booleans",
        "verifier/body_schema.py",
        "if not _INT_ONLY.issuperset(map(type, values)):",
        "if not all(isinstance(x, int) for x in values):",
        VERIFIER,
    ),
    Mutant(
        "counts-unbounded-below",
        "verifier/body_schema.py",
        "if min(values) < least or max(values) > most:",
        "if max(values) > most:",
        VERIFIER,
    ),
    Mutant(
        "counts-new-names-unchecked",
        "verifier/body_schema.py",
        "            if not all(key(k) for k in v):\n                return False\n",
        "",
        VERIFIER,
    ),
    Mutant(
        "monitor-compares-with-another-subject",
        "monitor/checks.py",
        "if kept is None or kept[1] != record.subject or kept[2] is None:",
        "if kept is None or kept[2] is None:",
        MONITOR,
    ),
    Mutant(
        "int-list-uniqueness-skipped",
        "verifier/body_schema.py",
        "return not unique or len(set(v)) == len(v)",
        "return True",
        VERIFIER,
    ),
    Mutant(
        "bundle-inclusion-unchecked",
        "verifier/bundle_check.py",
        "proofs.verify(item.index, item.leaf, item.proof)",
        "pass",
        BUNDLE,
    ),
    Mutant(
        "bundle-selection-unchecked",
        "verifier/bundle_check.py",
        "        if not fits:\n",
        "        if False:\n",
        BUNDLE,
    ),
    Mutant(
        "bundle-context-any-schema",
        "verifier/bundle_check.py",
        "fits = record.schema in CONTEXT_SCHEMAS",
        "fits = True",
        BUNDLE,
    ),
    Mutant(
        "bundle-trailer-unchecked",
        "verifier/proof_bundle.py",
        "            or trailer != expected\n",
        "            and trailer != expected\n",
        BUNDLE,
    ),
    Mutant(
        "bundle-pins-unproven",
        "verifier/bundle_check.py",
        "verify_consistency(old.size, size, old.root_hash, root, pinned.proof)",
        "pass",
        BUNDLE,
    ),
    Mutant(
        "bundle-your-pin-ignored",
        "verifier/bundle_check.py",
        "    _pinned_ok(trusted, have, size, root)\n",
        "",
        BUNDLE,
    ),
    Mutant(
        "bundle-witnesses-ignored",
        "verifier/bundle_check.py",
        "header.checkpoint, log_key, origin, policy",
        "header.checkpoint, log_key, origin",
        BUNDLE,
    ),
    Mutant(
        "sparse-audit-forgives-stale-revisions",
        "verifier/fullaudit/auditor.py",
        'if self.sparse and broken is not None and broken.kind == "skipped":',
        "if self.sparse and broken is not None:",
        BUNDLE,
    ),
    Mutant(
        "shared-proof-suffix-unchecked",
        "verifier/proof_check.py",
        "if known is not None and known[0] == root and known[1] == proof[k:]:",
        "if known is not None and known[0] == root:",
        VERIFIER,
    ),
    Mutant(
        "shared-proof-node-hash-unchecked",
        "verifier/proof_check.py",
        "if known is not None and known[0] == root and known[1] == proof[k:]:",
        "if known is not None and known[1] == proof[k:]:",
        VERIFIER,
    ),
    Mutant(
        "bundle-data-after-the-stream",
        "verifier/proof_bundle.py",
        "        if self._zlib.unused_data or self._raw.read(1):\n",
        "        if False:\n",
        BUNDLE,
    ),
    Mutant(
        "sample-plan-at-its-seed-accepted",
        "verifier/sample.py",
        "    if index >= seed_size:",
        "    if index > seed_size:",
        SAMPLE,
    ),
    Mutant(
        "sample-seed-without-the-plan",
        "verifier/sample.py",
        "_SEED_LABEL + root + bytes.fromhex(plan.payload_hash)",
        "_SEED_LABEL + root",
        SAMPLE,
    ),
    Mutant(
        "sample-stratum-share-rounded-down",
        "verifier/sample.py",
        "share = -(-n * len(members) // total)",
        "share = n * len(members) // total",
        SAMPLE,
    ),
    Mutant(
        "sample-population-outside-the-region",
        "verifier/sample.py",
        "if district.startswith(self.region) and _fits(REGIONS, record):",
        "if _fits(REGIONS, record):",
        SAMPLE,
    ),
    Mutant(
        "sample-largest-stations-last",
        "verifier/sample.py",
        "for votes in sorted(valid, reverse=True):",
        "for votes in sorted(valid):",
        SAMPLE,
    ),
    Mutant(
        "sample-units-not-compared",
        "verifier/sample.py",
        '_COMPARED = ("format", "plan", "population", "size", "strata", "units")',
        '_COMPARED = ("format", "plan", "population", "size", "strata")',
        SAMPLE,
    ),
    Mutant(
        "sample-seed-root-unproven",
        "verifier/sample_check.py",
        "        verify_consistency(\n            seed_size,",
        "        (lambda *_: None)(\n            seed_size,",
        SAMPLE,
    ),
    Mutant(
        "sample-audit-failures-ignored",
        "verifier/sample_check.py",
        "    if failed:\n",
        "    if False:\n",
        SAMPLE,
    ),
    Mutant(
        "sample-checkpoint-witnesses-unchecked",
        "verifier/sample_check.py",
        "verify_cosigned(note, log_key, origin, policy)",
        "verify_cosigned(note, log_key, origin)",
        SAMPLE,
    ),
    Mutant(
        "sample-rest-of-a-bundle-unhashed",
        "verifier/sample_check.py",
        "        if hasher.root() != checkpoint.root_hash:",
        "        if False:",
        SAMPLE,
    ),
    Mutant(
        "report-finding-detail-unescaped",
        "audit/report.py",
        '                    escape(f["detail"]),',
        '                    f["detail"],',
        REPORT,
    ),
    Mutant(
        "report-share-printed-as-a-fraction",
        "audit/report.py",
        '        return f"{value:.1%}"',
        '        return f"{value:.3f}"',
        REPORT,
    ),
    Mutant(
        "timeline-left-out-of-a-saved-step",
        "verifier/fullaudit/auditor.py",
        "        self.hours.flush()\n        self.store.set_progress(",
        "        self.store.set_progress(",
        REPORT,
    ),
    Mutant(
        "key-rotation-counted-as-a-grant",
        "verifier/fullaudit/timeline.py",
        '                "rotation"\n                if "replaces" in body',
        '                "rotation"\n                if False',
        REPORT,
    ),
    # -- proofs of many entries (exports) --------------------------------------
    Mutant(
        "batch-proof-shared-past-the-edge",
        "ledger/read/proof_builder.py",
        "        if ((index >> TILE_HEIGHT) + 1) << TILE_HEIGHT <= size:",
        "        if index >> TILE_HEIGHT << TILE_HEIGHT < size:",
        PROOFS,
    ),
    Mutant(
        "batch-proof-one-level-short",
        "ledger/read/proof_builder.py",
        "            block, above = index >> TILE_HEIGHT, proof[TILE_HEIGHT:]",
        "            block, above = index >> TILE_HEIGHT, proof[TILE_HEIGHT + 1 :]",
        PROOFS,
    ),
    Mutant(
        "tile-path-wrong-tile-above-level-0",
        "ledger/read/proof_builder.py",
        "            position = index >> (level * TILE_HEIGHT)  # in the level's row",
        "            position = index >> TILE_HEIGHT  # in the level's row",
        PROOFS,
    ),
    Mutant(
        "bundle-writer-error-swallowed",
        "verifier/proof_bundle.py",
        "                    self._error = e",
        "                    pass",
        ("tests/unit/verifier/test_bundle_writer.py",),
    ),
    Mutant(
        "bundle-plan-substring-unescaped",
        "ledger/storage/recordindex.py",
        "records.c.subject.contains(containing, autoescape=True)",
        "records.c.subject.contains(containing)",
        ("tests/integration/test_find_records.py",),
    ),
    Mutant(
        "bundle-plan-substring-ignores-the-rest",
        "ledger/storage/recordindex.py",
        "records.c.idx.in_(inner), records.c.idx < end, *wanted",
        "records.c.idx.in_(inner), records.c.idx < end",
        ("tests/integration/test_find_records.py",),
    ),
    Mutant(
        "plan-seed-at-its-own-entry-taken",
        "verifier/sample.py",
        '    if body["seed_size"] <= index:',
        '    if body["seed_size"] < index:',
        ("tests/integration/test_records.py",),
    ),
    Mutant(
        "plan-not-asked-by-the-writer",
        "ledger/admission.py",
        "                if item.record.schema == PLAN.name:\n"
        "                    admit_plan(item.record, index)",
        "                pass",
        ("tests/integration/test_records.py",),
    ),
    Mutant(
        "plan-not-asked-by-the-audit",
        "verifier/fullaudit/examiner.py",
        "        if record.schema == PLAN.name:\n            admit_plan(record, index)",
        "        pass",
        SAMPLE,
    ),
    # -- many processes, one sequencer (issue 25) --------------------------------
    Mutant(
        "commit-fence-ignores-the-token",
        "ledger/storage/lease.py",
        '"+ make_interval(secs => %s) WHERE id = 1 AND token = %s "\n'
        '            "RETURNING set_config(',
        '"+ make_interval(secs => %s) WHERE id = 1 AND %s > 0 "\n'
        '            "RETURNING set_config(',
        CLUSTER,
    ),
    Mutant(
        "commit-without-a-lease-allowed",
        "ledger/storage/lease.py",
        '            if self.dialect == "postgresql":\n'
        "                raise LeaseLost(",
        "            if False:\n                raise LeaseLost(",
        CLUSTER,
    ),
    Mutant(
        "takeover-of-a-live-lease",
        "ledger/storage/lease.py",
        "if not (expired or mine or (quiet and self._term_free(token))):",
        "if not (expired or mine or quiet or self._term_free(token)):",
        CLUSTER,
    ),
    Mutant(
        "queue-row-mac-unchecked",
        "ledger/cluster.py",
        "        if not hmac.compare_digest(self._mac(_BODY_TAG, body), mac):",
        "        if False:",
        CLUSTER,
    ),
    Mutant(
        "outcome-mac-not-bound-to-its-row",
        "ledger/cluster.py",
        "return self._mac(_OUTCOME_TAG, _ID.pack(tag), body)",
        "return self._mac(_OUTCOME_TAG, _ID.pack(0), body)",
        CLUSTER,
    ),
    Mutant(
        "receipt-for-an-entry-not-holding-the-submission",
        "ledger/cluster.py",
        "        if hashlib.sha256(logged.envelope.payload).digest() != "
        "submission.payload_hash:",
        "        if False:",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "grown-tree-root-unchecked",
        "ledger/read/stored.py",
        "        if state.root != head.root:",
        "        if False:",
        ("tests/integration/test_read_only_log.py",),
    ),
    Mutant(
        "grown-tree-leaf-hash-unchecked",
        "ledger/read/tree.py",
        "        if row.index != start + offset or leaf != row.leaf_hash:",
        "        if row.index != start + offset:",
        ("tests/integration/test_read_only_log.py",),
    ),
    Mutant(
        "grown-tree-short-read-accepted",
        "ledger/read/tree.py",
        "    if len(leaves) != end - start:",
        "    if False:",
        ("tests/integration/test_read_only_log.py",),
    ),
    Mutant(
        "grown-tree-tile-cached-wrong",
        "ledger/read/stored.py",
        "            self._cache.put(tile.level, tile.index, "
        "TileNodes.from_levels(tile.nodes))",
        "            self._cache.put(tile.level, tile.index + 1, "
        "TileNodes.from_levels(tile.nodes))",
        ("tests/integration/test_read_only_log.py",),
    ),
    Mutant(
        "holder-serves-an-older-tree-than-its-receipts",
        "ledger/cluster.py",
        "        if local is not None and local.size > best.size:",
        "        if False:",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "holder-receipt-proof-unchecked",
        "ledger/cluster.py",
        "            verify_inclusion(index, tree.size, leaf, list(proof), "
        "tree.head.root)",
        "            pass",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "grown-entries-off-by-one",
        "ledger/read/stored.py",
        "        return {i: data[i - first] for i in indices if 0 <= i - first < "
        "len(data)}",
        "        return {i: data[i - first - 1] for i in indices if 0 < i - first <= "
        "len(data)}",
        ("tests/integration/test_read_only_log.py", "tests/cluster/test_in_process.py"),
    ),
    Mutant(
        "outcome-deleted-as-it-is-read",
        "ledger/storage/queue.py",
        "                        (list(delivered), list(ids)),",
        "                        (list(delivered) + list(ids), list(ids)),",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "undecided-in-an-outage-called-busy",
        "ledger/cluster.py",
        "            if self._failed_at >= began:",
        "            if False:",
        ("tests/cluster/test_queue.py",),
    ),
    Mutant(
        "witnessed-note-consistency-unchecked",
        "ledger/read/witnessed.py",
        "        verify_consistency(size, tree.size, root, tree.head.root, proof)\n",
        "",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "witnessed-note-older-served",
        "ledger/read/witnessed.py",
        "            if size < self._size or (size == self._size and note == "
        "self._note):",
        "            if size == self._size and note == self._note:",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "witnessed-note-unpinned-lines-kept",
        "ledger/read/witnessed.py",
        "            data = format_note(Note(parsed.text, kept))\n",
        "",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "witnessed-note-refusal-not-remembered",
        "ledger/read/witnessed.py",
        "            self._seen = stored[1]\n",
        "",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "cluster-witnessed-note-not-stored",
        "ledger/cluster.py",
        "            keep=self.storage.put_witnessed,\n",
        "",
        ("tests/cluster/test_witnessing.py",),
    ),
    Mutant(
        "witnessed-note-stored-uncosigned",
        "ledger/cosigning.py",
        "        if self.keep is not None and witnessed != note:",
        "        if self.keep is not None:",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "witnessed-row-replaced-by-smaller",
        "ledger/storage/writes.py",
        '            "WHERE witnessed_checkpoint.size <= excluded.size"',
        '            ""',
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "recap-sum-of-a-recap-reads-its-top",
        "verifier/rules/arithmetic.py",
        '    return add_totals(body.get("totals", body) for body in bodies)',
        "    return add_totals(body for body in bodies)",
        ("tests/property/test_rules_properties.py",),
    ),
    Mutant(
        "below-sum-misses-a-child",
        "results/reader.py",
        "                views[row.index].record.body for row in current.values()",
        "                views[row.index].record.body "
        "for row in [*current.values()][1:]",
        ("tests/api/test_recaps.py",),
    ),
    Mutant(
        "proven-tile-unverified",
        "ledger/read/tree.py",
        "        verify_inclusion(first, size, nodes.at(0, 0), path, root)\n",
        "",
        (
            "tests/integration/test_read_only_log.py",
            "tests/faults/test_writer_tamper.py",
        ),
    ),
    Mutant(
        "entry-not-checked-in-its-proven-tile",
        "ledger/read/tree.py",
        "                if tile(block).at(0, index % TILE_WIDTH) != leaf:",
        "                if tile(block) is None:",
        (
            "tests/integration/test_read_only_log.py",
            "tests/faults/test_writer_tamper.py",
        ),
    ),
    Mutant(
        "edge-tile-unverified",
        "ledger/read/tree.py",
        "        verify_inclusion(first, size, leaves[0], proof, root)\n",
        "",
        (
            "tests/property/test_entry_prover.py",
            "tests/integration/test_read_only_log.py",
            "tests/faults/test_writer_tamper.py",
        ),
    ),
    Mutant(
        "entry-not-checked-at-the-proven-edge",
        "ledger/read/tree.py",
        "                if edge_leaves()[index % TILE_WIDTH] != leaf:",
        "                if edge_leaves() is None:",
        (
            "tests/property/test_entry_prover.py",
            "tests/integration/test_read_only_log.py",
            "tests/faults/test_writer_tamper.py",
        ),
    ),
    Mutant(
        "recaps-read-before-the-reader-caught-up",
        "domains/recaps.py",
        "                _caught_up(reader, logged)\n",
        "                pass\n",
        ("tests/api/test_recaps.py",),
    ),
    Mutant(
        "witnessed-note-size-unbounded",
        "ledger/read/witnessed.py",
        "        if not 0 < size <= tree.size:  # the row's size column said otherwise",
        "        if False:",
        ("tests/integration/test_stored_witnessed.py",),
    ),
    Mutant(
        "holder-turn-fenced-answered-as-failed",
        "ledger/cluster.py",
        "committed here\n        _settle_all(waiters, None)",
        "committed here\n        _settle_all(waiters, error)",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "holder-turn-never-expires",
        "ledger/cluster.py",
        "        expiry = loop.call_later(timeout, _expire, waiters, timeout)",
        "        expiry = loop.call_later(3600, _expire, waiters, timeout)",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "ended-term-registries-forgotten",
        "ledger/cluster.py",
        "        if last is not None:\n",
        "        if False:\n",
        ("tests/cluster/test_in_process.py",),
    ),
    Mutant(
        "fenced-commit-idles-unbounded",
        "ledger/storage/lease.py",
        "\"RETURNING set_config('idle_in_transaction_session_timeout', %s, true)\"",
        '"RETURNING %s"',
        ("tests/cluster/test_lease.py",),
    ),
    Mutant(
        "page-leaf-prefix-dropped",
        "explorer/static/js/verify/merkle.js",
        "return sha256(concat(Uint8Array.of(0), data));",
        "return sha256(concat(data));",
        PAGE,
    ),
    Mutant(
        "page-inclusion-index-unchecked",
        "explorer/static/js/verify/merkle.js",
        "if (!(index >= 0n && index < size)) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-inclusion-proof-too-long",
        "explorer/static/js/verify/merkle.js",
        "if (sn === 0n) throw new ProofInvalid(`inclusion: proof too long",
        "if (false) throw new ProofInvalid(`inclusion: proof too long",
        PAGE,
    ),
    Mutant(
        "page-inclusion-root-not-compared",
        "explorer/static/js/verify/merkle.js",
        'compareRoots(calculated, root, "inclusion");',
        "",
        PAGE,
    ),
    Mutant(
        "page-consistency-fork-accepted",
        "explorer/static/js/verify/merkle.js",
        "if (!equal(oldRoot, newRoot)) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-consistency-old-root-unchecked",
        "explorer/static/js/verify/merkle.js",
        'compareRoots(first, oldRoot, "consistency (old tree)");',
        "",
        PAGE,
    ),
    Mutant(
        "page-note-key-id-ignored",
        "explorer/static/js/verify/note.js",
        "keys.find((k) => k.name === sig.name && equal(k.keyId, sig.keyId))",
        "keys.find((k) => k.name === sig.name)",
        PAGE,
    ),
    Mutant(
        "page-note-any-signature",
        "explorer/static/js/verify/note.js",
        "const valid = signature.length === 64 && (await ed25519Verify(",
        "const valid = signature.length === 64 || (await ed25519Verify(",
        PAGE,
    ),
    Mutant(
        "page-cosignature-time-unsigned",
        "explorer/static/js/verify/note.js",
        'signed = cosignatureMessage(fromUtf8(message, "note"), timestamp);',
        "signed = message;",
        PAGE,
    ),
    Mutant(
        "page-vkey-id-unchecked",
        "explorer/static/js/verify/note.js",
        "if (toHex(keyId) !== idHex) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-note-duplicate-signer",
        "explorer/static/js/verify/note.js",
        "if (seen.has(id)) throw new MalformedInput(`note: two signatures by ${id}`);",
        "",
        PAGE,
    ),
    Mutant(
        "page-checkpoint-origin-unpinned",
        "explorer/static/js/verify/checkpoint.js",
        "if (checkpoint.origin !== origin) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-checkpoint-log-signature-optional",
        "explorer/static/js/verify/checkpoint.js",
        "if (!verified.some((v) => v.key === key)) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-base64-non-canonical",
        "explorer/static/js/verify/bytes.js",
        "if (toBase64(out) !== text) {",
        "if (false) {",
        PAGE,
    ),
    Mutant(
        "page-rollback-accepted",
        "explorer/static/js/trust.js",
        "    if (sizeB < sizeA) {",
        "    if (false) {",
        BROWSER,
    ),
    Mutant(
        "page-fork-accepted",
        "explorer/static/js/trust.js",
        "      if (toHex(a.checkpoint.rootHash) !== toHex(b.checkpoint.rootHash)) {",
        "      if (false) {",
        BROWSER,
    ),
    Mutant(
        "page-quorum-ignored",
        "explorer/static/js/verify/checkpoint.js",
        "  if (cosigned.size < policy.quorum) {",
        "  if (false) {",
        PAGE,
    ),
    Mutant(
        "page-view-totals-trusted",
        "explorer/static/js/app.js",
        'wrong.push("totals");',
        "",
        BROWSER,
    ),
    Mutant(
        "page-entry-not-proven",
        "explorer/static/js/verify/tlogproof.js",
        "  await verifyInclusion(parsed.index, out.checkpoint.size, leafHash,",
        "  void (parsed.index, out.checkpoint.size, leafHash,",
        BROWSER,
    ),
    Mutant(
        "page-log-text-as-markup",
        "explorer/static/js/app.js",
        'return h("bdi", {}, String(value));',
        'const el = h("bdi"); el.innerHTML = String(value); return el;',
        BROWSER,
    ),
    Mutant(
        "page-flags-dpt-voters-at-limit",
        "explorer/static/js/verify/arithmetic.js",
        "if (voters.dpt.total > dpt)",
        "if (voters.dpt.total >= dpt)",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-margin-rounded-down",
        "explorer/static/js/verify/arithmetic.js",
        "dpt + Math.ceil(dpt * rules.marginRatio)",
        "dpt + Math.floor(dpt * rules.marginRatio)",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-registered-at-limit",
        "explorer/static/js/verify/arithmetic.js",
        "if (dpt > rules.maxRegistered)",
        "if (dpt >= rules.maxRegistered)",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-party-votes-dropped",
        "explorer/static/js/verify/arithmetic.js",
        "return a + count(party.party, `parties.${id}.party`) + sumOf(",
        "return a + 0 * count(party.party, `parties.${id}.party`) + sumOf(",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-damaged-papers-ignored",
        "explorer/static/js/verify/arithmetic.js",
        "received !== used + unused + damaged",
        "received !== used + unused",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-registered-sexes-unchecked",
        "explorer/static/js/verify/arithmetic.js",
        'groups.push(["registered.dpt", registered.dpt]);',
        "void registered.dpt;",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-negative-count-accepted",
        "explorer/static/js/verify/arithmetic.js",
        "if (!Number.isSafeInteger(value) || value < 0)",
        "if (!Number.isSafeInteger(value))",
        ARITHMETIC,
    ),
    Mutant(
        "page-flags-missing-section-as-zero",
        "explorer/static/js/verify/arithmetic.js",
        'if (!("parties" in body)) return null;',
        'if (!("parties" in body)) return 0;',
        ARITHMETIC,
    ),
    Mutant(
        "page-form-flags-trusted",
        "explorer/static/js/app.js",
        'if ("flags" in expect && record.schema === TALLY',
        "if (false && record.schema === TALLY",
        BROWSER,
    ),
    Mutant(
        "page-record-signature-unchecked",
        "explorer/static/js/app.js",
        "await verifyEnvelopeSignature(entry.payloadType, entry.payload, s.keyid, "
        "s.sig, grant.publicKey);",
        "void grant.publicKey;",
        BROWSER,
    ),
]


def _copy_tree(target: Path) -> None:
    """The working tree as it is (tracked and new files, not ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        name = raw.decode()
        source = ROOT / name
        if not source.is_file():
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def run(mutant: Mutant, tree: Path) -> tuple[bool, float, str]:
    """Plant ``mutant`` in ``tree``, run its tests, restore; (killed, seconds, tail)."""
    path = tree / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name}: its text is not in {mutant.path}")
    path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    started = time.monotonic()
    try:
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        result = subprocess.run(  # noqa: S603 - our own interpreter and tests
            [*command, *mutant.tests],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        path.write_text(original, encoding="utf-8")
    tail = (result.stdout.strip().splitlines() or [""])[-1]
    # pytest exits 1 when a test failed; anything else (2-5) is not a kill.
    return result.returncode == 1, time.monotonic() - started, tail


def main(argv: list[str] | None = None) -> int:
    """Run the chosen mutants; 0 when every one is killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutants")
    parser.add_argument("--list", action="store_true", help="list and exit")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        print(f"mutants: no mutant named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.name:38} {m.path}  ({m.source})")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="saksi-mutants-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        for number, mutant in enumerate(chosen, 1):
            killed, seconds, tail = run(mutant, tree)
            results.append(
                {
                    "name": mutant.name,
                    "path": mutant.path,
                    "source": mutant.source,
                    "killed": killed,
                    "seconds": round(seconds, 1),
                    "tests": tail,
                }
            )
            verdict = "killed" if killed else "SURVIVED"
            print(
                f"[{number}/{len(chosen)}] {mutant.name}: {verdict} "
                f"({seconds:.0f} s; {tail})",
                file=sys.stderr,
                flush=True,
            )
    killed = sum(r["killed"] for r in results)
    if args.json:
        print(json.dumps({"killed": killed, "total": len(results), "mutants": results}))
    else:
        print(f"{killed} of {len(results)} mutants killed")
        for r in results:
            if not r["killed"]:
                print(f"  survived: {r['name']} ({r['path']})")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
