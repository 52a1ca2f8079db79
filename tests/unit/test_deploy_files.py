"""The deployment files under ``deploy/`` run what the project ships.

The systemd unit's and the container's commands parse as ``saksi`` parses
them, and the container copies every package the project installs.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path

from cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _serve_args(command: str) -> list[str]:
    words = shlex.split(command)
    assert Path(words[0]).name == "saksi", words
    return words[1:]


def test_the_systemd_unit_runs_a_saksi_serve_that_parses():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy/systemd/saksi-serve@.service")
    service = unit["Service"]
    command = (
        service["ExecStart"]
        .replace("${SAKSI_DB}", "postgresql://saksi@db/saksi")
        .replace("%i", "8080")
    )
    args = build_parser().parse_args(_serve_args(command))
    assert args.func.__name__ == "cmd_serve"
    assert args.listen == "0.0.0.0:8080"
    assert args.db.startswith("postgresql://")
    assert service["User"] == "saksi"
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGTERM"


def test_the_container_copies_every_package_and_runs_a_serve_that_parses():
    text = (ROOT / "deploy/container/Containerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \1$", text, re.M))
    for source in copied:
        assert (ROOT / source).is_dir(), source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        name.rstrip("*")
        for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, packages - copied
    entry = re.search(
        r'^ENTRYPOINT \["/bin/sh", "-c", "exec (.*?) \\"\$@\\"", ', text, re.M
    )
    assert entry is not None
    command = entry.group(1).replace('\\"$SAKSI_DB\\"', "postgresql://saksi@db/saksi")
    args = build_parser().parse_args(_serve_args(command))
    assert args.listen == "0.0.0.0:8080"
    assert "USER saksi" in text
    assert "SAKSI_KEY_PASSPHRASE_FILE" in text
