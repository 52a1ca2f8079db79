"""The planted bugs of ``scripts/mutants.py`` still apply to the code.

Running the mutants takes minutes (it is not part of this suite); this only
checks that each edit finds its text exactly once, so that the list does not
rot silently as the code moves.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mutants():
    spec = importlib.util.spec_from_file_location(
        "mutants", ROOT / "scripts/mutants.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["mutants"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.MUTANTS


def test_every_mutant_applies_exactly_once():
    mutants = _mutants()
    assert len({m.name for m in mutants}) == len(mutants)
    for m in mutants:
        text = (ROOT / m.path).read_text(encoding="utf-8")
        assert text.count(m.old) == 1, m.name
        assert m.old != m.new, m.name
        for test in m.tests:
            assert (ROOT / test).exists(), (m.name, test)


def test_the_review_survivors_and_twenty_more_are_planted():
    mutants = _mutants()
    assert sum(m.source == "review" for m in mutants) == 9
    assert sum(m.source == "own" for m in mutants) >= 20
