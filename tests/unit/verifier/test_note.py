"""Signed notes: a signature line counts only for the key its name *and* key ID name.

A verifier key is identified by (name, 4-byte key ID). Two keys may share a name
(a rotated log key, or an impostor); the key ID tells them apart, so a line is
checked only by the key whose name and ID it carries.
"""

from __future__ import annotations

import pytest

from keys import Ed25519Signer
from verifier.errors import SignatureInvalid
from verifier.note import (
    Note,
    NoteSignature,
    format_note,
    parse_note,
    sign_note,
    verify_note,
)

NAME = "example.com/log"
TEXT = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
REAL = Ed25519Signer(NAME, bytes(range(32)))
SAME_NAME = Ed25519Signer(NAME, bytes(range(1, 33)))  # another key, same name


def _with_lines(*lines: NoteSignature) -> bytes:
    return format_note(Note(TEXT, lines))


def _line(signer: Ed25519Signer) -> NoteSignature:
    return parse_note(sign_note(TEXT, [signer])).signatures[0]


def test_keys_with_one_name_have_different_key_ids():
    assert REAL.name == SAME_NAME.name
    assert REAL.key_id != SAME_NAME.key_id


def test_signature_line_with_right_name_wrong_key_id_does_not_verify():
    # The real key's valid signature, filed under another key ID: not a line by
    # the real key, so the note has no signature by any key the caller named.
    real = _line(REAL)
    other_id = bytes(b ^ 0xFF for b in real.key_id)
    data = _with_lines(NoteSignature(NAME, other_id, real.signature))
    with pytest.raises(SignatureInvalid):
        verify_note(data, [REAL.verifier_key])


@pytest.mark.parametrize("impostor_first", [True, False])
def test_same_name_other_key_id_line_is_ignored_not_rejected(impostor_first):
    # Another key under the same name signed too; its line names a key ID the
    # caller did not pin, so it is ignored and the real key's line verifies.
    real, impostor = _line(REAL), _line(SAME_NAME)
    lines = (impostor, real) if impostor_first else (real, impostor)
    note, verified = verify_note(_with_lines(*lines), [REAL.verifier_key])
    assert verified == [REAL.verifier_key]
    assert note.text == TEXT


def test_same_name_other_key_id_alone_does_not_verify():
    with pytest.raises(SignatureInvalid):
        verify_note(_with_lines(_line(SAME_NAME)), [REAL.verifier_key])
