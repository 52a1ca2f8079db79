"""``python -m api``: the older way to launch ``saksi`` (``cli.__main__``).

Kept for the scripts and installs that name it; it imports nothing but the
launcher, which says what to install when the server packages are missing.
"""

from __future__ import annotations

from cli.__main__ import SERVER_PACKAGES, main

__all__ = ["SERVER_PACKAGES", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
