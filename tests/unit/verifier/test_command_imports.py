"""The observer's commands do not load the witness server.

``saksi-verify checkpoint`` is the trusted computing base of everyone who does
not trust the operator: it must not carry the code that *serves* cosignatures
(an HTTP server and the witness's state). Each check runs in a fresh
interpreter, so nothing an earlier test imported can hide an import.
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

SERVER = ("verifier.witness_server", "http.server")


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split())


def test_checkpoint_command_does_not_import_the_witness_server():
    loaded = _loaded_after("import verifier.commands.checkpoint")
    assert "verifier.commands.checkpoint" in loaded
    assert not loaded & set(SERVER)


def test_running_saksi_verify_checkpoint_does_not_import_the_witness_server():
    loaded = _loaded_after(
        "from verifier.commands import build_parser\n"
        "args = build_parser().parse_args(['checkpoint', '--log', 'x', '--key', 'k'])\n"
        "assert args.func.__module__ == 'verifier.commands.checkpoint'"
    )
    assert not loaded & set(SERVER)


def test_the_witness_command_loads_it_when_it_runs():  # the probe can see it
    loaded = _loaded_after(
        "from verifier.commands import main\n"
        "argv = ['witness', '--key-file', '/nonexistent/witness.key',"
        " '--log-key', 'k', '--listen', '127.0.0.1:0']\n"
        "assert main(argv) == 3"
    )
    assert "verifier.witness_server" in loaded
