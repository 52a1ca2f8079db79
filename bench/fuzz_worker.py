"""One fuzz target in a process of its own: what ``bench.fuzz`` starts.

    python -m bench.fuzz_worker '<job as JSON>'

The job names the target, the engine, the number of runs, the seed, the corpus
to read, the directory new inputs go to and the one reproducers go to.
atheris ends the process when libFuzzer stops, which is why every target gets a
process. With atheris, the project's packages are imported under
``atheris.instrument_imports`` (nothing of theirs may be imported before), so
that their line coverage guides the mutations; libFuzzer reports on stderr and
``bench.fuzz`` reads its figures there. With Hypothesis (where atheris cannot
be installed), seeds are mutated at the byte level and the figures are printed
as one JSON line on stdout; there is no coverage to report.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# The packages whose coverage guides atheris (tomllib: the monitor's parser).
INSTRUMENTED = [
    "verifier",
    "keys",
    "domains",
    "monitor",
    "tomllib",
    "bench.fuzz_targets",
]


def _atheris(job: dict[str, Any]) -> None:
    import atheris  # type: ignore[import-not-found, unused-ignore]

    with atheris.instrument_imports(include=INSTRUMENTED):
        from bench.fuzz_targets import TARGETS
    target = TARGETS[job["target"]]
    argv = [
        sys.argv[0],
        f"-seed={job['seed']}",
        f"-max_len={target.max_len}",
        f"-timeout={job['timeout']}",
        f"-rss_limit_mb={job['rss_limit_mb']}",
        "-print_final_stats=1",
        "-print_pcs=0",
    ]
    if job.get("merge"):
        # Inputs of the later directories that add coverage to the first.
        argv += ["-merge=1", *job["dirs"]]
    else:
        argv += [f"-runs={job['runs']}", f"-artifact_prefix={job['artifacts']}/"]
        if job.get("max_time"):
            argv.append(f"-max_total_time={job['max_time']}")
        argv += [job["out"], job["seeds"]]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def _hypothesis(job: dict[str, Any]) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st

    from bench.fuzz_targets import TARGETS

    target = TARGETS[job["target"]]
    seeds = [p.read_bytes() for p in sorted(Path(job["seeds"]).iterdir())] or [b""]
    artifacts = Path(job["artifacts"])
    state: dict[str, Any] = {"executions": 0, "crash": None}

    def run(data: bytes) -> None:
        state["executions"] += 1
        try:
            target(data)
        except BaseException:
            # Hypothesis replays its shrunk example last: the file kept is that one.
            path = artifacts / f"crash-{hashlib.sha1(data).hexdigest()}"  # noqa: S324
            path.write_bytes(data)
            state["crash"] = str(path)
            raise

    @st.composite
    def mutant(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.integers(0, 4))
            if op == 0 and data:
                data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
            elif op == 1:
                data[at:at] = draw(st.binary(max_size=8))
            elif op == 2:
                del data[at : at + draw(st.integers(1, 16))]
            elif op == 3:
                other = draw(st.sampled_from(seeds))
                data[at:] = other[draw(st.integers(0, len(other))) :]
            else:
                data[at:at] = data[at : at + draw(st.integers(1, 64))]
        return bytes(data[: target.max_len])

    for data in seeds:
        try:
            run(data)
        except BaseException:  # reported below, as a crash
            break
    if state["crash"] is None:

        @fixed_seed(job["seed"])
        @settings(
            max_examples=max(1, job["runs"] - len(seeds)),
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink],
        )
        @given(st.one_of(mutant(), st.binary(max_size=target.max_len)))
        def fuzz(data: bytes) -> None:
            run(data)

        try:
            fuzz()
        except BaseException as e:  # the crash is reported, with its file
            print(f"crash: {type(e).__name__}: {e}", file=sys.stderr)
    print(json.dumps({"engine": "hypothesis", **state}))


def main(argv: list[str] | None = None) -> int:
    """Run the job given as JSON in ``argv[0]``."""
    job = json.loads((sys.argv[1:] if argv is None else argv)[0])
    if job["engine"] == "atheris":
        _atheris(job)  # libFuzzer ends the process
        return 0
    _hypothesis(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
