"""A running log's health, as readiness checks and metrics read it.

``RecordLog.health()``, ``ReadOnlyLog.health()`` and ``ClusterLog.health()``
take one snapshot of what the process knows: the signed head it serves, the
checkpoint it publishes, the writer's queue, whether writes are stopped, each
witness's state, and the connection pool. The writer's process knows its head
without a database round trip; a read-only process looks at the stored head
at most once per refresh interval (so that a server asked for nothing but its
readiness still judges the head the database holds now); a cluster member
looks every second in the background. ``ready`` decides readiness from a
snapshot, as a load balancer wants it decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LogHealth", "WitnessHealth", "ready"]


@dataclass(frozen=True, slots=True)
class WitnessHealth:
    """One witness as the metrics see it.

    Attributes:
        name: the witness's key name (from the operator's configuration).
        cosigned_size: the size it last cosigned, as far as the log knows.
        cosignatures: cosignatures received and verified since start.
        failures: rounds it did not cosign (down, refusing, invalid answer).
        last_cosigned_at: when its last verified cosignature came (Unix
            seconds), None before the first.
    """

    name: str
    cosigned_size: int
    cosignatures: int
    failures: int
    last_cosigned_at: float | None


@dataclass(frozen=True, slots=True)
class LogHealth:
    """One snapshot of a served log.

    Attributes:
        integrated_size: the size of the latest signed tree (every entry in it
            is committed and integrated).
        signed_at: when that tree's checkpoint was last signed or refreshed
            (Unix seconds).
        published_size: the size of the checkpoint ``/log/checkpoint`` serves
            (the witnessed one where witnesses are configured).
        queue_depth: submissions waiting for the writer (0 without a writer).
        stopped: why the log stopped (writes, or a read-only server's head),
            or None.
        witnesses: each configured witness (empty without witnesses).
        pool: the database connection pool (``size``, ``in_use``, ``idle``,
            ``overflow``).
        database_errors: database errors since start, by operation.
        writer: True in the writer's process, False in a read-only one.
        now: when the snapshot was taken, by the log's own clock (Unix
            seconds): ages are measured against it.
    """

    integrated_size: int
    signed_at: float
    published_size: int
    queue_depth: int
    stopped: str | None
    witnesses: tuple[WitnessHealth, ...] = ()
    pool: dict[str, int] = field(default_factory=dict)
    database_errors: dict[str, int] = field(default_factory=dict)
    writer: bool = True
    now: float = 0.0


def ready(health: LogHealth, max_age: float) -> list[str]:
    """Why the log is not ready (as of ``health.now``); empty when it is.

    Ready means: not stopped, a checkpoint signed within ``max_age`` seconds
    and, with witnesses configured, a cosignature from one of them within
    ``max_age`` too.
    """
    now = health.now
    reasons = []
    if health.stopped is not None:
        reasons.append(f"stopped: {health.stopped}")
    age = now - health.signed_at
    if age > max_age:
        reasons.append(
            f"the last checkpoint was signed {age:.0f} s ago (limit {max_age:g} s)"
        )
    if health.witnesses:
        times = [w.last_cosigned_at for w in health.witnesses if w.last_cosigned_at]
        if not times:
            reasons.append("no witness has cosigned a checkpoint yet")
        elif now - max(times) > max_age:
            reasons.append(
                f"the last cosignature came {now - max(times):.0f} s ago "
                f"(limit {max_age:g} s)"
            )
    return reasons
