"""``pip install saksi`` without the ``server`` extra: ``saksi`` says what is missing.

The base install (PyNaCl only, for observers) puts a ``saksi`` script on the
PATH too. Run there, every operator command says to install ``saksi[server]``
and exits 2 (usage) instead of a traceback; ``saksi-verify`` works. The clean
environment is ``test_clean_install``'s fixture (one install for this module).

The launcher (``cli.__main__``) names only the server's packages: a module of
ours that cannot be imported is a broken install and shows its traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, cli_env
from tests.integration.test_clean_install import clean, run

# ``clean``: test_clean_install's fixture (a fresh virtual environment with only
# ``saksi`` installed), imported so that pytest finds it here.
__all__ = ["clean"]

HINT = "pip install 'saksi[server]'"


def _no_traceback_but_the_hint(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("saksi: error: the operator commands need"), out.stderr
    assert f"saksi: hint: {HINT}" in out.stderr, out.stderr
    assert out.stdout == ""


def test_saksi_help_says_to_install_the_server_extra(clean, tmp_path):
    saksi = str(clean / "bin" / "saksi")
    _no_traceback_but_the_hint(run(saksi, "--help", cwd=tmp_path))
    python = str(clean / "bin" / "python")
    _no_traceback_but_the_hint(run(python, "-m", "api", "--help", cwd=tmp_path))


def test_saksi_init_says_to_install_the_server_extra(clean, tmp_path):
    log = tmp_path / "log"
    out = run(
        str(clean / "bin" / "saksi"),
        "init",
        "--origin",
        "no-extras.example/log",
        "--dir",
        str(log),
        cwd=tmp_path,
        env=cli_env("no-extras-passphrase"),
    )
    _no_traceback_but_the_hint(out)
    assert not log.exists()  # nothing was started


def test_saksi_verify_works_without_the_extra(clean, tmp_path):
    out = run(str(clean / "bin" / "saksi-verify"), "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "audit" in out.stdout


def _launch(blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``saksi ARGS`` (the launcher) with module ``blocked`` not importable."""
    code = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None  # import raises ModuleNotFoundError\n"
        "from cli.__main__ import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=cli_env("no-extras-passphrase"),
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("package", ["sqlalchemy", "cryptography", "uvicorn"])
def test_a_missing_server_package_is_named(package, tmp_path):
    # uvicorn is imported only when 'serve' runs: the same answer, from there.
    out = _launch(package, "serve", "--dir", str(tmp_path), "--listen", "127.0.0.1:1")
    _no_traceback_but_the_hint(out)
    assert f"{package} cannot be imported" in out.stderr


def test_a_missing_module_of_ours_is_not_hidden():
    out = _launch("cli.election", "--help")
    assert out.returncode == 1
    assert "Traceback" in out.stderr
    assert "cli.election" in out.stderr
    assert HINT not in out.stderr
