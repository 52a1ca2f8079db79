"""Typed verification errors.

Everything the verifier rejects is a ``VerificationError``: callers that only need
"trusted or not" catch that one class. The subclasses say why, so a CLI can print a
useful diagnostic and a test can assert the exact cause. Messages say what was
expected and what was found; they never carry key material.
"""

from __future__ import annotations

__all__ = [
    "Inconsistent",
    "MalformedInput",
    "ProofInvalid",
    "SignatureInvalid",
    "VerificationError",
]


class VerificationError(Exception):
    """Anything the verifier refuses to accept (possibly an attack).

    Attributes:
        cause: a stable slug naming why (``invalid-base64``, ``bad-signature``...):
            what scripts and the HTTP API's problem types key on.
    """

    cause = "verification-failed"

    def __init__(self, message: str = "", *, cause: str | None = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause


class MalformedInput(VerificationError):
    """Bad encoding: wrong line count, non-canonical base64, oversize, trailing data."""

    cause = "malformed-input"


class SignatureInvalid(VerificationError):
    """No valid signature from the pinned key, or a known key's signature fails."""

    cause = "bad-signature"


class ProofInvalid(VerificationError):
    """A proof does not lead to the claimed root, or its claims are impossible.

    Attributes:
        expected: the root the caller trusted (hex), if known.
        calculated: the root the proof leads to (hex), if it got that far.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        calculated: str | None = None,
    ) -> None:
        super().__init__(message, cause="proof-invalid")
        self.expected = expected
        self.calculated = calculated


class Inconsistent(VerificationError):
    """A tree went backwards, or the same size shows two different roots (a fork)."""

    cause = "inconsistent"
