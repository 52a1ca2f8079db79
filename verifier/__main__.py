"""``python -m verifier``: the same as ``saksi-verify``."""

from __future__ import annotations

from verifier.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
