"""``saksi`` (the script) and ``python -m cli``: launch the operator's command.

``pip install saksi`` without the ``server`` extra installs the ``saksi``
script too, beside ``saksi-verify``. This launcher imports nothing but the
standard library before the command does, so that there it says what to
install (exit 2, usage) instead of crashing. It names only the server's
packages: a module of ours that cannot be imported is a broken install, and
its traceback is shown.
"""

from __future__ import annotations

import sys

__all__ = ["SERVER_PACKAGES", "main"]

# What the ``server`` extra installs, and what those import at the top level,
# by import name (``pip install 'saksi[server]'`` brings them all).
SERVER_PACKAGES = frozenset(
    {
        "alembic",
        "anyio",
        "cryptography",
        "fastapi",
        "h11",
        "pkcs11",
        "psycopg",
        "psycopg_binary",
        "pydantic",
        "pydantic_core",
        "sqlalchemy",
        "starlette",
        "uvicorn",
    }
)


def main(argv: list[str] | None = None) -> int:
    """Run ``saksi`` (``cli.main.main``); without the server packages, say so.

    Raises:
        ImportError: a module that is not a server package is missing.
    """
    try:
        from cli.main import main as run

        return run(argv)
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing not in SERVER_PACKAGES:
            raise
        print(
            f"saksi: error: the operator commands need the server packages, and "
            f"{missing} cannot be imported ({e})\n"
            "saksi: hint: pip install 'saksi[server]'; saksi-verify, the "
            "observer's command, works without them",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
