"""Election benchmark: a synthetic election on real region codes, through HTTP.

    python -m bench.election [--prefix 31] [--backends sqlite,postgres] [--out F]
                             [--stop-after corrections] [--resume]

For each backend, in one run: a fresh log served by ``saksi serve`` in its own
process; the commission's region table under ``--prefix`` (default DKI Jakarta:
44 districts, 30,766 polling stations), 18 parties and every candidate list;
every station's form for all five ballots written through the batch endpoint
(500 envelopes a request, every receipt verified); the authority corrections
of the broken forms; the recaps built bottom-up, village to national, for every
ballot; then results and provenance queries at every level. Beside them, in the
same run, the in-process rate of the same tallies (checks and appends, no HTTP)
as the ceiling. ``--prefix ''`` is the whole country (about 4.1 million forms).
Writes ``BENCHMARKS.md``'s ``election-<prefix>`` section (``election-country``
for the whole country) from ``bench/figures/``, where each backend's figures are
kept after every chunk and phase.

A whole-country run takes longer than one sitting: ``--stop-after corrections``
stops it before the recaps, and ``--resume`` continues each unfinished run on
its own log (kept under /tmp, its keys derived from a seed kept with the
figures), so the recap phase can be timed whole in a later sitting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.http import (
    PASS,
    free_port,
    pct,
    progress,
    saksi,
    start_server,
    wait_ready,
)
from bench.report import write_section
from domains.recaps import build_recaps
from domains.regions import DEFAULT_TPS, DEFAULT_WILAYAH, district_bodies
from domains.synthetic import (
    ElectionSpec,
    candidate_lists,
    correction_of,
    parties,
    subjects,
    tally,
)
from keys import Ed25519Signer, load_key_file
from saksi_client import Refused, SaksiClient, grant_body
from verifier.election import BALLOTS
from verifier.note import VerifierKey

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
SENDERS = 3  # batch requests in flight at once
CHUNK = 25_000  # forms made and signed before each timed run of sends


def stations_of(districts: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every polling station code of ``districts`` (``district_bodies``' output)."""
    return [
        f"{village}{n:03d}"
        for _, body in districts
        for village, info in body["villages"].items()
        for n in info["tps"]
    ]


def _fresh(
    schema: str,
    subject: str,
    body: dict[str, Any],
    signer: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    """A signed envelope of a revision-0 record."""
    return SaksiClient.sign(
        SaksiClient.record(schema, subject, body, now=now), [signer]
    )


def _grant(
    key: Ed25519Signer,
    role: str,
    scope: str,
    admin: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    body = grant_body(key.public_key, role, scope, f"{role} {scope or 'all'}")
    return _fresh("keys.grant/v1", f"keys/{key.keyid}", body, admin, now)


def _send(client: SaksiClient, envelopes: list[dict[str, Any]]) -> int:
    """Send in batches, SENDERS batch requests in flight (as several of the
    commission's systems would), so the server checks one batch while the
    client verifies the receipts of another."""
    batches = [envelopes[i : i + BATCH] for i in range(0, len(envelopes), BATCH)]
    done = 0
    with ThreadPoolExecutor(SENDERS) as pool:
        for outcomes in pool.map(client.submit_many, batches):
            for outcome in outcomes:
                if isinstance(outcome, Refused):
                    raise RuntimeError(f"refused: {outcome.cause}: {outcome.problem}")
                done += 1
    return done


def _make_form(
    job: tuple[ElectionSpec, bytes, dt.datetime, str, str, str],
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """(signed envelope, payload hash, its correction or None) of one form."""
    spec, seed, now, subject, ballot, station = job
    body = tally(spec, ballot, station)
    payload = SaksiClient.record("results.tally/v1", subject, body, now=now)
    envelope = SaksiClient.sign(payload, [Ed25519Signer("reader", seed)])
    fixed = correction_of(spec, ballot, station, body)
    return envelope, hashlib.sha256(payload).hexdigest(), fixed


def _key(name: str, seed: bytes, *parts: str) -> Ed25519Signer:
    """A key derived from the run's seed: a resumed run signs as the first did."""
    material = hashlib.sha256(seed + "/".join([name, *parts]).encode()).digest()
    return Ed25519Signer(name, material)


def run_backend(
    db_url: str | None,
    prefix: str,
    spec: ElectionSpec,
    work: Path,
    figures: dict[str, Any],
    save: Callable[[dict[str, Any]], None],
    stop_after: str | None = None,
) -> dict[str, Any]:
    """Write the election to a log on one backend, phase by phase.

    ``figures`` holds what earlier sittings of this run measured (empty for a
    new run); ``save`` is called with them after every chunk and phase. A
    whole-country run takes hours: a stopped one is resumed from its log
    directory and the phases it completed (its keys derive from a seed kept with
    the figures; forms already logged are answered as duplicates).
    """
    env = {
        **os.environ,
        "SAKSI_KEY_PASSPHRASE": PASS,
        "SAKSI_KEY_RATE": "1000000",
        "SAKSI_KEY_BURST": "1000000",
        "SAKSI_CLIENT_RATE": "1000000",
        "SAKSI_CLIENT_BURST": "1000000",
    }
    log_dir = work / "log"
    journal = work / "forms.jsonl"  # payload hashes and corrections, per form
    if "seed" not in figures:
        init = [
            "init",
            "--origin",
            "bench.saksi.example/election",
            "--dir",
            str(log_dir),
        ]
        db = ["--db", db_url] if db_url else []
        saksi(*init, "--kdf", "interactive", *db, env=env)
        figures.update(
            seed=os.urandom(32).hex(),
            now=dt.datetime.now(dt.UTC).isoformat(),
            work=str(work),
            db_url=db_url,
            forms=0,
            forms_seconds=0.0,
        )
        journal.unlink(missing_ok=True)
        save(figures)
    seed = bytes.fromhex(figures["seed"])
    now = dt.datetime.fromisoformat(figures["now"])
    admin = load_key_file(log_dir / "admin.key", PASS.encode())
    key = VerifierKey.parse((log_dir / "log.vkey").read_text().strip())
    districts = list(district_bodies(DEFAULT_WILAYAH, DEFAULT_TPS, prefix))
    stations = stations_of(districts)
    port, reads_port = free_port(), free_port()
    db = ["--db", db_url] if db_url else []
    server = start_server(log_dir, port, *db, env=env)
    # The recaps are read through a read-only server of the same database,
    # as the deployment guide puts reads (README): the reads, the larger part
    # of the recap work, on the other core, off the server taking the writes.
    reads = start_server(
        log_dir,
        reads_port,
        "--read-only",
        "--refresh",
        "0.05",
        *db,
        env=env,
        output=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    figures.update(stations=len(stations), districts=len(districts))
    regions = {"": "national"}
    for code in stations:
        regions[code[:10]] = "village"
        regions[code[:6]] = "district"
        regions[code[:4]] = "regency"
        regions[code[:2]] = "province"
    committees = {c: _key("recap", seed, c) for c in regions}
    try:
        # Opening a log of millions of entries takes a while: the figure is kept.
        t = time.perf_counter()
        wait_ready(url + "/healthz", timeout=1800)
        figures.setdefault("startups", []).append(round(time.perf_counter() - t, 1))
        progress(f"  the server answered after {figures['startups'][-1]} s")
        client = SaksiClient(url, key)
        reader = Ed25519Signer("reader", seed)  # the form makers sign with it too
        if not figures.get("setup_done"):
            _setup(
                client,
                spec,
                seed,
                now,
                admin,
                reader,
                districts,
                stations,
                regions,
                committees,
            )
            figures["setup_done"] = True
            save(figures)
        if not figures.get("forms_done"):
            _forms(client, spec, seed, now, stations, journal, figures, save)
            figures["forms_done"] = True
            save(figures)
        if "corrections" not in figures:
            _corrections(client, now, committees, journal, figures)
            save(figures)
        if stop_after == "corrections":
            return figures
        if "recaps" not in figures:
            # A phase stopped part-way and resumed counts (and times) only what
            # its last sitting did: the report says so.
            figures["recap_sittings"] = figures.get("recap_sittings", 0) + 1
            save(figures)
            # The read-only server runs all along, as in a deployment: its
            # start-up (loading the log) is not the recaps' time.
            wait_ready(f"http://127.0.0.1:{reads_port}/healthz", timeout=1800)
            reader = SaksiClient(f"http://127.0.0.1:{reads_port}", key)
            progress("  recaps, village to national, every ballot")
            t = time.perf_counter()
            recaps = 0
            # The ballots are independent: built side by side, one ballot's
            # level changes (waiting for its last batch, then for the reader)
            # are another's reads.
            with ThreadPoolExecutor(len(spec.ballots)) as builders:
                for report in builders.map(
                    lambda ballot: build_recaps(
                        client, ballot, "", committees.get, reader=reader
                    ),
                    spec.ballots,
                ):
                    if report.refused:
                        raise RuntimeError(f"recap refused: {report.refused[0]}")
                    recaps += sum(report.signed.values())
            figures["recaps"] = recaps
            figures["recap_seconds"] = time.perf_counter() - t
            save(figures)
        figures["latency"] = _queries(url, regions, stations)
        figures["size"] = httpx.get(url + "/healthz").json()["tree_size"]
        figures["complete"] = True
        save(figures)
    finally:
        for process in (server, reads):
            process.send_signal(signal.SIGTERM)
        for process in (server, reads):
            process.wait(timeout=120)
    return figures


def setup_records(
    spec: ElectionSpec,
    now: dt.datetime,
    admin: Any,
    keys: dict[str, Ed25519Signer],
    districts: list[tuple[str, dict[str, Any]]],
    stations: list[str],
    committees: dict[str, tuple[str, Ed25519Signer]] | None = None,
) -> list[list[dict[str, Any]]]:
    """What an election log needs before its forms, in the order it must be
    logged, phase by phase: the keys (``keys``: reader, lists, parties; and each
    region's recap committee as (level, key)), the region registry, the parties,
    every candidate list."""
    grants = [
        _grant(keys["reader"], "tps", "", admin, now),
        _grant(keys["lists"], "candidates", "", admin, now),
        _grant(keys["parties"], "parties", "", admin, now),
    ] + [
        _grant(key, level, code, admin, now)
        for code, (level, key) in (committees or {}).items()
    ]
    return [
        grants,
        [
            _fresh("regions.registry/v1", f"regions/{c}", b, admin, now)
            for c, b in districts
        ],
        [
            _fresh(
                "parties.change/v1", "parties/national", parties(), keys["parties"], now
            )
        ],
        [
            _fresh("candidates.change/v1", s, b, keys["lists"], now)
            for s, b in candidate_lists(spec, stations)
        ],
    ]


def _setup(
    client: SaksiClient,
    spec: ElectionSpec,
    seed: bytes,
    now: dt.datetime,
    admin: Any,
    reader: Ed25519Signer,
    districts: list[tuple[str, dict[str, Any]]],
    stations: list[str],
    regions: dict[str, str],
    committees: dict[str, Ed25519Signer],
) -> None:
    """Keys, the region registry, the parties and every candidate list."""
    keys = {
        "reader": reader,
        "lists": _key("lists", seed),
        "parties": _key("parties", seed),
    }
    phases = setup_records(
        spec,
        now,
        admin,
        keys,
        districts,
        stations,
        {c: (regions[c], k) for c, k in committees.items()},
    )
    progress(f"  {len(phases[0]):,} keys, {len(districts)} districts, lists")
    for phase in phases:  # each depends on the one before: one at a time
        _send(client, phase)


def _forms(
    client: SaksiClient,
    spec: ElectionSpec,
    seed: bytes,
    now: dt.datetime,
    stations: list[str],
    journal: Path,
    figures: dict[str, Any],
    save: Callable[[dict[str, Any]], None],
) -> None:
    """Every form, ballot by ballot, signed as the reading system.

    Forms are made and signed in chunks outside the clock (as the commission's
    systems would have them ready); only sending is timed. Each chunk's payload
    hashes and corrections go to the journal before it is sent.
    """
    every = list(subjects(spec, stations))
    done = figures["forms"]
    sittings = figures.get("form_sittings", 0) + 1 if done else 1
    progress(f"  {len(every):,} forms through HTTP ({done:,} already)")
    maker = ProcessPoolExecutor(os.cpu_count() or 1)
    try:
        for start in range(done - done % CHUNK, len(every), CHUNK):
            chunk = every[start : start + CHUNK]
            made = list(
                maker.map(
                    _make_form,
                    [(spec, seed, now, *item) for item in chunk],
                    chunksize=500,
                )
            )
            with journal.open("a", encoding="utf-8") as out:
                for (subject, ballot, station), (_, digest, fixed) in zip(
                    chunk, made, strict=True
                ):
                    line: dict[str, Any] = {"s": subject, "h": digest}
                    if fixed is not None:
                        line["c"] = [ballot, station, fixed]
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
            t = time.perf_counter()
            sent = _send(client, [envelope for envelope, _, _ in made])
            figures["forms_seconds"] += time.perf_counter() - t
            figures["forms"] = start + sent
            figures["form_sittings"] = max(figures.get("form_sittings", 1), sittings)
            save(figures)
            progress(f"    {figures['forms']:,} forms")
    finally:
        maker.shutdown()


def _corrections(
    client: SaksiClient,
    now: dt.datetime,
    committees: dict[str, Ed25519Signer],
    journal: Path,
    figures: dict[str, Any],
) -> None:
    """The authority corrections of the broken forms, signed by the district."""
    latest: dict[str, dict[str, Any]] = {}
    with journal.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            latest[item["s"]] = item  # a resumed chunk is journalled twice
    envelopes = [
        client.sign(
            client.record(
                "results.tally/v1",
                subject,
                item["c"][2],
                reason="corrected in plenary",
                after=(0, item["h"]),
                now=now,
            ),
            [committees[item["c"][1][:6]]],
        )
        for subject, item in latest.items()
        if "c" in item
    ]
    del latest
    progress(f"  {len(envelopes):,} corrections")
    t = time.perf_counter()
    figures["corrections"] = _send(client, envelopes)
    figures["corrections_seconds"] = time.perf_counter() - t


def _queries(
    url: str, regions: dict[str, str], stations: list[str]
) -> dict[str, tuple[float, float]]:
    """p50 and p99 of results queries at every level and of provenance."""
    progress("  results and provenance queries")
    rng = random.Random(1)
    levels = {
        level: sorted(c for c, r in regions.items() if r == level)
        for level in ("village", "district", "regency", "province")
    }
    latencies: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=120) as http:
        # The first results read after the recaps (which the read-only server
        # read) brings this server's results index up to the log: reported
        # apart, as "first read".
        t = time.perf_counter()
        http.get("/v1/results/ppwp/national").raise_for_status()
        latencies["first read"] = [time.perf_counter() - t]
        for level, codes in levels.items():
            for _ in range(60 if level == "village" else 20):
                code = rng.choice(codes)
                t = time.perf_counter()
                r = http.get(f"/v1/results/{rng.choice(BALLOTS)}/{code}")
                latencies.setdefault(level, []).append(time.perf_counter() - t)
                r.raise_for_status()
        for _ in range(5):
            t = time.perf_counter()
            http.get(f"/v1/results/{rng.choice(BALLOTS)}/national").raise_for_status()
            latencies.setdefault("national", []).append(time.perf_counter() - t)
        for _ in range(100):
            station = rng.choice(stations)
            t = time.perf_counter()
            r = http.get(f"/v1/subjects/results/{rng.choice(BALLOTS)}/{station}")
            latencies.setdefault("provenance", []).append(time.perf_counter() - t)
            r.raise_for_status()
    return {k: (pct(v, 0.5), pct(v, 0.99)) for k, v in latencies.items()}


def inprocess_ceiling(spec: ElectionSpec, tmp: Path) -> float:
    """Forms/s checked and appended in process (no HTTP), on SQLite."""
    from cli.local import open_service

    env = {**os.environ, "SAKSI_KEY_PASSPHRASE": PASS}
    log_dir = tmp / "ceiling"
    saksi(
        "init",
        "--origin",
        "bench.saksi.example/c",
        "--dir",
        str(log_dir),
        "--kdf",
        "interactive",
        env=env,
    )
    admin = load_key_file(log_dir / "admin.key", PASS.encode())
    os.environ["SAKSI_KEY_PASSPHRASE"] = PASS
    service = open_service(log_dir, None, None)
    now = dt.datetime.now(dt.UTC)
    try:
        districts = list(district_bodies(DEFAULT_WILAYAH, DEFAULT_TPS, "3171"))
        stations = stations_of(districts)[:4000]
        keys = {n: Ed25519Signer.generate(n) for n in ("reader", "lists", "parties")}
        reader = keys["reader"]
        setup = [
            r
            for phase in setup_records(spec, now, admin, keys, districts, stations)
            for r in phase
        ]
        for envelope in setup:
            service.ledger.submit(service.writer.prepare(envelope))
        forms = [
            _fresh(
                "results.tally/v1", subject, tally(spec, ballot, station), reader, now
            )
            for subject, ballot, station in subjects(spec, stations)
        ]
        t = time.perf_counter()
        subs = [service.writer.prepare(f) for f in forms]
        for i in range(0, len(subs), BATCH):
            for outcome in service.ledger.submit_many(subs[i : i + BATCH]):
                if isinstance(outcome, Exception):
                    raise RuntimeError(f"in-process form refused: {outcome}")
        return len(forms) / (time.perf_counter() - t)
    finally:
        service.close()


FIGURES = ROOT / "bench" / "figures"


def _section(prefix: str) -> str:
    return f"election-{prefix or 'country'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", default="31", help="region prefix ('' = all)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument(
        "--figures",
        type=Path,
        default=FIGURES,
        help="where each backend's figures are kept between runs",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue each backend's unfinished run (its log and phases) "
        "instead of starting a new one",
    )
    parser.add_argument(
        "--stop-after",
        choices=["corrections"],
        help="stop before the recaps (so that a later --resume times them whole)",
    )
    args = parser.parse_args(argv)
    spec = ElectionSpec()
    store = args.figures / f"{_section(args.prefix)}.json"
    kept: dict[str, dict[str, Any]] = (
        json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    )
    ceiling: float | None = None
    for backend in args.backends.split(","):
        previous = kept.get(backend, {})
        resuming = (
            args.resume
            and "seed" in previous
            and not previous.get("complete")
            and Path(previous["work"]).exists()
        )
        if resuming:
            figures = dict(previous)
            work = Path(figures["work"])
            progress(f"{backend}: resuming the run in {work}")
        else:
            if ceiling is None:
                progress("in-process ceiling (SQLite, 20,000 forms)")
                ceiling = inprocess_ceiling(
                    spec, Path(tempfile.mkdtemp(prefix="saksi-ceiling-"))
                )
            work = Path(tempfile.mkdtemp(prefix=f"saksi-election-{backend}-"))
            figures = {
                "command": "python -m bench.election --prefix "
                f"{args.prefix or chr(39) * 2} --backends {backend}",
                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                f"{platform.python_version()}",
                "ceiling": ceiling,
            }
            progress(f"{backend}: prefix {args.prefix or '(all)'} in {work}")

        def save(figures: dict[str, Any], backend: str = backend) -> None:
            kept[backend] = figures
            args.figures.mkdir(parents=True, exist_ok=True)
            temp = store.with_suffix(".tmp")
            temp.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
            temp.replace(store)
            write_report(args.out, args.prefix, kept)

        if backend == "sqlite":
            run_backend(None, args.prefix, spec, work, figures, save, args.stop_after)
            continue
        sys.path.insert(0, str(ROOT))
        from tests.pg import PgCluster, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            raise SystemExit("initdb not found: install PostgreSQL 15")
        work.chmod(0o755)  # the cluster under it runs as the postgres user
        cluster = PgCluster(bindir, root=work / "pg")
        cluster.start()
        try:
            db_url = figures.get("db_url") or cluster.new_database()
            run_backend(db_url, args.prefix, spec, work, figures, save, args.stop_after)
        finally:
            # A finished run's cluster goes; an unfinished one stays to resume.
            cluster.stop(keep=not figures.get("complete"))
    return 0


def write_report(out: Path, prefix: str, kept: dict[str, dict[str, Any]]) -> None:
    """The section of ``prefix``, one row per backend from its latest run."""
    full_forms = 820_161 * 5
    where = f"prefix {prefix}" if prefix else "the whole country"
    lines = [
        f"## The election ({where}): a synthetic election on real region codes, "
        "through HTTP",
        "",
        "Written by `python -m bench.election --prefix "
        f"{prefix or chr(39) * 2} --backends B`; one row per backend, each from its "
        "own run, beside the in-process ceiling (checks and appends of the same "
        "forms, no HTTP, SQLite) measured at the start of that run. Server and "
        "client share the cores; every form is a signed `results.tally/v1` (made "
        f"and signed before the clock starts) sent in batches of {BATCH}, "
        f"{SENDERS} in flight, and its receipt verified by the client. The "
        "recaps of the five ballots are built side by side, their regions read "
        "through a read-only server of the same database (`saksi serve "
        "--read-only`, as the deployment guide puts reads) and the recaps sent "
        "to the writer; a row's recap time is from the first read to the last "
        "receipt (the read-only server's start-up is not in it; it runs all "
        "along, as in a deployment).",
        "",
        "| backend | measured | stations | forms | forms/s | vs ceiling "
        "| corrections | recaps | recap time | log size | "
        + ("written in |" if not prefix else "whole country at this rate |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, f in kept.items():
        if not f.get("forms"):
            continue
        rate = f["forms"] / f["forms_seconds"]
        fixes = "not reached"
        if "corrections" in f:
            per_second = f["corrections"] / f["corrections_seconds"]
            fixes = f"{f['corrections']:,} ({per_second:,.0f}/s)"
        sittings = f.get("recap_sittings", 0)
        if "recaps" in f:
            recaps = (f"{f['recaps']:,}", f"{f['recap_seconds']:,.1f} s")
            if sittings > 1:
                recaps = (f"{recaps[0]} (the last of {sittings} sittings)", recaps[1])
        elif sittings:
            recaps = (f"unfinished ({sittings} sitting{'s' * (sittings > 1)})", "")
        else:
            recaps = ("not reached", "")
        spent = f["forms_seconds"] + f.get("corrections_seconds", 0.0)
        spent += f.get("recap_seconds", 0.0)
        if prefix:
            last = f"{full_forms / rate / 60:,.0f} min for {full_forms:,} forms"
        elif f.get("complete"):
            last = f"{spent / 60:,.0f} min (forms, corrections, recaps)"
        else:
            last = "in progress"
        forms = f"{f['forms']:,}"
        if not f.get("forms_done"):
            forms += f" of {5 * f['stations']:,} so far"
        if f.get("form_sittings", 1) > 1:
            forms += f" ({f['form_sittings']} sittings)"
        size = f"{f['size']:,}" if "size" in f else ""
        lines.append(
            f"| {backend} | {f['measured']} | {f['stations']:,} | {forms} "
            f"| {rate:,.0f} | {rate / f['ceiling']:.2f} ({f['ceiling']:,.0f}/s) "
            f"| {fixes} | {recaps[0]} | {recaps[1]} | {size} | {last} |"
        )
    lines += [
        "",
        "Query latency (p50 / p99), one client, at the writer; `first read` is "
        "the first results read after the recaps, which brings the writer's "
        "results index up to the log (the read-only server read the recaps):",
        "",
    ]
    for backend, f in kept.items():
        if "latency" in f:
            lines.append(
                f"* {backend}: "
                + "; ".join(
                    f"{k} {p50 * 1000:.0f} / {p99 * 1000:.0f} ms"
                    for k, (p50, p99) in f["latency"].items()
                )
            )
    machines = sorted({f"{f['machine']}" for f in kept.values()})
    lines += ["", "Machine: " + "; ".join(machines) + "."]
    write_section(out, _section(prefix), "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
