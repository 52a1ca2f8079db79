"""TrustedLog: the observer's trusted checkpoint, fed bytes (no network, no files).

Every attack on an observer's view is a checkpoint the log signed: a smaller one
(rollback, or a frozen view replayed), another root for a trusted size (fork),
or a bigger one the tiles cannot connect (a rewritten history). Each must be
refused with evidence that re-checks as a proven fork with the log's key alone,
and must leave the trusted checkpoint as it was.
"""

from __future__ import annotations

import nacl.signing
import pytest

from tests import oracle
from tests.tilelog import NoteKey
from verifier.checkpoint import Checkpoint
from verifier.cosignature import WitnessPolicy, cosign, cosigner_key
from verifier.errors import SignatureInvalid, VerificationError
from verifier.note import Note, format_note, parse_note, sign_note
from verifier.trusted_log import (
    Fork,
    TrustedLog,
    check_consistent,
    check_evidence,
    proof_needed,
)

ORIGIN = "example.org/trusted-log"
LOG = NoteKey(ORIGIN, bytes(range(32)))
OTHER = NoteKey(ORIGIN, bytes(range(1, 33)))  # same name, another key
WITNESS = nacl.signing.SigningKey(bytes(range(2, 34)))
WITNESS_NAME = "witness.example"
POLICY = WitnessPolicy((cosigner_key(WITNESS_NAME, bytes(WITNESS.verify_key)),), 1)


def leaves(n: int, tag: str = "a") -> list[bytes]:
    return [oracle.leaf(f"{tag}{i}".encode()) for i in range(n)]


def note(hashes: list[bytes], key: NoteKey = LOG, witnessed: bool = False) -> bytes:
    text = Checkpoint(ORIGIN, len(hashes), oracle.mth(hashes)).to_text()
    signed = parse_note(sign_note(text, [key]))
    if witnessed:
        line = cosign(text, WITNESS_NAME, WITNESS, 1_700_000_000)
        signed = Note(signed.text, (*signed.signatures, line))
    return format_note(signed)


def trusting(hashes: list[bytes], policy: WitnessPolicy | None = None) -> TrustedLog:
    trusted = TrustedLog(LOG.verifier_key, ORIGIN, policy)
    trusted.load(note(hashes))
    return trusted


def test_first_use_trusts_the_verified_checkpoint():
    trusted = TrustedLog(LOG.verifier_key, ORIGIN)
    assert trusted.trusted is None
    assert trusted.needs_proof(note(leaves(5))) is None
    update = trusted.update(note(leaves(5)))
    assert update.first_use
    assert update.changed
    assert update.before is None
    assert update.proof == ()
    assert update.checkpoint.size == 5
    assert trusted.trusted == (update.checkpoint, note(leaves(5)))


def test_growth_with_a_consistency_proof_is_trusted():
    history = leaves(13)
    trusted = trusting(history[:6])
    assert trusted.needs_proof(note(history)) == (6, 13)
    update = trusted.update(note(history), oracle.proof(6, history))
    assert not update.first_use
    assert update.changed
    assert update.before is not None
    assert update.before.size == 6
    assert update.proof == tuple(oracle.proof(6, history))
    assert trusted.trusted is not None
    assert trusted.trusted[0].size == 13


def test_the_same_checkpoint_again_changes_nothing():
    trusted = trusting(leaves(7))
    assert trusted.needs_proof(note(leaves(7))) is None
    update = trusted.update(note(leaves(7)))
    assert not update.changed
    assert update.proof == ()


def test_growth_from_the_empty_tree_needs_no_proof():
    trusted = trusting([])
    assert trusted.needs_proof(note(leaves(4))) is None
    assert trusted.update(note(leaves(4))).checkpoint.size == 4


def _refused(trusted: TrustedLog, presented: bytes, proof: list[bytes]) -> Fork:
    before = trusted.trusted
    with pytest.raises(Fork) as caught:
        trusted.update(presented, proof)
    assert trusted.trusted == before  # a refused checkpoint changes nothing
    proven, _ = check_evidence(caught.value.evidence, LOG.verifier_key, ORIGIN)
    assert proven
    return caught.value


def test_rollback_refused_with_evidence():
    history = leaves(20)
    trusted = trusting(history)
    with pytest.raises(Fork, match="rollback"):
        trusted.needs_proof(note(history[:12]))
    fork = _refused(trusted, note(history[:12]), [])
    assert fork.evidence["kind"] == "rollback"


def test_frozen_view_replayed_after_growth_refused():
    history = leaves(30)
    trusted = trusting(history[:10])
    trusted.update(note(history), oracle.proof(10, history))
    fork = _refused(trusted, note(history[:10]), [])
    assert fork.evidence["kind"] == "rollback"


def test_fork_same_size_different_root():
    trusted = trusting(leaves(9))
    with pytest.raises(Fork, match="two roots"):
        trusted.needs_proof(note(leaves(9, "b")))
    fork = _refused(trusted, note(leaves(9, "b")), [])
    assert fork.evidence["kind"] == "fork"


def test_rewritten_history_refused_even_with_its_own_proof():
    # (13 is no power of two: the proof then carries a root for size 13 that
    # the evidence shows differs from the signed one.)
    history = leaves(13)
    rewritten = [*history[:3], oracle.leaf(b"changed"), *history[4:], *leaves(5, "c")]
    trusted = trusting(history)
    assert trusted.needs_proof(note(rewritten)) == (13, 18)
    fork = _refused(trusted, note(rewritten), oracle.proof(13, rewritten))
    assert fork.evidence["kind"] == "fork"
    assert fork.evidence["consistency_proof"]


def test_bit_flipped_proof_refused():
    history = leaves(11)
    proof = oracle.proof(5, history)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    trusted = trusting(history[:5])
    with pytest.raises(Fork):
        trusted.update(note(history), proof)
    assert trusted.trusted is not None
    assert trusted.trusted[0].size == 5


def test_missing_proof_refused():
    history = leaves(11)
    trusted = trusting(history[:5])
    with pytest.raises(Fork):
        trusted.update(note(history), [])


def test_checkpoint_by_another_key_refused():
    trusted = trusting(leaves(3))
    with pytest.raises(SignatureInvalid):
        trusted.update(note(leaves(4), OTHER))
    with pytest.raises(SignatureInvalid):
        trusted.needs_proof(note(leaves(4), OTHER))
    assert trusted.trusted is not None
    assert trusted.trusted[0].size == 3


def test_damaged_trusted_state_refused():
    trusted = TrustedLog(LOG.verifier_key, ORIGIN)
    with pytest.raises(VerificationError):
        trusted.load(note(leaves(3), OTHER))
    with pytest.raises(VerificationError):
        trusted.load(note(leaves(3)).replace(b"\n3\n", b"\n4\n"))
    assert trusted.trusted is None


def test_witness_policy_applies_to_new_checkpoints_only():
    history = leaves(8)
    # The trusted note was cosigned when it was trusted; reloading it checks
    # only the log's signature.
    trusted = trusting(history[:4], POLICY)
    with pytest.raises(VerificationError):
        trusted.update(note(history), oracle.proof(4, history))
    update = trusted.update(note(history, witnessed=True), oracle.proof(4, history))
    assert update.cosigned == {WITNESS_NAME: 1_700_000_000}


def test_two_checkpoints_compared_without_state():
    history = leaves(40)
    verifier = TrustedLog(LOG.verifier_key, ORIGIN)
    small = (verifier.verify(note(history[:17]))[0], note(history[:17]))
    big = (verifier.verify(note(history))[0], note(history))
    assert proof_needed(small, big)
    check_consistent(small, big, oracle.proof(17, history))
    assert not proof_needed(big, big)
    with pytest.raises(Fork):
        proof_needed(big, small)
