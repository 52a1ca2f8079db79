"""Key errors. Messages never include key material or passphrases."""

from __future__ import annotations

__all__ = ["KeyLoadError"]


class KeyLoadError(Exception):
    """A key file is missing, malformed, or does not decrypt with the passphrase."""
