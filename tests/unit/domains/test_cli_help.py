"""Every flag of every election command says what it is for (``saksi X --help``)."""

from __future__ import annotations

import argparse

import pytest

from cli.main import build_parser

DOMAIN_COMMANDS = ("regions", "results", "demo")


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _subcommands(child, (*path, name))
    return found


def _domain_parsers() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return [
        (path, parser)
        for path, parser in _subcommands(build_parser())
        if path and path[0] in DOMAIN_COMMANDS
    ]


def test_the_domain_commands_are_all_walked():
    paths = {path for path, _ in _domain_parsers()}
    assert {
        ("regions", "load"),
        ("results", "import"),
        ("results", "recap"),
        ("results", "show"),
        ("demo",),
    } <= paths


@pytest.mark.parametrize(
    ("path", "parser"),
    _domain_parsers(),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_option_has_help(path, parser):
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and (
            not action.help
            or action.help == argparse.SUPPRESS
            or not action.help.strip()
        )
    ]
    assert missing == [], f"saksi {' '.join(path)}: no help for {missing}"


def test_demo_help_says_it_is_a_demo_and_what_it_writes():
    demo = dict(_domain_parsers())[("demo",)]
    text = demo.format_help()
    assert "demonstration" in text
    assert "fresh log" in text
    assert "1,019" in text  # the key grants it writes
    assert "refused" in text  # any other log
