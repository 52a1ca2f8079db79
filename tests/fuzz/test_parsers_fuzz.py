"""Parser fuzzing (issue 24, RELIABILITY.md T12): the corpus, and a bounded run.

Every seed of ``tests/fuzz/corpus/`` (the ``crash-*`` ones are inputs that once
crashed a parser) goes through its target in this process; then every target is
fuzzed by ``python -m bench.fuzz`` as a user runs it, for ``scale(small,
1_000_000)`` executions each, and reports its executions and coverage as T12
evidence once it has found no crash.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fuzz import atheris_available
from bench.fuzz_targets import TARGETS, Target
from tests.evidence import scale
from verifier.errors import VerificationError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
RUNS = scale(3_000, 1_000_000)

# The parsers of outside bytes that issue 24 lists, and those found since.
PARSERS = {
    "verifier.dsse.parse_envelope",
    "verifier.record.parse_record",
    "verifier.record.parse_log_entry",
    "verifier.record.decode_logged_entry",
    "verifier.jcs.parse_json",
    "verifier.jcs.parse_canonical",
    "verifier.checkpoint.parse_checkpoint",
    "verifier.note.parse_note",
    "verifier.note.VerifierKey.parse",
    "verifier.cosignature.parse_cosignature",
    "verifier.tlog_proof.parse_tlog_proof",
    "verifier.proof_bundle.BundleReader",
    "verifier.tile_format.parse_tile",
    "verifier.tile_format.parse_entry_bundle",
    "verifier.tile_format.parse_tile_path",
    "verifier.witness_protocol.parse_add_checkpoint",
    "verifier.witness_protocol.WitnessKey.parse",
    "verifier.p256.parse_spki",
    "keys.keyfile.load_key_file",
    "keys.pem.public_key_from_pem",
    "keys.pem.signer_from_pem",
    "domains.sirekap.read_stations",
    "domains.kawalpemilu.read_nodes",
    "monitor.config.load_config",
}
# Modules whose public ``parse_*``/``read_*`` functions must all be fuzzed.
SCANNED = [
    "verifier/dsse.py",
    "verifier/record.py",
    "verifier/jcs.py",
    "verifier/checkpoint.py",
    "verifier/note.py",
    "verifier/cosignature.py",
    "verifier/tlog_proof.py",
    "verifier/tile_format.py",
    "verifier/witness_protocol.py",
    "verifier/p256.py",
    "domains/sirekap.py",
    "domains/kawalpemilu.py",
]
# Parsers there that take values already parsed, not outside bytes.
NOT_BYTES = {"verifier.record.parse_timestamp"}


def _seeds() -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name in TARGETS
        for path in sorted((CORPUS / name).iterdir())
        if path.is_file()
    ]


@pytest.mark.parametrize(
    ("name", "seed"), _seeds(), ids=[f"{n}/{p.name}" for n, p in _seeds()]
)
def test_every_corpus_seed_passes_its_target(name, seed):
    TARGETS[name](seed.read_bytes())  # anything but a declared error fails here


def test_every_target_has_a_small_corpus():
    total = 0
    for name in TARGETS:
        files = [p for p in (CORPUS / name).iterdir() if p.is_file()]
        assert files, f"tests/fuzz/corpus/{name}/ has no seed"
        total += sum(p.stat().st_size for p in files)
    assert total < 1 << 20
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(TARGETS)


def test_the_targets_cover_every_parser_of_outside_bytes():
    covered = {parser for target in TARGETS.values() for parser in target.parsers}
    assert covered >= PARSERS, sorted(PARSERS - covered)
    for module in SCANNED:
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        prefix = module.removesuffix(".py").replace("/", ".")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith(
                ("parse_", "read_", "decode_")
            ):
                qualified = f"{prefix}.{node.name}"
                if qualified not in NOT_BYTES:
                    assert qualified in covered, f"{qualified} has no fuzz target"


def test_only_the_declared_errors_pass_a_target():
    def broken(data: bytes) -> None:
        raise KeyError(data)

    with pytest.raises(KeyError):
        Target("broken", broken, (VerificationError,), ())(b"x")
    TARGETS["tile_path"](b"not a tile path")  # a declared refusal passes quietly


def test_bounded_fuzz_run_of_every_target_finds_no_crash(evidence, tmp_path):
    engine = "atheris" if atheris_available() else "hypothesis"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fuzz",
            "--runs",
            str(RUNS),
            "--jobs",
            "2",
            "--json",
            "--crashes",
            str(tmp_path / "crashes"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["engine"] == engine
    rows = {row["target"]: row for row in report["targets"]}
    assert set(rows) == set(TARGETS)
    for name, row in rows.items():
        assert row["error"] is None, (name, row["error"])
        assert row["crashes"] == [], (name, row["reason"], row["crashes"])
        assert row["executions"] >= RUNS, (name, row["executions"])
        if engine == "atheris":
            assert row["coverage"] > 0, name
            assert row["features"] > 0, name
    assert done.returncode == 0
    for name, row in rows.items():
        evidence.record(
            "T12",
            attempts=row["executions"],
            detected=row["executions"],
            target=name,
            engine=engine,
            coverage=row["coverage"],
            features=row["features"],
            execs_per_second=row["execs_per_second"],
            crashes=0,
        )
