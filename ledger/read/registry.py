"""The key registry and the election's registries, replayed from the log itself.

Which keys may sign what, and the region registry and candidate lists, are
records in the log. They are never read from anywhere else: ``replay_registry``
replays them in log order, each entry proven against the signed tree first.
``RegistryReader`` keeps replayed copies for the read routes (the keys as of any
size; the election's regions as of the latest signed tree).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.read.reader import LogReader
from ledger.read.tree import Prover
from ledger.storage.base import LogStore, RecordIndexStore
from verifier.errors import VerificationError
from verifier.record import parse_log_entry, parse_record
from verifier.registry import REGISTRY_SCHEMAS, KeyRegistry
from verifier.rules.state import STATE_SCHEMAS, ElectionState

__all__ = ["RegistryReader", "keys_listing", "replay_registry"]

_REPLAY_BATCH = 1000  # entries read a query (one query each was most of a start-up)


def replay_registry(
    storage: LogStore,
    registry: KeyRegistry,
    start: int,
    end: int | None,
    election: ElectionState | None = None,
    *,
    index: RecordIndexStore,
    prove: Prover,
) -> None:
    """Admit into ``registry`` the registry records logged in [start, end).

    With ``election``, also apply the region registry and candidate and party
    lists logged there, in log order. Each entry is proven by ``prove`` against
    the signed tree before it is read; which entries are registry records comes
    from the record ``index``, which the writer's seal covers.

    Raises:
        IntegrityFailure: a stored registry record is not the one the signed
            tree holds, or no longer replays.
    """
    schemas = list(REGISTRY_SCHEMAS)
    if election is not None:
        schemas += sorted(STATE_SCHEMAS)
    wanted = index.record_indices(schemas, start, end)
    for first in range(0, len(wanted), _REPLAY_BATCH):
        chunk = wanted[first : first + _REPLAY_BATCH]
        stored = {row.index: row.data for row in storage.read_entries_at(chunk)}
        for position in chunk:
            data = stored.get(position)
            if data is not None:
                prove(position, data)
            _replay_one(registry, election, position, data)


def _replay_one(
    registry: KeyRegistry,
    election: ElectionState | None,
    index: int,
    data: bytes | None,
) -> None:
    try:
        if data is None:
            raise IndexError("the entry is missing")
        entry = parse_log_entry(data)
        record = parse_record(entry.envelope.payload)
        if record.schema in REGISTRY_SCHEMAS:
            signers = tuple(s.keyid for s in entry.envelope.signatures)
            registry.admit(
                record,
                REGISTRY_SCHEMAS[record.schema],
                signers,
                index,
                entry.logged_at,
            )
        elif election is not None:
            election.apply(record)
    except (VerificationError, IndexError) as e:
        raise IntegrityFailure(
            f"registry record at entry {index} does not replay: {e}"
        ) from e


class RegistryReader:
    """The key registry as of any size, and the election's registries now.

    ``live``, in the writer's process, is the gate's own election state (the
    same records, replayed once at start and kept current by every commit);
    without it (a read-only process) the election state is replayed here and
    brought up to the latest signed tree before each read.
    """

    def __init__(
        self,
        reader: LogReader,
        index: RecordIndexStore,
        live: Callable[[], ElectionState] | None = None,
    ) -> None:
        self._reader = reader
        self._index = index
        self._live = live
        self._lock = threading.Lock()
        self._keys: tuple[int, KeyRegistry] | None = None
        self._election: tuple[int, KeyRegistry, ElectionState] | None = None
        # The registries ``live`` brings forward in place, once made.
        self._objects: tuple[KeyRegistry, ElectionState] | None = None
        self._replayed = 0  # the tree size they were last brought to

    def registry_at(self, size: int) -> KeyRegistry:
        """The key registry as it stood after the first ``size`` entries.

        Replays the registry records of the log, starting from the last
        registry built here when that is not newer (a copy of it, so a result
        handed out is never changed afterwards).

        Raises:
            OutOfRange: ``size`` is beyond the log.
            IntegrityFailure: a stored registry record no longer replays.
        """
        tree = self._reader.tree()
        if not 0 <= size <= tree.size:
            raise OutOfRange(f"size {size} is beyond the log size {tree.size}")
        with self._lock:
            cached = self._keys
        if cached is not None and cached[0] <= size:
            start, registry = cached[0], cached[1].copy()
        else:
            start, registry = 0, KeyRegistry()
        replay_registry(
            self._reader.store,
            registry,
            start,
            size,
            index=self._index,
            prove=self._reader.prover(tree),
        )
        with self._lock:
            if self._keys is None or self._keys[0] <= size:
                self._keys = (size, registry.copy())
        return registry

    def election(self) -> ElectionState:
        """The region registry and candidate lists as of the latest signed tree.

        Raises:
            IntegrityFailure: a stored registry record no longer replays.
        """
        if self._live is not None:
            return self._live()
        return self.live()[1]

    def live(self) -> tuple[KeyRegistry, ElectionState]:
        """The key registry and the election state as of the latest signed tree.

        Both are kept here and brought forward in place as the log grows (not
        copies): for a process without a writer of its own.

        Raises:
            IntegrityFailure: a stored registry record no longer replays.
        """
        tree = self._reader.tree()
        with self._lock:
            known = self._election
            if known is None:
                known = (0, KeyRegistry(), ElectionState())
            start, keys, state = known
            if start < tree.size:
                # Applied in place, under the lock: the state only moves forward
                # with the log, so a read that holds it sees a later tree's
                # registries at worst, never an undone one.
                self._election = None  # until the replay is whole
                replay_registry(
                    self._reader.store,
                    keys,
                    start,
                    tree.size,
                    state,
                    index=self._index,
                    prove=self._reader.prover(tree),
                )
                self._election = (tree.size, keys, state)
            self._objects, self._replayed = (keys, state), tree.size
            return keys, state

    def snapshot(self) -> tuple[KeyRegistry, ElectionState, int] | None:
        """The registries as ``live`` last brought them forward, without waiting.

        No database read and no lock: ``(keys, state, size)``, ``size`` the
        tree size they were brought to (``live`` brings them further). A
        replay under way in another thread may have applied part of the next
        entries already: the registries only move forward with the log, so a
        read sees a later tree's at worst. None before the first ``live``.
        """
        objects = self._objects
        if objects is None:
            return None
        return (*objects, self._replayed)


def keys_listing(registry: KeyRegistry, tree_size: int) -> dict[str, Any]:
    """The key registry as of ``tree_size``, as ``/v1/keys`` lists it.

    The same listing for the HTTP API and for a log opened in this process
    (``LocalLog``), frozen by ``tests/golden``.
    """
    threshold = registry.genesis.policy.threshold if registry.genesis else 0
    return {
        "tree_size": tree_size,
        "threshold": threshold,
        "keys": [
            {
                "keyid": g.keyid,
                "public_key": base64.b64encode(g.public_key).decode(),
                "role": g.role,
                "scope": g.scope,
                "holder": g.holder,
                "granted_at": g.granted_at,
                "expires_at": g.expires_at,
                "revoked_at": g.revoked_at,
            }
            for g in sorted(registry.grants.values(), key=lambda g: g.granted_at)
        ],
    }
