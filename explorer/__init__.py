"""The public results explorer: a static web application that proves what it shows.

Everything it runs is under ``static/`` (plain ES modules, no build step):
``static/js/verify/`` is the page's verifier, the browser's twin of
``verifier/`` (RFC 6962/9162 proofs, C2SP signed notes, checkpoints and
cosignatures, tlog-tiles paths), with SHA-256 and Ed25519 from the browser's
WebCrypto. It is tested in Node against the same published vectors as the
Python verifier (``tests/explorer/``).

Beside the files, the page reads one document made per log, ``trust.json``:
what it pins (the log's origin and key, the witnesses' cosigner keys and how
many must have cosigned). ``saksi serve`` answers it at
``/explorer/trust.json``; ``saksi publish --explorer PATH`` writes it with the
files, for any web server or CDN (``write_site``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from verifier.cosignature import WitnessPolicy
from verifier.errors import MalformedInput
from verifier.note import VerifierKey

__all__ = [
    "STATIC",
    "TRUST",
    "site_files",
    "trust_document",
    "trust_policy",
    "write_site",
]

STATIC = Path(__file__).resolve().parent / "static"
TRUST = "trust.json"


def trust_policy(
    witnesses: Sequence[VerifierKey], quorum: int | None = None
) -> WitnessPolicy:
    """The witness policy the page pins (quorum: one, when any is pinned).

    Raises:
        ValueError: a key that is not a cosigner's, or a quorum out of range
            (the verifier's ``WitnessPolicy`` decides both).
    """
    need = min(1, len(witnesses)) if quorum is None else quorum
    try:
        return WitnessPolicy(tuple(witnesses), need)
    except MalformedInput as e:
        raise ValueError(str(e)) from e


def trust_document(
    origin: str,
    log_key: VerifierKey,
    witnesses: Sequence[VerifierKey] = (),
    quorum: int | None = None,
) -> dict[str, object]:
    """``trust.json``: the log's origin and key, the witness policy.

    Raises:
        ValueError: see ``trust_policy``.
    """
    policy = trust_policy(witnesses, quorum)
    return {
        "origin": origin,
        "log_key": str(log_key),
        "witnesses": [str(key) for key in policy.witnesses],
        "quorum": policy.quorum,
    }


def site_files(trust: dict[str, object]) -> dict[str, bytes]:
    """Every file of the published page by its path: the package's, and trust.json."""
    files = {
        path.relative_to(STATIC).as_posix(): path.read_bytes()
        for path in sorted(STATIC.rglob("*"))
        if path.is_file()
    }
    files[TRUST] = (json.dumps(trust, indent=1, sort_keys=True) + "\n").encode()
    return files


def write_site(out: Path, trust: dict[str, object]) -> list[str]:
    """Write the page and ``trust`` into ``out``; the paths that changed.

    A file already holding the same bytes is left alone (its time too, so a
    CDN's copy stays valid); any other is replaced atomically (a temporary
    file beside it, flushed, then renamed), so a visitor never loads half a
    module. Files, 0644; directories, 0755: a web server running as another
    user reads them. Nothing else in ``out`` is touched.

    Raises:
        OSError: ``out`` or a file in it cannot be written.
    """
    changed = []
    _directories(out.parent, out)
    for name, data in site_files(trust).items():
        target = out / name
        try:
            if target.read_bytes() == data:
                continue
        except FileNotFoundError:
            pass
        _directories(out, target.parent)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        changed.append(name)
    return changed


def _directories(top: Path, path: Path) -> None:
    """Make ``path`` and its parents below ``top``, each 0755 (whatever the umask)."""
    if path == top or path.is_dir():
        return
    _directories(top, path.parent)
    path.mkdir()
    path.chmod(0o755)
