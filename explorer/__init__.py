"""The public results explorer: a static web application that proves what it shows.

Everything it runs is under ``static/`` (plain ES modules, no build step):
``static/js/verify/`` is the page's verifier, the browser's twin of
``verifier/`` (RFC 6962/9162 proofs, C2SP signed notes, checkpoints and
cosignatures, tlog-tiles paths), with SHA-256 and Ed25519 from the browser's
WebCrypto. It is tested in Node against the same published vectors as the
Python verifier (``tests/explorer/``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
