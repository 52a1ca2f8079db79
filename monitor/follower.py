"""Following the log as an outside observer does: checkpoints, proofs, entries.

Each ``step`` reads the log's checkpoint through the public tlog-tiles API
(``verifier.tile_client``), verifies it (the log key, the origin, the witness
policy: ``verifier.trusted_log``), proves it consistent with the last one
trusted (a fork or rollback raises the ``fork`` alert and keeps the evidence),
then reads every new entry, audits it (``verifier.fullaudit``: the observer's
own audit) and checks it (``monitor.checks``). Only entries proven to be the
signed tree's have their alerts sent and the state committed: all of them
when they hash to the signed root, or, in a long read, the first ones every
``CONFIRM_EVERY`` entries, when a consistency proof from their own root
reaches the signed one. Entries that do not match (garbage tiles) raise
``log-serves-garbage`` and change nothing. Nothing is read from the
operator's database.

The state (the trusted checkpoint, fork evidence, the audit and the checks'
store) lives in ``[monitor] state``; a restarted monitor goes on from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from monitor.alerting import Alert, AlertBook
from monitor.checks import RecordChecks
from monitor.config import MonitorConfig
from verifier.cosignature import WitnessPolicy
from verifier.errors import VerificationError
from verifier.fullaudit import Auditor, AuditStore, ExaminerPool, run_audit
from verifier.fullaudit.examiner import Examined
from verifier.observe import ObserverState, catch_up
from verifier.proof_check import verify_consistency
from verifier.tile_client import READ_AHEAD, FetchError, TileHashes, TileLog
from verifier.trusted_log import Fork, TrustedLog

__all__ = ["Follower", "StepResult"]

log = logging.getLogger("saksi.monitor")

POOL_FROM = 256  # new entries in a step (a bundle) from which workers examine them
CONFIRM_EVERY = 1024  # entries confirmed and committed at a time in a long read


@dataclass
class StepResult:
    """What one step saw: the log's size, what is checked, and any error kind."""

    log_size: int
    checked: int
    error: str | None = None


class _Pending:
    """Alerts raised by entries not yet confirmed by a signed root."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}

    def event(self, alert: Alert) -> None:
        self.alerts[alert.fingerprint] = alert


class Follower:
    """Follows one log; its state in ``config.state``."""

    def __init__(
        self,
        config: MonitorConfig,
        log: TileLog,
        book: AlertBook,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.log = log
        self.book = book
        self.clock = clock
        config.state.mkdir(parents=True, exist_ok=True)
        self.observer = ObserverState(config.state, config.log_key, config.origin)
        self.store = AuditStore(config.state / "audit.sqlite")
        self.policy = WitnessPolicy(config.witnesses, config.min_witnesses)
        # Worker processes that examine entries (signatures, schemas) when a
        # step brings many: kept from step to step, made when first needed.
        self._pool: ExaminerPool | None = None
        self._open()
        self.log_size = self.auditor.size
        self.grew_at = clock()
        self.behind_since: float | None = None

    def _open(self) -> None:
        """The audit, checks and trusted checkpoint as last committed."""
        self.auditor = Auditor(self.store)
        self.pending = _Pending()
        self.checks = RecordChecks(
            self.store,
            self.config.thresholds,
            self.config.timetable,
            self.pending,
        )
        self.trusted = TrustedLog(self.config.log_key, self.config.origin, self.policy)
        kept = self.observer.load()
        if kept is not None:
            self.trusted.load(kept)

    def trusted_checker(self) -> TrustedLog:
        """A checker of checkpoints under this log's key and witness policy."""
        return TrustedLog(self.config.log_key, self.config.origin, self.policy)

    @property
    def checked(self) -> int:
        """Entries checked and confirmed by a signed root."""
        return self.auditor.confirmed

    def lag_seconds(self) -> float:
        """Seconds since the log showed entries this monitor has not checked."""
        return 0.0 if self.behind_since is None else self.clock() - self.behind_since

    def step(self) -> StepResult:
        """Read the checkpoint; check what is new. Never raises for the log's faults."""
        book = self.book
        try:
            note = self.log.checkpoint()
        except FetchError as e:
            return self._unreachable(e)
        book.condition(Alert("log-unreachable", "", "log"), False)
        try:
            update = catch_up(self.trusted, note, self.log)
        except Fork as e:
            return self._fork(e, note)
        except FetchError as e:
            return self._unreachable(e)
        except VerificationError as e:
            return self._invalid(note, e)
        book.condition(Alert("invalid-checkpoint", "", "checkpoint"), False)
        size, root = update.checkpoint.size, update.checkpoint.root_hash
        self.log_size = size
        start = self.auditor.size
        if size <= start:
            self.observer.trust(note)
            self.behind_since = None
            return StepResult(size, self.checked)
        if self.behind_since is None:
            self.behind_since = self.clock()
        try:
            self._check(start, size, root)
        except (FetchError, VerificationError) as e:
            self._rollback()
            kind = "unreachable" if isinstance(e, FetchError) else "garbage"
            if kind == "garbage":
                book.event(
                    Alert(
                        "log-serves-garbage",
                        f"the log's entries {start} to {size} do not match its "
                        f"signed checkpoint: {str(e)[:200]}",
                        "entries",
                        {"from": start, "to": size},
                    )
                )
            log.warning("entries %d to %d not checked: %s", start, size, e)
            return StepResult(size, self.checked, kind)
        self.grew_at = self.clock()
        self.behind_since = None
        return StepResult(size, self.checked)

    def _check(self, start: int, size: int, root: bytes) -> None:
        """Audit and check entries [start, size); confirm them against ``root``."""
        auditor = self.auditor
        auditor.recent.clear()

        def applied(examined: Examined) -> None:
            self.checks.see(examined, auditor.recent)
            auditor.recent.clear()

        # A long read is confirmed in parts as it goes: the entries so far are
        # the signed tree's first ones when a consistency proof from their own
        # root (built from the log's tiles, checked here) reaches the signed
        # root. Then they are committed and their alerts sent.
        hashes = TileHashes(self.log, size)

        def progress(done: int) -> None:
            if done < size and done - auditor.confirmed >= CONFIRM_EVERY:
                proof = hashes.consistency_proof(done, size)
                verify_consistency(done, size, auditor.hasher.root(), root, proof)
                auditor.save(confirmed=True)
                self._send_pending()

        pool = None
        if self.config.workers > 0 and size - start >= POOL_FROM:
            if self._pool is None:
                # forkserver: this process has threads (metrics, webhooks, the
                # canary), and a fork copies their locks held.
                self._pool = ExaminerPool(
                    self.config.workers, auditor.skew, method="forkserver"
                )
            pool = self._pool
        run_audit(
            self.log.entries(start, size, READ_AHEAD),
            auditor,
            progress=progress,
            pool=pool,
            on_applied=applied,
        )
        if auditor.size != size or auditor.hasher.root() != root:
            raise VerificationError(
                f"entries {start} to {size} do not hash to the checkpoint's root"
            )
        auditor.save(confirmed=True)
        self.observer.trust(self.trusted.trusted[1])  # type: ignore[index]
        self._send_pending()

    def _send_pending(self) -> None:
        """Raise the alerts of the entries just confirmed."""
        for alert in self.pending.alerts.values():
            self.book.event(alert)
        self.pending.alerts.clear()

    def _rollback(self) -> None:
        """Forget everything since the last commit; reopen from the store."""
        self._close_pool()  # its workers were told of the auditor forgotten now
        self.store.db.rollback()
        self.store.db.execute("BEGIN")
        self._open()

    def _unreachable(self, error: FetchError) -> StepResult:
        self.book.condition(
            Alert(
                "log-unreachable",
                f"the log at {self.config.log_url} cannot be read: {str(error)[:200]}",
                "log",
            ),
            True,
        )
        return StepResult(self.log_size, self.checked, "unreachable")

    def _fork(self, error: Fork, note: bytes) -> StepResult:
        evidence = error.evidence
        if evidence.get("kind") == "fork" and "consistency_proof" in evidence:
            # A proof built from the log's own tiles failed: are the tiles even
            # the presented tree's? If not, the log serves garbage, not a fork.
            try:
                presented = self.trusted.verify(note)[0]
                if TileHashes(self.log, presented.size).root() != presented.root_hash:
                    self._rollback()
                    self.book.event(
                        Alert(
                            "log-serves-garbage",
                            "the log's tiles do not rebuild its signed checkpoint",
                            "tiles",
                            {"size": presented.size},
                        )
                    )
                    return StepResult(self.log_size, self.checked, "garbage")
            except (FetchError, VerificationError):
                pass
        path = self.observer.record_evidence(evidence)
        self._rollback()
        self.book.event(
            Alert(
                "fork",
                f"the log presented a checkpoint not consistent with the one this "
                f"monitor trusts ({evidence.get('kind')}): {str(error)[:200]}",
                str(path.name),
                {"evidence": str(path), "kind": evidence.get("kind")},
            )
        )
        return StepResult(self.log_size, self.checked, "fork")

    def _invalid(self, note: bytes, error: VerificationError) -> StepResult:
        plain = TrustedLog(self.config.log_key, self.config.origin)
        try:
            plain.verify(note)
            why = "not-witnessed"  # the log signed it; the witnesses did not
        except VerificationError:
            why = "invalid"
        self._rollback()
        if why == "not-witnessed" and self.behind_since is None:
            self.behind_since = self.clock()
        if why == "invalid":
            self.book.event(
                Alert(
                    "invalid-checkpoint",
                    f"the log serves a checkpoint that does not verify: "
                    f"{str(error)[:200]}",
                    "checkpoint",
                )
            )
        return StepResult(self.log_size, self.checked, why)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def close(self) -> None:
        """Stop the workers; roll back anything uncommitted; close the store."""
        self._close_pool()
        self.store.close()
