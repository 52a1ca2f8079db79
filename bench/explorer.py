"""Explorer benchmark: the results page's views, timed in a real browser.

    python -m bench.explorer --dir LOG_DIR [--db URL] [--trials 3] [--out BENCHMARKS.md]

``LOG_DIR`` is a log ``bench.election`` wrote (``--prefix ''`` for the whole
country, or a province), served read-only by ``saksi serve`` on 127.0.0.1.
Debian's Chromium (headless, through chromium-driver) opens each view as a
first visit (a fresh profile: nothing kept, no consistency proof to ask for)
and again as a returning visitor (the same profile: the consistency proof from
the checkpoint it kept). The page marks when a view is on screen
(``saksi:rendered``) and when every proof on it has checked out
(``saksi:verified``); the figures are those marks from the start of the
navigation, and the bytes every request of the visit transferred
(Resource Timing). Views: the national one, the first province's, a
village's (a proof per polling station) and a polling station's (its
provenance with every revision, signer and proof). The baseline, measured in
the same run: the view's main API read (its JSON, fetched from Python with no
browser and no verification), the floor any page showing that data pays.
Writes BENCHMARKS.md's ``explorer`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.http import free_port, start_server, wait_ready
from bench.report import machine, write_section

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

TIMING = """
const done = arguments[0];
const wait = () => {
  const v = performance.getEntriesByName('saksi:verified:1')[0]
    || performance.getEntriesByName('saksi:failed:1')[0];
  if (!v) return setTimeout(wait, 20);
  const r = performance.getEntriesByName('saksi:rendered:1')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const bytes = performance.getEntriesByType('resource')
    .reduce((n, e) => n + e.transferSize, nav ? nav.transferSize : 0);
  done({rendered: r ? r.startTime : null, settled: v.startTime,
        state: v.name.split(':')[1], bytes,
        requests: performance.getEntriesByType('resource').length + 1});
};
wait();
"""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def browser(profile: Path):  # returns a selenium WebDriver
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.set_script_timeout(300)
    return driver


def views(url: str) -> list[tuple[str, str, str]]:
    """(name, route, main read): national, the first province, a (corrected)
    station's village, and that station."""

    def get(path: str) -> dict:
        with urllib.request.urlopen(url + path, timeout=600) as response:  # noqa: S310
            return json.load(response)

    national = get("/v1/results/ppwp/national")
    province = national["children"][0]["code"]
    corrections = get(f"/v1/results/ppwp/{province}/corrections")["corrections"]
    stations = [
        c["subject"] for c in corrections if c["subject"].startswith("results/")
    ]
    if stations:
        station = stations[0].rsplit("/", 1)[1]
    else:
        village = get(f"/v1/results/ppwp/{province}/below/village?limit=1")
        station = village["regions"][0]["children"][0]["code"]
    village = station[:10]
    return [
        ("national", "ppwp/national", "/v1/results/ppwp/national"),
        (f"province {province}", f"ppwp/{province}", f"/v1/results/ppwp/{province}"),
        (f"village {village}", f"ppwp/{village}", f"/v1/results/ppwp/{village}"),
        (
            f"polling station {station}",
            f"ppwp/{station}",
            f"/v1/subjects/results/ppwp/{station}",
        ),
    ]


def api_read(url: str, path: str, times: int) -> float:
    """The median seconds of one GET of ``path`` (after one to warm it)."""
    samples = []
    for n in range(times + 1):
        t = time.perf_counter()
        with urllib.request.urlopen(url + path, timeout=600) as response:  # noqa: S310
            response.read()
        if n:
            samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def measure(url: str, route: str, trials: int) -> dict[str, list[dict]]:
    """Each trial: a first visit in a fresh profile, then a return in the same one."""
    out: dict[str, list[dict]] = {"first": [], "return": []}
    for _ in range(trials):
        with tempfile.TemporaryDirectory(prefix="saksi-explorer-") as profile:
            driver = browser(Path(profile))
            try:
                for visit in ("first", "return"):
                    driver.get(f"{url}/explorer/#/{route}")
                    out[visit].append(driver.execute_async_script(TIMING))
                    driver.get("about:blank")
            finally:
                driver.quit()
    return out


def summary(samples: list[dict], read: float) -> str:
    """A table row's cells; ``read`` the baseline (seconds of the main API read)."""
    rendered = statistics.median(s["rendered"] for s in samples)
    settled = statistics.median(s["settled"] for s in samples)
    states = {s["state"] for s in samples}
    kb = statistics.median(s["bytes"] for s in samples) / 1024
    requests = statistics.median(s["requests"] for s in samples)
    return (
        f"{rendered:,.0f} ms | {settled:,.0f} ms | {'/'.join(sorted(states))} | "
        f"{kb:,.0f} KB | {requests:,.0f} | {read * 1000:,.1f} ms | "
        f"{settled / (read * 1000):,.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="the log's directory")
    parser.add_argument("--db", help="its database URL, if not the SQLite default")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not (CHROMIUM and DRIVER):
        print("bench.explorer: needs chromium and chromium-driver", file=sys.stderr)
        return 2
    if args.trials < 1:
        parser.error("--trials must be 1 or more")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAKSI_")}
    flags = ["--read-only", *(["--db", args.db] if args.db else [])]
    server = start_server(args.dir, port, *flags, env=env, output=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        t = time.perf_counter()
        wait_ready(url + "/healthz", timeout=1800)
        size = json.load(urllib.request.urlopen(url + "/healthz"))["tree_size"]  # noqa: S310
        progress(f"serving {size:,} entries after {time.perf_counter() - t:.1f} s")
        rows = []
        for name, route, main_read in views(url):
            progress(f"{name}: {args.trials} first visits and returns")
            found = measure(url, route, args.trials)
            read = api_read(url, main_read, 2 * args.trials)
            for visit in ("first", "return"):
                cells = summary(found[visit], read)
                rows.append(f"| {name} | {visit} visit | {cells} |")
    finally:
        server.terminate()
        server.wait(timeout=120)
    text = "\n".join(
        [
            "## The results explorer in a browser",
            "",
            f"Command: `python -m bench.explorer --dir {args.dir} --trials "
            f"{args.trials}` (writes this section), on a log of {size:,} entries "
            "served read-only on 127.0.0.1.",
            "",
            machine(
                "Debian's Chromium, headless; the medians of the trials. "
                "First render: the view on screen; verified: every proof on it "
                "checked in the browser (checkpoint signature and cosignatures, "
                "consistency, each record's inclusion), both from the start of "
                "the navigation. A first visit keeps nothing; a return asks a "
                "consistency proof from the checkpoint it kept. Baseline, in "
                "the same run: the view's main API read alone (its JSON from "
                "Python: no browser, nothing verified); the last column is "
                "verified over it."
            ),
            "",
            "| view | visit | first render | verified | state | transferred | "
            "requests | main API read | verified / read |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "explorer", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
