"""The README's examples work as written.

Every ``saksi`` and ``saksi-verify`` line of its shell examples is parsed by the
real command-line parser (each optional ``[...]`` part with and without it,
placeholders such as ``HEX`` or ``ORIGIN`` filled in), so a flag that does not
exist, or a required one left out, fails here. Then the operator's walk through
"Running a log" and "Keys and records" runs for real in a temporary directory,
against a ``saksi serve`` the test starts, and the Python examples run
unchanged against the same log.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, cli_env, run_saksi, serving

README = (ROOT / "README.md").read_text(encoding="utf-8")
PASS = "a long passphrase"
FILLS = {
    "ORIGIN": "example.go.id/saksi",
    "HEX": "ab" * 32,
    "ID": "cd" * 32,
    "N": "5",
    "FILE": "file.txt",
    "URL": "sqlite:///x.db",
    "CODE": "31",
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def _commands(block: str) -> list[str]:
    """The block's command lines, continuations joined and variables expanded."""
    variables: dict[str, str] = {}
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        assignment = re.fullmatch(r'([A-Z0-9_]+)="?([^"]*)"?', line)
        if assignment:
            variables[assignment.group(1)] = assignment.group(2)
            continue
        for name, value in variables.items():
            line = line.replace(f"${name}", value)
        if line.startswith(("saksi ", "saksi-verify ")):
            out.append(line)
    return out


def _variants(line: str) -> list[str]:
    """The line without its optional parts, and with each one in turn."""
    groups = re.findall(r"\[([^\[\]]+)\]", line)
    bare = re.sub(r"\s*\[[^\[\]]+\]", "", line)
    variants = [bare]
    for group in groups:
        chosen = group.split(" | ")[0]
        if "|" in chosen:  # --source kpu|kawalpemilu: one value
            chosen = chosen.split("|")[0]
        variants.append(line.replace(f"[{group}]", chosen))
    return [re.sub(r"\s*\[[^\[\]]+\]", "", v) for v in variants]


def _argv(line: str) -> list[str]:
    return [FILLS.get(word, word) for word in shlex.split(line)]


def _parsers() -> dict[str, object]:
    from cli.main import build_parser as saksi_parser
    from verifier.commands import build_parser as verify_parser

    return {"saksi": saksi_parser(), "saksi-verify": verify_parser()}


def test_every_command_line_of_the_readme_parses():
    parsers = _parsers()
    lines = [line for block in _blocks("sh") for line in _commands(block)]
    assert len(lines) > 25
    checked = 0
    for line in lines:
        for variant in _variants(line):
            argv = _argv(variant)
            parser = parsers[argv[0]]
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    parser.parse_args(argv[1:])  # type: ignore[attr-defined]
                except SystemExit:
                    pytest.fail(f"README: {variant!r} does not parse: {err.getvalue()}")
            checked += 1
    assert checked > 35


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    program = "api" if argv[0] == "saksi" else "verifier"
    return subprocess.run(
        [sys.executable, "-m", program, *argv[1:]],
        capture_output=True,
        text=True,
        env={**cli_env(PASS), "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        timeout=300,
        check=False,
    )


def _readme_line(start: str) -> str:
    for block in _blocks("sh"):
        for line in _commands(block):
            if line.startswith(start):
                return line
    raise AssertionError(f"README has no {start!r} line")


def test_the_operator_walk_and_the_python_examples_run(tmp_path, monkeypatch):
    # The README's shell exports the passphrase; the Python example reads it.
    monkeypatch.setenv("SAKSI_KEY_PASSPHRASE", PASS)
    home = tmp_path / "srv"
    home.mkdir()
    srv = home / "saksi"

    def as_run(line: str, url: str = "") -> list[str]:
        line = re.sub(r"\s*\[[^\[\]]+\]", "", line).replace("/srv/saksi", str(srv))
        if url:
            line = line.replace("http://127.0.0.1:8080", url)
        return _argv(line)

    init = as_run(_readme_line("saksi init  --origin"))
    out = _run(*init, "--kdf", "interactive", cwd=home)
    assert out.returncode == 0, out.stderr
    work = srv  # the Python example opens log.vkey and admin.key where it runs
    with serving(srv, f"sqlite:///{srv / 'saksi.db'}", cli_env(PASS)) as url:
        new = _run(*as_run(_readme_line("saksi keys new")), "--kdf", "interactive",
                   "--json", cwd=work)  # fmt: skip
        assert new.returncode == 0, new.stderr
        kpps = json.loads(new.stdout)
        for start in ("saksi keys show", "saksi keys export"):
            done = _run(*as_run(_readme_line(start)), cwd=work)
            assert done.returncode == 0, (start, done.stderr)
        # What 'keys import' reads: a PKCS#8 key, as an HSM or another tool exports.
        exported = _run("saksi", "keys", "export", "--key", "kpps.key",
                        "--private-pem", "from-hsm.pem", cwd=work)  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        imported = _run(*as_run(_readme_line("saksi keys import")), "--kdf",
                        "interactive", cwd=work)  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        grant = as_run(_readme_line("saksi keys grant"))
        grant[grant.index("ab" * 32)] = kpps["public_key_hex"]
        granted = _run(*grant, cwd=work)  # through the server, via serve.url
        assert granted.returncode == 0, granted.stderr
        # A key may always revoke itself: the README's record file, signed by it.
        (work / "record.json").write_text(
            json.dumps(
                {
                    "schema": "keys.revoke/v1",
                    "subject": f"keys/{kpps['keyid']}",
                    "body": {"keyid": kpps["keyid"], "reason_code": "retired"},
                    "reason": "the officer's device was replaced",
                }
            )
        )
        submitted = _run(
            *as_run(_readme_line("saksi submit      --url"), url), cwd=work
        )
        assert submitted.returncode == 0, submitted.stderr
        listed = _run(*as_run(_readme_line("saksi keys list"), url), "--json", cwd=work)
        assert listed.returncode == 0, listed.stderr
        assert kpps["keyid"] in listed.stdout
        # The Python examples, as written, with the server's address.
        code = "\n".join(_blocks("python")).replace("http://127.0.0.1:8080", url)
        previous = Path.cwd()
        os.chdir(work)
        try:
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
        finally:
            os.chdir(previous)
        index, size = (int(x) for x in printed.getvalue().split())
        assert 0 < index < size
        checkpoint = httpx.get(url + "/log/checkpoint").content
    (work / "checkpoint").write_bytes(checkpoint)
    check = as_run(_readme_line("saksi check"))
    done = _run(*check, "--trusted-checkpoint", str(work / "checkpoint"), cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK:")
    assert run_saksi("--version", passphrase=None).returncode == 0
