"""Every flag and argument of every command says what it is for (``--help``).

Walks the real parsers, ``saksi`` (``cli.main.build_parser``) and
``saksi-verify`` (``verifier.commands.build_parser``), so a new command or flag without
help fails here. A hidden flag (``help=argparse.SUPPRESS``) counts as one
without help: an operator who meets it in a script finds nothing in ``--help``.
"""

from __future__ import annotations

import argparse

import pytest

from cli.main import build_parser
from verifier.commands import build_parser as verify_parser


# Flags registered in cli/ that have no help yet.
def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _walk(child, (*path, name))
    return found


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return _walk(build_parser(), ("saksi",)) + _walk(verify_parser(), ("saksi-verify",))


def _without_help(parser: argparse.ArgumentParser) -> list[str]:
    return [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(
            action,
            argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction,
        )
        and (
            not action.help
            or action.help == argparse.SUPPRESS
            or not action.help.strip()
        )
    ]


def _case(path: tuple[str, ...], parser: argparse.ArgumentParser) -> object:
    return pytest.param(path, parser, id=" ".join(path))


def test_every_command_is_walked():
    paths = {path for path, _ in _commands()}
    for leaf in [
        ("saksi", "init"),
        ("saksi", "check"),
        ("saksi", "serve"),
        ("saksi", "keys", "new"),
        ("saksi", "keys", "show"),
        ("saksi", "keys", "export"),
        ("saksi", "keys", "import"),
        ("saksi", "keys", "grant"),
        ("saksi", "keys", "revoke"),
        ("saksi", "keys", "list"),
        ("saksi", "submit"),
        ("saksi", "demo"),
        ("saksi", "regions", "load"),
        ("saksi", "results", "import"),
        ("saksi", "results", "recap"),
        ("saksi", "results", "show"),
        ("saksi-verify", "audit"),
        ("saksi-verify", "witness-key"),
    ]:
        assert leaf in paths


@pytest.mark.parametrize(
    ("path", "parser"), [_case(path, parser) for path, parser in _commands()]
)
def test_every_option_has_help(path, parser):
    missing = _without_help(parser)
    assert missing == [], f"{' '.join(path)}: no help for {missing}"
