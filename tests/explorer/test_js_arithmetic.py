"""The page's arithmetic checks agree with the Python verifier's, form by form.

``explorer/static/js/verify/arithmetic.js`` recomputes a proven form's flags
in the browser. Here every complete form of the real 2024 DKI Jakarta sample
(``../shared/data``, misread numbers and all), the synthetic election's forms
(a third of them broken as real forms are), each also with one number moved at
random, and forms without their optional parts, go through both: the
JavaScript answer must be ``verifier.rules.tally_flags``'s, check for check,
place and detail. Forms
missing a number the checks need are refused (MalformedInput), never flagged
as if the number were zero.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from domains.sirekap import read_stations, tally_body
from domains.synthetic import ElectionSpec, tally
from tests.helpers import DKI_SAMPLE, ROOT
from verifier.election import BALLOTS
from verifier.rules import tally_flags
from verifier.rules.arithmetic import TALLY_CHECKS

NODE = shutil.which("node") or shutil.which("nodejs")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="needs Node.js (.ci/run installs Debian's nodejs)"
)

STATIONS = [
    f"3171{d:02d}100{v}{s:03d}" for d in (1, 2, 3) for v in (1, 2) for s in (1, 2, 7)
]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every count in a body (the form's page hashes aside)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    return [path] if isinstance(node, int) else []


def _moved(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with one count moved up or down (never below zero)."""
    out = copy.deepcopy(body)
    path = rng.choice(_leaves({k: v for k, v in out.items() if k != "form"}))
    where = out
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = max(0, where[path[-1]] + rng.choice([-10, -1, 1, 2, 9, 250]))
    return out


def _cases() -> list[dict[str, Any]]:
    spec = ElectionSpec(seed=26, error_share=0.35)
    rng = random.Random(26)
    cases = []
    for station in STATIONS:
        for ballot in BALLOTS:
            body = tally(spec, ballot, station)
            cases.append({"ballot": ballot, "body": body})
            for _ in range(3):
                cases.append({"ballot": ballot, "body": _moved(rng, body)})
            for part in ("voters", "registered", "ballots", "votes", "parties"):
                bare = {k: v for k, v in body.items() if k != part}
                cases.append({"ballot": ballot, "body": bare})
            papers = {"received": body["total"] + 12, "used": body["total"],
                      "unused": 10, "damaged": 2}  # fmt: skip
            cases.append({"ballot": ballot, "body": {**body, "ballots": papers}})
            broken = {**papers, "damaged": 0}
            cases.append({"ballot": ballot, "body": {**body, "ballots": broken}})
            cases += [{"ballot": ballot, "body": b} for b in _edges(body)]
    return cases


def _edges(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each limit met exactly and passed by one: registered, DPT voters, all voters."""
    out = []
    for registered in (300, 301, 350):
        over = copy.deepcopy(body)
        over["registered"]["dpt"] = {"male": 150, "female": registered - 150,
                                     "total": registered}  # fmt: skip
        out.append(over)
    dpt = body["registered"]["dpt"]["total"]
    allowed = dpt + math.ceil(dpt * 0.02)
    for dpt_voters, all_voters in ((dpt, dpt), (dpt + 1, dpt + 1),
                                   (dpt, allowed), (dpt, allowed + 1)):  # fmt: skip
        edge = copy.deepcopy(body)
        edge["voters"]["dpt"]["total"] = dpt_voters
        edge["voters"]["total"]["total"] = all_voters
        out.append(edge)
    return out


def _node(tmp_path: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    file = tmp_path / "cases.json"
    file.write_text(json.dumps(cases))
    done = subprocess.run(
        [NODE, "tests/explorer/js/flags.mjs", str(file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # The page names the verifier's checks, in its order (its list of them
    # is a copy: this keeps the two the same).
    assert out["checks"] == list(TALLY_CHECKS)
    answers = out["answers"]
    assert len(answers) == len(cases)
    return answers


def _real() -> list[dict[str, Any]]:
    """The real sample's complete forms, as ``saksi results import`` signs them."""
    bodies = (tally_body(station).body for station in read_stations(DKI_SAMPLE))
    return [{"ballot": "ppwp", "body": b} for b in bodies if b is not None]


def test_the_page_flags_every_form_as_the_verifier_does(tmp_path):
    real = _real()
    assert len(real) > 100
    cases = real + _cases()
    answers = _node(tmp_path, cases)
    seen: set[str] = set()
    for case, answer in zip(cases, answers, strict=True):
        expected = [f.to_json() for f in tally_flags(case["body"], case["ballot"])]
        assert answer == {"flags": expected}, (case["ballot"], case["body"])
        seen |= {f["check"] for f in expected}
    assert seen == set(TALLY_CHECKS)  # every check was exercised, broken and not
    assert sum(1 for a in answers if not a["flags"]) > len(answers) // 10
    assert sum(1 for a in answers[: len(real)] if a["flags"]) > 10  # real misreads


def test_a_form_missing_a_number_is_refused_not_counted_as_zero(tmp_path):
    body = tally(ElectionSpec(seed=26), "ppwp", STATIONS[0])
    party = tally(ElectionSpec(seed=26), "pdpr", STATIONS[0])
    first = next(iter(party["parties"]))
    cases = [
        {"ballot": "ppwp", "body": {k: v for k, v in body.items() if k != "valid"}},
        {"ballot": "ppwp", "body": {**body, "total": -1}},
        {"ballot": "ppwp", "body": {**body, "invalid": "3"}},
        {"ballot": "ppwp", "body": {**body, "valid": 1.5}},
        {"ballot": "ppwp", "body": {**body, "votes": [1, 2]}},
        {"ballot": "ppwp", "body": {**body, "voters": {"dpt": body["voters"]["dpt"]}}},
        {"ballot": "ppwp", "body": {**body, "ballots": {"used": 1}}},
        {"ballot": "pdpr", "body": {**party, "parties": {
            **party["parties"], first: {"party": 3}}}},
        {"ballot": "ppwp", "body": [body]},
    ]  # fmt: skip
    for case, answer in zip(cases, _node(tmp_path, cases), strict=True):
        assert answer == {"error": "MalformedInput"}, case
