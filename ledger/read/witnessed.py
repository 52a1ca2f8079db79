"""The witnessed checkpoint kept in the database, served once it is proven.

One process asks the witnesses: the writer, or in a cluster the sequencer of
the moment (``ledger.cosigning``). It stores each checkpoint that came back
cosigned (``witnessed_checkpoint``, one row). Every other process that serves
the log (the cluster's other members, read-only servers on a replica) reads
that row and serves it as ``/log/checkpoint`` only once it has proven it:

* the log's own signature verifies with the log's key, for the log's origin;
* every line by a pinned witness verifies (one that does not rejects the
  note); lines by keys it does not pin are dropped. A read-only server pins no
  witnesses and passes their lines on as stored: every observer checks them
  against its own policy, and the log's signature and tree are still proven;
* its tree is the signed tree this process serves, or a prefix of it: the same
  root at the same size, else a consistency proof from the stored tiles that
  verifies against the signed root.

A note that fails a check is never served: the last proven one stays, and the
failure is logged once per note. A note smaller than the one served is never
served either, so what readers saw does not go back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from ledger.health import WitnessHealth
from ledger.read.tree import SignedTree
from verifier.cosignature import WitnessPolicy, verify_cosigned
from verifier.errors import VerificationError
from verifier.note import Note, VerifierKey, format_note
from verifier.proof_check import verify_consistency

__all__ = ["StoredWitnessed"]

log = logging.getLogger("saksi.witnessed")


class StoredWitnessed:
    """The stored witnessed checkpoint, as far as this process has proven it.

    ``read`` gives the stored (size, note) or None; ``tree`` the signed tree
    this process serves; ``consistency_proof(old, new)`` a proof between two
    sizes of it, from the stored tiles.
    """

    def __init__(
        self,
        read: Callable[[], tuple[int, bytes] | None],
        tree: Callable[[], SignedTree],
        consistency_proof: Callable[[int, int], list[bytes]],
        log_key: VerifierKey,
        origin: str,
        witnesses: Sequence[VerifierKey] = (),
    ) -> None:
        self._read = read
        self._tree = tree
        self._consistency_proof = consistency_proof
        self._log_key = log_key
        self._origin = origin
        self._witnesses = tuple(witnesses)
        self._lock = threading.Lock()
        self._note: bytes | None = None
        self._size = 0
        self._times: dict[str, int] = {}  # witness name -> its cosignature's time
        self._seen: bytes | None = None  # the stored note last decided on

    def published(self) -> bytes | None:
        """The latest proven witnessed checkpoint (no database read)."""
        return self._note

    def health(self) -> tuple[WitnessHealth, ...]:
        """Each pinned witness as the served note shows it.

        Its cosignature's own time is when it last cosigned; the counters
        belong to the process that asks the witnesses, and are 0 here.
        """
        times, size = self._times, self._size
        return tuple(
            WitnessHealth(
                key.name,
                size if key.name in times else 0,
                0,
                0,
                float(times[key.name]) if key.name in times else None,
            )
            for key in self._witnesses
        )

    def refresh(self) -> None:
        """Read the stored note, and serve it if it proves newer or fresher.

        Raises:
            StorageUnavailable: the database cannot be read.
            IntegrityFailure: the signed tree failed its checks.
        """
        stored = self._read()
        if stored is None or stored[1] == self._seen:
            return
        tree = self._tree()
        if stored[0] > tree.size:
            return  # cosigned beyond what this process has looked at: later
        with self._lock:
            self._seen = stored[1]
            try:
                note, size, times = self._proven(stored[1], tree)
            except VerificationError as e:
                log.error(
                    "the stored witnessed checkpoint is not served: %s (it was "
                    "edited in the database, or not signed by this log)",
                    e,
                )
                return
            if size < self._size or (size == self._size and note == self._note):
                return
            self._note, self._size, self._times = note, size, times

    def _proven(
        self, data: bytes, tree: SignedTree
    ) -> tuple[bytes, int, dict[str, int]]:
        checkpoint, parsed, times = verify_cosigned(
            data, self._log_key, self._origin, WitnessPolicy(self._witnesses, 0)
        )
        size, root = checkpoint.size, checkpoint.root_hash
        if not 0 < size <= tree.size:  # the row's size column said otherwise
            raise VerificationError(
                f"it is of size {size}, not within the signed tree's {tree.size}"
            )
        proof = self._consistency_proof(size, tree.size) if size < tree.size else []
        verify_consistency(size, tree.size, root, tree.head.root, proof)
        if self._witnesses:
            pinned = {(k.name, k.key_id) for k in (self._log_key, *self._witnesses)}
            kept = tuple(s for s in parsed.signatures if (s.name, s.key_id) in pinned)
            data = format_note(Note(parsed.text, kept))
        return data, size, times
