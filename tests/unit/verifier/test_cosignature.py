"""verify_cosigned: a validly signed, cosigned checkpoint is still pinned to its origin.

A log key may sign checkpoints of more than one log (or a test log); the
signature alone does not say which log a checkpoint is for. The origin line does.
"""

from __future__ import annotations

import nacl.signing
import pytest

from keys import Ed25519Signer
from verifier.checkpoint import Checkpoint
from verifier.cosignature import WitnessPolicy, cosign, cosigner_key, verify_cosigned
from verifier.errors import SignatureInvalid
from verifier.note import Note, format_note, parse_note, sign_note

ORIGIN = "example.com/log"
OTHER = "example.com/other-log"
LOG = Ed25519Signer(ORIGIN, bytes(range(32)))
WITNESS = nacl.signing.SigningKey(bytes(range(2, 34)))
WITNESS_NAME = "witness.example"
POLICY = WitnessPolicy((cosigner_key(WITNESS_NAME, bytes(WITNESS.verify_key)),), 1)


def _checkpoint(origin: str, witnessed: bool) -> bytes:
    text = Checkpoint(origin, 5, bytes(32)).to_text()
    note = parse_note(sign_note(text, [LOG]))
    if witnessed:
        line = cosign(text, WITNESS_NAME, WITNESS, 1_700_000_000)
        note = Note(note.text, (*note.signatures, line))
    return format_note(note)


def test_pinned_origin_verifies_with_and_without_witnesses():
    checkpoint, _, cosigned = verify_cosigned(
        _checkpoint(ORIGIN, True), LOG.verifier_key, ORIGIN, POLICY
    )
    assert checkpoint.origin == ORIGIN
    assert cosigned == {WITNESS_NAME: 1_700_000_000}
    verify_cosigned(_checkpoint(ORIGIN, False), LOG.verifier_key, ORIGIN)


def test_checkpoint_for_other_origin_rejected():
    with pytest.raises(SignatureInvalid):
        verify_cosigned(_checkpoint(OTHER, False), LOG.verifier_key, ORIGIN)


def test_cosigned_checkpoint_for_other_origin_rejected():
    # Log signature and witness quorum are both valid: only the origin is wrong.
    with pytest.raises(SignatureInvalid):
        verify_cosigned(_checkpoint(OTHER, True), LOG.verifier_key, ORIGIN, POLICY)
