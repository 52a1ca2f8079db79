"""Provisioning benchmark: recap keys a second, as an operator runs the command.

    python -m bench.provision                    # the 2019 extract: 1,336 regions
    python -m bench.provision --regions 91000    # the 2024 table, provinces
                                                 # smallest first (all: the country)
    python -m bench.provision --kdf sensitive --key-rate 1000

A throwaway SQLite log in a temporary directory: ``saksi init``, ``saksi serve``
on 127.0.0.1 (default settings: the admin key may submit 200 records a second,
``--key-rate`` changes it), the region registry loaded with ``saksi regions
load`` (the 2019 KawalPemilu extract, or the 2024 table for whole provinces);
then ``saksi keys provision --level all --prefix national`` timed as a
subprocess (everything the operator waits for: start, checks, listing, the
key files, the grants and their receipts, the manifest), then run again
(nothing left to do). The result is checked: one granted key per region with
its role and scope, one key file each that opens.

Beside it, measured in the same run: Argon2id per key file at each profile on
every core at once (what one derivation per file would cost), and opening the
key files one by one (``load_key_file``) against one ``KeyFileBatch`` (one
derivation for them all, as ``saksi results recap --keys`` does). Prints the
figures and writes them to ``BENCHMARKS.md``'s ``provision`` section (or
``--section``; ``--out`` another file), with the ratio of the run's keys/s to
one Argon2id derivation per file measured beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.http import free_port, progress, wait_ready
from bench.report import write_section
from keys.keyfile import KdfProfile, KeyFileBatch, load_key_file

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
K19 = DATA / "kawalpemilu2019" / "kawalpemilu2019_gorontalo_diy.jsonl.gz"
WILAYAH = DATA / "sirekap2024" / "sirekap_wilayah_ppwp.csv"
PASS = "provision benchmark passphrase"  # noqa: S105 (a throwaway log)
ROLES = {10: "village", 6: "district", 4: "regency", 2: "province", 0: "national"}


def _saksi(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"saksi {args[0]} {args[1]}: {done.stderr[-2000:]}")
    return done


def provinces_for(regions: int) -> tuple[list[str], int]:
    """Whole provinces of the 2024 table, smallest first, to reach ``regions``.

    Returns the province codes ([""] for the whole country) and how many
    regions (villages, districts, regencies, provinces, national) they make.
    """
    sizes: Counter[str] = Counter()
    with WILAYAH.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            code = row["kode"]
            if code.isdigit() and not code.startswith("99") and len(code) <= 10:
                sizes[code[:2]] += 1
    total = sum(sizes.values()) + 1
    if regions >= total - 1:
        return [""], total
    chosen: list[str] = []
    count = 1
    for province, size in sorted(sizes.items(), key=lambda kv: (kv[1], kv[0])):
        if count >= regions:
            break
        chosen.append(province)
        count += size
    return sorted(chosen), count


def _derive(profile: str) -> float:
    import nacl.utils

    from keys.keyfile import _derive as derive

    ops, mem = KdfProfile[profile].value
    start = time.perf_counter()
    derive(b"benchmark passphrase", nacl.utils.random(16), ops, mem)
    return time.perf_counter() - start


def per_file_kdf(cores: int) -> dict[str, float]:
    """Key files a second if each had its own Argon2id, every core busy."""
    rates = {}
    for profile, per_core in (("INTERACTIVE", 6), ("MODERATE", 2)):
        count = per_core * cores
        with ProcessPoolExecutor(cores) as pool:
            start = time.perf_counter()
            list(pool.map(_derive, [profile] * count))
            rates[profile.lower()] = count / (time.perf_counter() - start)
    return rates


def opening(out: Path, sample: int = 6) -> dict[str, float]:
    """Seconds a file: one by one (a derivation each) and through one batch."""
    files = sorted(out.glob("*.key"))
    start = time.perf_counter()
    for path in files[:sample]:
        load_key_file(path, PASS.encode())
    alone = (time.perf_counter() - start) / min(sample, len(files))
    batch = KeyFileBatch(PASS.encode())
    start = time.perf_counter()
    for path in files:
        batch.load(path)
    together = (time.perf_counter() - start) / len(files)
    return {"one_by_one": alone, "batch": together}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One benchmark run; returns the figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAKSI_")}
    env["SAKSI_KEY_PASSPHRASE"] = PASS
    if args.key_rate:
        env["SAKSI_KEY_RATE"] = str(args.key_rate)
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_before": os.getloadavg(),
        "kdf": args.kdf,
        "key_rate": args.key_rate or 200.0,
    }
    with tempfile.TemporaryDirectory(prefix="saksi-provision-") as tmp:
        log, out = Path(tmp) / "log", Path(tmp) / "recap-keys"
        db = f"sqlite:///{log / 'saksi.db'}"
        _saksi(
            "init",
            "--db",
            db,
            "--origin",
            "bench.example/provision",
            "--dir",
            str(log),
            "--kdf",
            "interactive",
            env=env,
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api",
                "serve",
                "--db",
                db,
                "--dir",
                str(log),
                "--listen",
                f"127.0.0.1:{port}",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url + "/healthz")
            remote = ["--url", url, "--log-key", str(log / "log.vkey")]
            admin = ["--key", str(log / "admin.key")]
            start = time.perf_counter()
            if args.regions is None:
                figures["registry"] = "KawalPemilu 2019 extract (Gorontalo, DIY)"
                _saksi(
                    "regions",
                    "load",
                    *remote,
                    *admin,
                    "--format",
                    "kawalpemilu2019",
                    "--path",
                    str(K19),
                    env=env,
                )
            else:
                provinces, _ = provinces_for(args.regions)
                figures["registry"] = "2024 table, " + (
                    "the whole country"
                    if provinces == [""]
                    else f"provinces {', '.join(provinces)}"
                )
                for province in provinces:
                    progress(f"regions load --prefix {province or '(all)'}")
                    _saksi(
                        "regions",
                        "load",
                        *remote,
                        *admin,
                        *(["--prefix", province] if province else []),
                        env=env,
                    )
            figures["registry_seconds"] = time.perf_counter() - start
            command = [
                "keys",
                "provision",
                *remote,
                "--admin-key",
                str(log / "admin.key"),
                "--level",
                "all",
                "--prefix",
                "national",
                "--out",
                str(out),
                "--kdf",
                args.kdf,
                "--json",
            ]
            progress("saksi " + " ".join(command))
            figures["load_during"] = os.getloadavg()
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "api", *command],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            figures["provision_seconds"] = time.perf_counter() - start
            figures["load_after"] = os.getloadavg()
            if done.returncode != 0:
                raise RuntimeError(f"provision exited {done.returncode}: {done.stdout}")
            result = json.loads(done.stdout)
            figures["regions"] = result["regions"]
            figures["keys_per_second"] = (
                result["granted"] / figures["provision_seconds"]
            )
            start = time.perf_counter()
            again = json.loads(_saksi(*command, env=env).stdout)
            figures["rerun_seconds"] = time.perf_counter() - start
            if again["created"] or again["granted"]:
                raise RuntimeError(f"the second run did something: {again}")
            figures.update(_check(url, out, result["regions"]))
            figures["opening_seconds"] = opening(out)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    figures["per_file_kdf_keys_per_second"] = per_file_kdf(os.cpu_count() or 1)
    return figures


def _check(url: str, out: Path, regions: int) -> dict[str, Any]:
    """Every region's key granted with its role and scope, and its file there."""
    manifest = json.loads((out / "manifest.json").read_text())["keys"]
    keys = httpx.get(url + "/v1/keys", timeout=120).json()["keys"]
    granted = {k["keyid"]: k for k in keys if k["revoked_at"] is None}
    for code, entry in manifest.items():
        scope = "" if code == "national" else code
        grant = granted[entry["keyid"]]
        if (grant["role"], grant["scope"]) != (ROLES[len(scope)], scope):
            raise RuntimeError(f"{code}: granted {grant['role']} {grant['scope']}")
        if not (out / entry["file"]).is_file():
            raise RuntimeError(f"{code}: no {entry['file']}")
    if len(manifest) != regions:
        raise RuntimeError(f"{len(manifest)} keys in the manifest for {regions}")
    return {"checked": len(manifest)}


def report(figures: dict[str, Any], command: str) -> str:
    """The figures as text."""
    regions = figures["regions"]
    seconds = figures["provision_seconds"]
    per_file = figures["per_file_kdf_keys_per_second"]
    opened = figures["opening_seconds"]

    def load(values: tuple[float, float, float]) -> str:
        return " ".join(f"{v:.2f}" for v in values)

    rate = figures["keys_per_second"]
    lines = [
        f"Command: {command}",
        f"Machine: {figures['machine']}; load average before "
        f"{load(figures['load_before'])}, at the start {load(figures['load_during'])}"
        f", after {load(figures['load_after'])}",
        f"Registry: {figures['registry']} "
        f"(loaded in {figures['registry_seconds']:.1f} s)",
        f"saksi keys provision --level all --prefix national --kdf {figures['kdf']}: "
        f"{regions:,} regions in {seconds:.1f} s = {rate:.1f} keys/s "
        f"(server key rate {figures['key_rate']:.0f}/s); "
        f"all {figures['checked']:,} checked granted, with their files",
        f"  again (nothing to do): {figures['rerun_seconds']:.1f} s",
        f"  at this rate: 1,336 keys in {1336 / rate:.0f} s, "
        f"91,947 in {91947 / rate / 60:.1f} min"
        + (
            f"; the server's key rate bounds every grant past its burst of "
            f"1,000: 91,947 take at least "
            f"{(91947 - 1000) / figures['key_rate'] / 60:.1f} min at "
            f"{figures['key_rate']:.0f}/s"
            if figures["key_rate"] < 2 * rate
            else ""
        ),
        "Per-file Argon2id instead (every core busy): "
        + ", ".join(
            f"{name} {rate:.1f} keys/s (1,336 in {1336 / rate:.0f} s, "
            f"91,947 in {91947 / rate / 3600:.1f} h)"
            for name, rate in per_file.items()
        ),
        f"Opening the key files ({figures['kdf']}): one by one "
        f"{opened['one_by_one'] * 1000:.0f} ms a file "
        f"(91,947 in {91947 * opened['one_by_one'] / 3600:.1f} h), "
        f"one batch {opened['batch'] * 1000:.2f} ms a file",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run and print."""
    parser = argparse.ArgumentParser(prog="python -m bench.provision")
    parser.add_argument(
        "--regions",
        type=int,
        help="regions from the 2024 table, whole provinces smallest first "
        "(default: the 2019 extract's 1,336); 91947 or more: the country",
    )
    parser.add_argument(
        "--kdf", default="moderate", choices=["interactive", "moderate", "sensitive"]
    )
    parser.add_argument(
        "--key-rate", type=float, help="the server's SAKSI_KEY_RATE (default 200)"
    )
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--section", default="provision")
    args = parser.parse_args(argv)
    figures = run(args)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m bench.provision", *given])
    text = report(figures, command.strip())
    print(text)
    print(json.dumps(figures, default=list), file=sys.stderr)
    per_file = figures["per_file_kdf_keys_per_second"].get(figures["kdf"])
    ratio = (
        f"\n\nRatio: {figures['keys_per_second'] / per_file:.0f}x the keys/s of one "
        f"{figures['kdf']} Argon2id derivation per file on every core."
        if per_file
        else ""
    )
    write_section(
        args.out,
        args.section,
        "## Provisioning recap keys: saksi keys provision\n\n"
        + "\n".join(f"* {line}" for line in text.splitlines())
        + ratio,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
