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


def test_the_monitor_reads_the_log_as_an_observer_does():
    # The public API through the verifier's code and the client; never the
    # operator's database, the server's code or the HTTP API's internals.
    assert not imports_of("monitor") & {
        "ledger",
        "api",
        "sqlalchemy",
        "psycopg",
        "fastapi",
        "results",
        "domains",
    }


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


# -- the import graph of the product's modules ---------------------------------

PRODUCT = ("verifier", "ledger", "keys", "api", "audit", "domains", "results", "cli")
PRODUCT += ("saksi_client", "monitor")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports (anywhere in it, typing too)."""
    modules = {
        _module_of(path): path
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                # The longest product module the import names.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in graph[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def test_no_import_cycles_anywhere():
    graph = _graph()
    # The graph sees imports of every form: plain, from-module, relative.
    assert "ledger.startup" in graph["ledger.sequencer"]
    assert "verifier.rules.chain" in graph["verifier.rules"]
    assert "ledger.read.reader" in graph["ledger.read.entries"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]


def test_ledger_stays_below_the_api_the_domains_the_client_and_the_results():
    graph = _graph()
    above = ("api", "domains", "saksi_client", "cli", "results", "audit")
    for module, edges in graph.items():
        if module.split(".")[0] == "ledger":
            assert not {e for e in edges if e.split(".")[0] in above}, module


def test_the_reader_needs_neither_the_writer_nor_the_signing_code():
    graph = _graph()
    writer = {
        "ledger.sequencer",
        "ledger.ledger",
        "ledger.publisher",
        "ledger.seal",
        "ledger.startup",
        "ledger.admission",
        "ledger.writer",
        "ledger.recordlog",
        "ledger.cosigning",
        "ledger.storage.writes",
    }
    for module in graph:
        if module.startswith("ledger.read"):
            reached = _reach(graph, module)
            assert not reached & writer, (module, reached & writer)
            assert not {m for m in reached if m.split(".")[0] == "keys"}, module


def test_the_results_read_only_through_the_read_side():
    graph = _graph()
    for module in graph:
        if module.split(".")[0] == "results":
            reached = {m for m in _reach(graph, module) if m.startswith("ledger")}
            assert all(
                m.startswith(("ledger.read", "ledger.storage", "ledger.tree"))
                or m in {"ledger.errors", "ledger.integrate", "ledger.trusted"}
                for m in reached
            ), (module, reached)
