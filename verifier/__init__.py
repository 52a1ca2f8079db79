"""Saksi's public verifier: checks the log without trusting its operator.

Standalone by design: it imports only the standard library and PyNaCl, so observers
can install it alone (``pip install saksi``). Wire formats are defined here, once,
and the server imports them.

Recipes (safe defaults) are re-exported here; ``verifier.proof_check``,
``verifier.note`` and ``verifier.tile_format`` are documented primitives for those
who know which root and which key they trust.
"""

from __future__ import annotations

from verifier.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from verifier.errors import (
    Inconsistent,
    MalformedInput,
    ProofInvalid,
    SignatureInvalid,
    VerificationError,
)
from verifier.note import VerifierKey
from verifier.proof_check import verify_consistency, verify_inclusion

__all__ = [
    "Checkpoint",
    "Inconsistent",
    "MalformedInput",
    "ProofInvalid",
    "SignatureInvalid",
    "VerificationError",
    "VerifierKey",
    "parse_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]

__version__ = "0.1.0"
