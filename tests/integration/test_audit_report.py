"""The audit report of the real 2024 sample, as an auditor makes and reads it.

A fresh log served on 127.0.0.1 with DKI Jakarta's region table, the
presidential candidates and the published forms, and an audit sample drawn by
``saksi-verify sample``. ``saksi audit report`` audits the log itself (through
the verifier) and writes the HTML and its PDF (headless Chromium). Every figure
in the page is read back and compared with what ``saksi-verify audit --json``
reports for the same log, run separately; the page loads nothing; the PDF's
text holds the verdict, the checks and the sample, its fonts are embedded, and
every page turns into a picture with ``pdftoppm``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tests.helpers import dki_election, granted_key, run_saksi, run_verify

PASS = "audit-report-passphrase"

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("pdftoppm")),
    reason="needs Debian's chromium and poppler-utils (.ci/run installs them)",
)


def saksi(*args: str) -> subprocess.CompletedProcess[str]:
    return run_saksi(*args, passphrase=PASS, timeout=600)


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return run_verify(*args, timeout=600)


class Figures(HTMLParser):
    """Every ``data-figure`` element's path, format and text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self._open: list[tuple[str, str]] = []
        self._text: list[str] = []
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(k, v or "") for k, v in attrs]
        named = dict(attrs)
        if "data-figure" in named:
            self._open.append((named["data-figure"], named["data-format"]))
            self._text = []

    def handle_data(self, data):
        self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "span" and self._open:
            path, kind = self._open.pop()
            self.found.append((path, kind, "".join(self._text)))


def resolve(data, path: str):
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def shown(value, kind: str) -> str:
    """How the report must print ``value`` (written here, not imported)."""
    if value is None:
        return "\u2013"
    return {
        "int": lambda v: f"{v:,}",
        "pct": lambda v: f"{100 * v:.1f}%",
        "p": lambda v: f"{v:.2g}",
        "text": str,
    }[kind](value)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """(the verifier's audit JSON, the sample file, the report directory)."""
    base = tmp_path_factory.mktemp("audit-report")
    with dki_election(base, "report.saksi.example/pemilu2024", PASS) as served:
        directory, _, url, remote, keys = served
        admin = str(directory / "admin.key")
        vkey = str(directory / "log.vkey")
        planned = saksi(
            "audit", "plan", *remote, "--key", str(keys["auditor"]), "--name",
            "report-recount", "--region", "31", "--strata", "4", "--seed-after", "1",
            "--json",
        )  # fmt: skip
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)["index"]
        for n in range(2):
            granted_key(base / f"grown-{n}.key", remote, admin, "tps", "3171", PASS)
        drawn = verify(
            "sample", "--log", url, "--key", vkey, "--plan", str(plan),
            "--out", str(base / "sample.json"), "--json",
        )  # fmt: skip
        assert drawn.returncode == 0, drawn.stderr
        audited = verify(
            "audit", "--log", url, "--key", vkey, "--json",
            "--state", str(base / "observer"),
        )  # fmt: skip
        assert audited.returncode == 0, audited.stderr
        made = saksi(
            "audit", "report", "--log", url, "--key", vkey,
            "--sample", str(base / "sample.json"), "--out", str(base / "report"),
            "--state", str(base / "reporter"), "--json",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["verified"] is True
    return (
        json.loads(audited.stdout),
        json.loads((base / "sample.json").read_text()),
        base / "report",
    )


def test_every_figure_in_the_page_is_the_verifiers(reported):
    audit, sample, out = reported
    page = Figures()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    data = {**audit, "samples": [sample]}
    assert len(page.found) > 150
    for path, kind, text in page.found:
        assert text == shown(resolve(data, path), kind), path
    paths = {path for path, _, _ in page.found}
    # Every numbered check, both figures; the timeline; the forensics; the
    # keys; the sample: each section shows the verifier's numbers.
    for i in range(len(audit["checks"])):
        assert {f"checks.{i}.checked", f"checks.{i}.findings"} <= paths
    assert "timeline.hours.0.entries" in paths
    assert "forensics.provinces.31.completeness.ppwp" in paths
    assert "forensics.provinces.31.last_digits.p_value" in paths
    assert "keys.counts.grant" in paths
    assert "samples.0.size.n" in paths
    assert f"samples.0.strata.{len(sample['strata']) - 1}.drawn" in paths


def test_the_page_loads_nothing_and_runs_nothing(reported):
    _, _, out = reported
    html = (out / "report.html").read_text(encoding="utf-8")
    page = Figures()
    page.feed(html)
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not [k for k, _ in page.attributes if k == "src" or k.startswith("on")]
    # No attribute names a place to fetch from (an SVG's xmlns names, not loads).
    assert all(
        not v.startswith(("http:", "https:", "//"))
        for k, v in page.attributes
        if k != "xmlns"
    )
    assert "url(" not in html


def test_the_pdf_reads_as_the_page_and_embeds_its_fonts(reported, tmp_path):
    audit, sample, out = reported
    pdf = out / "report.pdf"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
        check=True, timeout=120,
    ).stdout  # fmt: skip
    assert "VERIFIED / TERVERIFIKASI" in text
    assert f"{audit['tree_size']:,} entries" in text
    words = re.sub(r"\s+", "", text)  # a table cell may wrap a name
    for check in audit["checks"]:
        assert check["check"] in words
    assert "Fitness-test checklist" in text
    assert "Daftar periksa uji kelaikan" in text
    assert sample["plan"]["subject"] in text
    assert sample["units"][0]["unit"] in text
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()[2:]
    assert fonts
    assert all(line.split()[-5] == "yes" for line in fonts), fonts  # emb
    pages = int(
        next(
            line.split()[-1]
            for line in subprocess.run(
                ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True
            ).stdout.splitlines()
            if line.startswith("Pages:")
        )
    )
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=300,
    )
    pictures = sorted(tmp_path.glob("page-*.png"))
    assert len(pictures) == pages >= 5
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pictures)
