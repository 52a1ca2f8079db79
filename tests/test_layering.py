"""Architecture rules that must hold (DESIGN.md "Dependency direction")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add((node.module or "").split(".")[0])
    return found


def test_verifier_stays_standalone():
    banned = {
        "ledger",
        "api",
        "keys",
        "audit",
        "sqlalchemy",
        "fastapi",
        "pydantic",
        "alembic",
        "psycopg",
        "domains",
    }
    assert not imports_of("verifier") & banned


def test_ledger_does_not_import_api():
    assert "api" not in imports_of("ledger")


def test_ledger_imports_no_client_nor_command():
    # The server core: no HTTP wiring, no election application, no client
    # library, no command plumbing (a log opened by a command is ``cli.local``).
    assert not imports_of("ledger") & {"api", "domains", "saksi_client", "cli"}


def test_domains_do_not_import_the_command():
    # The election's logic is used by the command (``cli``), never the reverse.
    assert "cli" not in imports_of("domains")


def test_keys_imports_only_crypto_and_verifier_formats():
    assert not imports_of("keys") & {"ledger", "api", "sqlalchemy", "audit"}


def test_client_library_needs_no_server_packages():
    assert imports_of("saksi_client") <= set(sys.stdlib_module_names) | {
        "verifier",
        "saksi_client",  # its own modules
        "__future__",
    }


def test_importing_verifier_loads_only_stdlib_and_nacl():
    code = (
        "import importlib, pkgutil, sys, verifier, saksi_client\n"
        "for m in pkgutil.walk_packages(verifier.__path__, 'verifier.'):\n"
        "    importlib.import_module(m.name)\n"
        "mods = {m.split('.')[0] for m in sys.modules}\n"
        "std = set(sys.stdlib_module_names) | {'verifier', 'nacl', '_cffi_backend',"
        " 'cffi', '_sodium', '__main__', 'sitecustomize', 'usercustomize',"
        " '_distutils_hack', 'saksi_client', '__mp_main__'}"
        " | {m for m in mods if m.startswith('__editable__')}\n"
        "print(sorted(mods - std))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"
