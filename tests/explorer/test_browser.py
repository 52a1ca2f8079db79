"""The results explorer in a real browser: Debian's Chromium, driven by Selenium.

A log written by ``saksi demo`` (real 2024 stations, recaps village to
national, a correction) is served by ``saksi serve`` on 127.0.0.1; the browser
reads it through a proxy the test controls, which can make "the server" lie:
a tampered entry, a tampered view, a forked checkpoint (signed with the log's
own key), a rolled-back checkpoint, and a witness policy the checkpoints do
not meet. The page must show the verified state for the honest log and a
failure, with evidence to download, for each lie.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import sqlite3
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from bench.explorer import browser as chromium
from bench.explorer import main as bench_explorer
from bench.nginx import find_nginx, nginx_serving
from keys import load_key_file
from saksi_client import SaksiClient
from tests import oracle
from tests.helpers import ROOT, cli_env, granted_key, init_log, run_saksi, serving
from verifier.checkpoint import Checkpoint, parse_checkpoint
from verifier.cosignature import cosigner_key
from verifier.note import VerifierKey, parse_note, sign_note
from verifier.tlog_proof import TlogProof, format_tlog_proof

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
PASS = "explorer-browser-passphrase"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class Liar:
    """A proxy in front of ``saksi serve`` that tells the lie it is set to."""

    def __init__(self, upstream: str, lies: dict[str, Any], directory: Path) -> None:
        self.served = upstream
        self.directory = directory
        self.upstream = upstream.removeprefix("http://")
        self.lies = lies
        self.mode: str | None = None
        liar = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, kind, body = liar.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # the page may move on before it reads

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fetch(self, path: str) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return (
                response.status,
                response.getheader("Content-Type", ""),
                response.read(),
            )
        finally:
            connection.close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        status, kind, body = self.fetch(path)
        mode, lies = self.mode, self.lies
        if mode in ("fork", "rollback") and path == "/log/checkpoint":
            return 200, kind, lies[mode]
        if mode == "quorum" and path == "/explorer/trust.json":
            trust = json.loads(body)
            trust["witnesses"] = [lies["witness"]]
            trust["quorum"] = 1
            return 200, kind, json.dumps(trust).encode()
        if mode == "unavailable" and path.startswith("/v1/proofs/export"):
            problem = (
                b'{"type": "/problems/overloaded", "status": 503, "detail": "busy"}'
            )
            return 503, "application/problem+json", problem
        if mode == "tamper-entry" and path.startswith("/v1/proofs/export"):
            head, _, rest = body.partition(b"\nindex ")
            prefix, _, extra = head.partition(b"extra ")
            entry = bytearray(base64.b64decode(extra))
            entry[-5] ^= 1  # one byte of the logged_at time
            return (
                status,
                kind,
                prefix
                + b"extra "
                + base64.b64encode(bytes(entry))
                + b"\nindex "
                + rest,
            )
        if mode == "tamper-view" and path.startswith("/v1/results/") and status == 200:
            view = json.loads(body)
            for child in view.get("children", []):
                if child.get("status") == "present":
                    child["totals"]["valid"] += 100  # a number the form does not say
                    break
            return status, kind, json.dumps(view).encode()
        if mode == "forged" and path == "/log/checkpoint":
            return 200, kind, self.forged()["note"]
        if mode == "forged" and path.startswith("/v1/proofs/export?index="):
            return 200, kind, self.forged()["proof"](int(path.rpartition("=")[2]))
        if mode == "flags" and path.startswith("/v1/results/") and status == 200:
            view = json.loads(body)
            for child in view.get("children", []):
                if child.get("status") == "present" and len(child["code"]) == 13:
                    # Hide a misread form's flags, or flag a clean one.
                    child["flags"] = (
                        []
                        if child.get("flags")
                        else [
                            {
                                "check": "votes-sum",
                                "where": "votes",
                                "detail": "made up",
                            }
                        ]
                    )
                    break
            return status, kind, json.dumps(view).encode()
        return status, kind, body

    def forged(self) -> dict[str, Any]:
        """The operator's own lie: its log admitted a form whose signature does
        not verify. The log as it is now, but for one byte of the signature on
        the first form; its checkpoint signed with the log's own key (a new
        browser has no checkpoint to compare it with, and no witness is pinned).
        """
        if "forged" not in self.lies:
            self.lies["forged"] = _forge(self.directory)
        return self.lies["forged"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def liar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Liar]:
    base = tmp_path_factory.mktemp("explorer")
    directory = base / "log"
    db = f"sqlite:///{base / 'saksi.db'}"
    init_log(directory, db, "explorer.saksi.example/log", PASS)
    with serving(directory, db, cli_env(PASS)) as url:
        done = run_saksi(
            "demo",
            "--url",
            url,
            "--dir",
            str(directory),
            "--count",
            "24",
            passphrase=PASS,
        )
        assert done.returncode == 0, done.stderr
        proxy = Liar(url, _lies(directory, base / "saksi.db"), directory)
        try:
            yield proxy
        finally:
            proxy.close()


def _lies(directory: Path, db: Path) -> dict[str, Any]:
    """A fork (the latest size, another root, signed with the log's own key),
    an older genuine checkpoint, and a witness nobody asked to cosign."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 5"
        ).fetchall()
    latest = parse_checkpoint(parse_note(rows[0][0]).text)
    signer = load_key_file(directory / "log.key", PASS.encode())
    forked = Checkpoint(latest.origin, latest.size, bytes(32), latest.extensions)
    witness = nacl.signing.SigningKey(bytes(range(32)))
    return {
        "fork": sign_note(forked.to_text(), [signer]),
        "rollback": bytes(rows[-1][0]),
        "witness": str(cosigner_key("witness.example", bytes(witness.verify_key))),
    }


def _forge(directory: Path) -> dict[str, Any]:
    """See ``Liar.forged``: the note, a tlog-proof per index, the form's route."""
    with sqlite3.connect(directory.parent / "saksi.db") as conn:
        (note,) = conn.execute(
            "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        latest = parse_checkpoint(parse_note(note).text)
        entries = [
            bytes(data)
            for (data,) in conn.execute(
                "SELECT data FROM entries WHERE idx < ? ORDER BY idx", (latest.size,)
            )
        ]
        subject, target = conn.execute(
            "SELECT subject, idx FROM records WHERE schema_name = 'results.tally/v1' "
            "ORDER BY idx LIMIT 1"
        ).fetchone()
    sig = json.loads(entries[target])["envelope"]["signatures"][0]["sig"]
    flipped = bytearray(base64.b64decode(sig))
    flipped[0] ^= 1
    entries[target] = entries[target].replace(
        sig.encode(), base64.b64encode(bytes(flipped))
    )
    hashes = [oracle.leaf(e) for e in entries]
    signer = load_key_file(directory / "log.key", PASS.encode())
    forged = Checkpoint(latest.origin, latest.size, oracle.mth(hashes), ())
    signed = sign_note(forged.to_text(), [signer])

    def proof(index: int) -> bytes:
        path = oracle.path(index, hashes)
        return format_tlog_proof(TlogProof(index, tuple(path), signed, entries[index]))

    _, ballot, station = subject.split("/")
    return {"note": signed, "proof": proof, "route": f"{ballot}/{station}"}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(tmp_path / "profile")  # what the benchmark drives
    try:
        yield driver
    finally:
        driver.quit()


def trust_state(driver: Any) -> str:
    classes = driver.find_element(By.ID, "trust").get_attribute("class")
    for state in ("verified", "failed", "checking"):
        if f"trust-{state}" in classes:
            return state
    return classes


def settled(driver: Any, timeout: float = 60) -> str:
    """Wait until the page has decided: 'verified' or 'failed'."""
    WebDriverWait(driver, timeout).until(
        lambda d: (
            trust_state(d) in ("verified", "failed")
            and d.find_element(By.ID, "main").get_attribute("aria-busy") == "false"
        )
    )
    return trust_state(driver)


def visit(driver: Any, liar: Liar, route: str) -> str:
    driver.get(f"{liar.url}/explorer/#/{route}")
    driver.refresh()  # a hash-only change would not reload the page
    state = settled(driver)
    shown = driver.find_element(By.TAG_NAME, "body").text
    assert "[object " not in shown  # an element printed as text: a page bug
    assert "undefined" not in shown
    return state


def test_a_visitor_goes_from_the_nation_to_a_polling_station_and_every_level_verifies(
    liar, browser
):
    liar.mode = None
    assert visit(browser, liar, "ppwp/national") == "verified"
    heading = browser.find_element(By.ID, "heading").text
    assert heading.startswith("Nasional")
    trail = []
    for _ in range(5):  # province, regency, district, village, station
        row = browser.find_element(By.CSS_SELECTOR, "table.children tbody tr th a")
        trail.append(row.get_attribute("href").rsplit("/", 1)[1])
        row.click()
        WebDriverWait(browser, 30).until(
            lambda d, c=trail[-1]: c in d.find_element(By.ID, "heading").text
        )
        assert settled(browser) == "verified", browser.find_element(By.ID, "trust").text
        if len(trail[-1]) == 13:
            break
    assert [len(c) for c in trail] == [2, 4, 6, 10, 13]
    # Each level above the station is named, from the registry records the
    # page proved (the demo's stations are in DKI Jakarta).
    crumbs = browser.find_element(By.ID, "crumbs").text
    assert "DKI JAKARTA (31)" in crumbs
    assert f"({trail[3]})" in crumbs
    assert crumbs.count("(") == 4  # province, regency, district, village named
    provenance = browser.find_element(By.CSS_SELECTOR, "ol.revisions").text
    assert "Revisi 0" in provenance
    assert "terbukti" in provenance
    assert "peran" in provenance  # who signed, as the key registry says
    proofs = browser.find_elements(By.CSS_SELECTOR, "ol.revisions .ok")
    assert proofs
    # The form's arithmetic, recomputed in the browser: the first station of
    # the real sample was misread (its flags are the verifier's, by name).
    arithmetic = browser.find_element(By.CSS_SELECTOR, "[aria-labelledby=arith]").text
    assert "Pemeriksaan aritmetika" in arithmetic
    assert "jumlah suara ≠ pengguna hak pilih" in arithmetic


def test_the_language_switches_and_stays(liar, browser):
    liar.mode = None
    visit(browser, liar, "ppwp/national")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id"
    assert "TERVERIFIKASI" in browser.find_element(By.ID, "trust").text
    browser.find_element(By.ID, "language").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    )
    assert settled(browser) == "verified"
    assert "VERIFIED" in browser.find_element(By.ID, "trust").text
    assert browser.find_element(By.ID, "heading").text.startswith("National")
    browser.refresh()
    assert settled(browser) == "verified"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"


def test_the_page_is_used_by_keyboard_alone(liar, browser):
    liar.mode = None
    visit(browser, liar, "ppwp/national")
    body = browser.find_element(By.TAG_NAME, "body")
    target = browser.find_element(By.CSS_SELECTOR, "table.children tbody tr th a")
    code = target.get_attribute("href").rsplit("/", 1)[1]
    focused = None
    for _ in range(40):
        body.send_keys(Keys.TAB) if focused is None else focused.send_keys(Keys.TAB)
        focused = browser.switch_to.active_element
        if focused.get_attribute("href") == target.get_attribute("href"):
            break
    else:
        pytest.fail("Tab never reached the first region's link")
    focused.send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(
        lambda d: code in d.find_element(By.ID, "heading").text
    )
    assert settled(browser) == "verified"
    # The new view's heading takes the focus, so a screen reader announces it.
    assert browser.switch_to.active_element.get_attribute("id") == "heading"
    first = browser.find_element(By.ID, "skip")
    assert first.get_attribute("href").endswith("#main")


@pytest.mark.parametrize(
    ("lie", "route", "words"),
    [
        ("tamper-entry", "ppwp/national", "tidak terbukti ada"),
        ("tamper-view", "ppwp/national", "berbeda dari catatan"),
        ("fork", "ppwp/national", "TIDAK KONSISTEN"),
        ("rollback", "ppwp/national", "LEBIH LAMA"),
        ("quorum", "ppwp/national", "tanda tangan saksi"),
        ("unavailable", "ppwp/national", "tidak mengirim bukti"),
        ("flags", "ppwp/3101011001", "berbeda dari catatan"),
    ],
)
def test_each_lie_is_shown_as_a_failure_with_its_evidence(
    liar, browser, lie, route, words
):
    liar.mode = None
    assert visit(browser, liar, route) == "verified"  # this browser has seen the log
    liar.mode = lie
    try:
        assert visit(browser, liar, route) == "failed"
    finally:
        liar.mode = None
    box = browser.find_element(By.ID, "trust")
    assert "GAGAL DIVERIFIKASI" in box.text
    assert words in box.text, box.text
    link = browser.find_element(By.ID, "evidence")
    assert link.get_attribute("download").startswith("saksi-evidence-")
    evidence = json.loads(
        browser.execute_async_script(
            "const done = arguments[1];"
            "fetch(arguments[0]).then(r => r.text()).then(done);",
            link.get_attribute("href"),
        )
    )
    kinds = ("inclusion", "mismatch", "fork", "rollback", "quorum", "unavailable")
    assert evidence["kind"] in kinds
    assert evidence["trust"]["log_key"]
    if lie in ("fork", "rollback"):
        assert evidence["seen_before"] != evidence["served"]
    if lie in ("tamper-entry", "tamper-view", "flags"):
        assert evidence["proof"].startswith("c2sp.org/tlog-proof@v1")
    if lie == "flags":
        assert "arithmetic flags" in evidence["message"]


def test_a_forged_form_in_the_signed_log_is_caught_by_its_signers_key(liar, browser):
    """The log itself lies (an operator who admitted a forged form and signed
    the tree): every proof holds, but the form's signature does not verify
    under its signer's proven grant."""
    liar.mode = "forged"
    try:
        route = liar.forged()["route"]
        assert visit(browser, liar, route) == "failed"
        box = browser.find_element(By.ID, "trust").text
        assert "log menerima catatan palsu" in box, box
        evidence = json.loads(
            browser.execute_async_script(
                "const done = arguments[1];"
                "fetch(arguments[0]).then(r => r.text()).then(done);",
                browser.find_element(By.ID, "evidence").get_attribute("href"),
            )
        )
    finally:
        liar.mode = None
    assert evidence["kind"] == "recordSignature"
    assert evidence["record"] == "results/" + route
    assert evidence["proof"].startswith("c2sp.org/tlog-proof@v1")
    assert evidence["keyid"]


AXE = Path(__file__).resolve().parent / "node_modules/axe-core/axe.min.js"


@pytest.mark.skipif(
    not AXE.exists(), reason="needs axe-core (scripts/test.sh installs it with npm)"
)
@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_axe_finds_no_serious_or_critical_violation_in_any_view(liar, browser, width):
    liar.mode = None
    browser.set_window_size(width, 1600)
    visit(browser, liar, "ppwp/national")
    station = None
    routes = ["ppwp/national"]
    for _ in range(4):
        link = browser.find_element(By.CSS_SELECTOR, "table.children tbody tr th a")
        routes.append("ppwp/" + link.get_attribute("href").rsplit("/", 1)[1])
        visit(browser, liar, routes[-1])
    station = browser.find_element(By.CSS_SELECTOR, "table.children tbody tr th a")
    routes.append("ppwp/" + station.get_attribute("href").rsplit("/", 1)[1])
    routes.append("ppwp/corrections/national")
    source = AXE.read_text(encoding="utf-8")
    for route in routes:
        assert visit(browser, liar, route) == "verified", route
        browser.execute_script(source)  # WebDriver's own channel: no page CSP applies
        found = browser.execute_async_script(
            "const done = arguments[0];"
            "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a',"
            " 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
            ".then(r => done({passes: r.passes.length, violations: r.violations.map("
            "v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
            " help: v.help}))}));"
        )
        assert found["passes"] > 10, found  # axe ran its rules on this page
        serious = [
            v for v in found["violations"] if v["impact"] in ("serious", "critical")
        ]
        assert not serious, (route, serious)


# Markup, a script, and a right-to-left override that would turn "exe.png"
# around: all of it must reach the visitor as the text it is.
HOSTILE = (
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    "\u202egnp.exe <b>bold</b>"
)


def test_hostile_text_in_the_log_is_shown_as_text_never_as_markup(
    liar, browser, tmp_path
):
    """A real correction (reason, reference) and candidate names carrying markup."""
    liar.mode = None
    url, directory = liar.served, liar.directory
    vkey = (directory / "log.vkey").read_text().strip()
    remote = ["--url", url, "--log-key", str(directory / "log.vkey")]
    admin = str(directory / "admin.key")
    client = SaksiClient(url, VerifierKey.parse(vkey))
    village = client.get("/v1/results/ppwp/national/below/village?limit=1")
    station = next(
        c for c in village["regions"][0]["children"] if c["status"] == "present"
    )
    subject = station["subject"]
    code = subject.rsplit("/", 1)[1]
    district = granted_key(
        tmp_path / "d.key", remote, admin, "district", code[:6], PASS
    )
    lists = granted_key(tmp_path / "l.key", remote, admin, "candidates", "all", PASS)
    last = client.get(f"/v1/subjects/{subject}")["revisions"][-1]
    body = json.loads(base64.b64decode(last["envelope"]["payload"]))["body"]
    fixed = {
        **{k: v for k, v in body.items() if k not in ("form", "source")},
        "stage": "authority_correction",
        "correction": {"reason_code": "plenary_decision", "reference": HOSTILE},
    }
    record = client.record(
        "results.tally/v1", subject, fixed, reason=HOSTILE, after=client.head(subject)
    )
    client.submit(client.sign(record, [load_key_file(district, PASS.encode())]))
    names = client.get("/v1/subjects/candidates/ppwp/national")["revisions"][-1]
    listed = json.loads(base64.b64decode(names["envelope"]["payload"]))["body"]
    renamed = {
        "candidates": {
            cid: {**spec, "name": f"{HOSTILE} {cid}"}
            for cid, spec in listed["candidates"].items()
        }
    }
    record = client.record(
        "candidates.change/v1",
        "candidates/ppwp/national",
        renamed,
        reason=HOSTILE,
        after=client.head("candidates/ppwp/national"),
    )
    client.submit(client.sign(record, [load_key_file(lists, PASS.encode())]))
    for route in (f"ppwp/{code}", "ppwp/corrections/national"):
        assert visit(browser, liar, route) == "verified", route
        text = browser.find_element(By.ID, "main").text
        assert '<img src=x onerror="window.__pwned=1">' in text
        assert browser.execute_script("return window.__pwned") is None
        assert not browser.find_elements(
            By.CSS_SELECTOR, "main img, main script, main b"
        )
        isolated = browser.execute_script(
            "return [...document.querySelectorAll('main bdi')]"
            ".filter(e => e.textContent.includes('\\u202e')).length"
        )
        assert isolated >= 1  # the override is held inside its own <bdi>


def test_names_are_pointed_to_not_said_by_the_server(liar):
    """/v1/regions/{region}/names gives entries; their bodies name the regions."""
    client = SaksiClient(
        liar.served,
        VerifierKey.parse((liar.directory / "log.vkey").read_text().strip()),
    )
    national = client.get("/v1/regions/national/names")
    assert national["region"] == "national"
    pointed = {n["code"]: n for n in national["names"]}
    assert "31" in pointed
    entry = client.get(f"/v1/entries/{pointed['31']['index']}")
    body = json.loads(base64.b64decode(entry["envelope"]["payload"]))["body"]
    assert entry["record"]["subject"] == pointed["31"]["subject"]
    assert body["province"] == {"code": "31", "name": "DKI JAKARTA"}
    below = client.get("/v1/regions/31/names")["names"]
    assert {n["code"] for n in below} >= {"31", "3101"}


def test_the_page_served_by_nginx_as_the_deployment_guide_says(liar, browser):
    """The shipped nginx snippet: the page written by ``saksi publish
    --explorer`` beside the tiles, /v1/ and /log/ passed to the server; the
    page verifies through it."""
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    liar.mode = None
    public = Path(tempfile.mkdtemp(prefix="saksi-explorer-nginx-"))
    public.chmod(0o755)  # nginx runs as nobody under root
    try:
        site = public / "site"
        done = run_saksi(
            "publish", "--dir", str(liar.directory),
            "--db", f"sqlite:///{liar.directory.parent / 'saksi.db'}",
            "--out", str(public / "tiles"), "--once", "--explorer", str(site),
            passphrase=None,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"the results explorer is in {site}" in done.stdout
        assert json.loads((site / "trust.json").read_bytes()) == json.loads(
            _fetch(liar.served + "/explorer/trust.json")
        )
        snippet = public / "saksi-explorer.conf"
        shipped = (ROOT / "deploy/nginx/saksi-explorer.conf").read_text()
        snippet.write_text(shipped.replace("/var/www/saksi-explorer/", f"{site}/"))
        upstream = liar.served.removeprefix("http://")
        extra = f"    upstream saksi_readers {{ server {upstream}; }}"
        with nginx_serving(binary, public, public / "run", snippet, extra) as url:
            page = urllib.request.urlopen(url + "/explorer/")  # noqa: S310
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            assert page.headers["Content-Type"].startswith("text/html")
            browser.get(f"{url}/explorer/#/ppwp/national")
            assert settled(browser) == "verified"
            assert browser.find_element(By.ID, "heading").text.startswith("Nasional")
    finally:
        shutil.rmtree(public, ignore_errors=True)


def test_the_benchmark_times_every_view_small(liar, tmp_path, capsys):
    """``python -m bench.explorer`` on this log, one trial: the same code the
    whole-country figures come from, so that it cannot rot (no time asserted)."""
    out = tmp_path / "BENCHMARKS.md"
    db = f"sqlite:///{liar.directory.parent / 'saksi.db'}"
    code = bench_explorer(
        ["--dir", str(liar.directory), "--db", db, "--trials", "1", "--out", str(out)]
    )
    assert code == 0
    section = out.read_text()
    rows = [
        line
        for line in section.splitlines()
        if " first visit | " in line or " return visit | " in line
    ]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows[::2]]
    assert names[:2] == ["national", "province 31"]
    village, station = names[2].split()[-1], names[3].split()[-1]
    assert names[2:] == [f"village {village}", f"polling station {station}"]
    assert station.startswith(village)
    assert len(station) == 13
    assert len(rows) == 8  # a first visit and a return for each view
    for row in rows:
        cells = row.split(" | ")
        assert cells[4] == "verified", row
        assert cells[-1].endswith("x |"), row  # over the view's own API read
    assert "<!-- explorer:end -->" in section
    assert "| view | visit |" in capsys.readouterr().out


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:  # noqa: S310
        return response.read()
