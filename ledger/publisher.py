r"""CheckpointPublisher: tree head -> C2SP checkpoint body -> signed note.

The body is exactly ``origin\\nsize\\nbase64(root)\\n`` (no time, no extension lines:
an idle log's note does not change). Formatting comes from ``verifier.checkpoint``
so server and verifier share one encoding; the key stays behind the signer.
"""

from __future__ import annotations

from verifier.checkpoint import Checkpoint
from verifier.note import NoteSigner, VerifierKey, sign_note

__all__ = ["CheckpointPublisher"]


class CheckpointPublisher:
    """Signs checkpoints for one origin with one log key."""

    def __init__(
        self, origin: str, signer: NoteSigner, verifier_key: VerifierKey
    ) -> None:
        self.origin = origin
        self._signer = signer
        self.verifier_key = verifier_key

    @property
    def signer(self) -> NoteSigner:
        """The log key's signer (the writer derives its seal key from it)."""
        return self._signer

    def sign(self, size: int, root: bytes) -> bytes:
        """Return the signed note for a tree of ``size`` with ``root``."""
        body = Checkpoint(self.origin, size, root).to_text()
        return sign_note(body, [self._signer])
