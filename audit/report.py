"""The audit report: one self-contained HTML page (and its PDF) of an audit's figures.

``render`` turns what ``saksi-verify audit --json`` reported for a log (and the
sample files ``saksi-verify sample`` drew) into a page a person reads and signs:
what was checked and the result of every numbered check; the log's growth and
the submissions per hour per province; completeness, corrections, flags and the
forensics with their plots and methods; the key registry's events; the
checkpoint and its witnesses; the audit samples and their seeds; and the
fitness-test checklist of SECURITY.md's controls with this log's evidence.

The page computes no figure: every number in it is a value of the audit's JSON,
shown where an element names its place (``data-figure="checks.3.checked"``),
so a test reads each one back and compares it with the verifier's output. The
page loads nothing (a Content-Security-Policy forbids it), holds no script,
and escapes every text that comes from the log. Headings are in English and
Indonesian.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from audit import charts
from audit.fitness import Control

__all__ = ["FINDINGS_SHOWN", "UNITS_SHOWN", "figure_value", "render"]

FINDINGS_SHOWN = 100
UNITS_SHOWN = 200
FINGERPRINTS_SHOWN = 6
_NOT_FAILURES = ("arithmetic", "stale-recaps")
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; color: #111;
       max-width: 190mm; margin: 0 auto; line-height: 1.35; }
h1 { font-size: 18pt; margin: 0 0 4pt; }
h2 { font-size: 13pt; margin: 18pt 0 6pt; border-bottom: 1px solid #999;
     break-after: avoid; }
h2 .id, h1 .id { font-weight: normal; color: #555; font-size: 0.8em; }
h3 { font-size: 11pt; margin: 10pt 0 4pt; break-after: avoid; }
table { border-collapse: collapse; margin: 4pt 0 8pt; font-size: 8.5pt; }
th, td { border: 1px solid #bbb; padding: 2pt 4pt; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
.verdict { font-size: 16pt; font-weight: bold; padding: 6pt 10pt;
           display: inline-block; margin: 6pt 0; }
.pass { background: #dff0d8; color: #1d5b1d; }
.fail { background: #f8d7da; color: #8a1c24; }
.flag { background: #fff3cd; color: #6b4e00; }
.mono, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt;
             word-break: break-all; white-space: pre-wrap; }
.note { color: #444; font-size: 8.5pt; }
.nw { white-space: nowrap; }
.units { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt;
         word-spacing: 4pt; }
table.fitness { table-layout: fixed; width: 100%; }
table.fitness th:nth-child(1) { width: 17%; }
table.fitness th:nth-child(2) { width: 33%; }
table.fitness th:nth-child(3) { width: 30%; }
table.fitness th:nth-child(4) { width: 20%; }
section { break-before: page; }
section.first { break-before: auto; }
svg { display: block; margin: 4pt 0; max-width: 100%; height: auto; }
"""


def figure_value(data: Any, path: str) -> Any:  # noqa: ANN401
    """The value at a dotted ``path`` ("checks.3.checked") of the report's data."""
    value = data
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _format(value: Any, kind: str) -> str:  # noqa: ANN401
    if value is None:
        return "\u2013"  # an en dash: no value
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)  # text (a file may hold text where a number goes)
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "p":
        return f"{value:.2g}"
    if kind == "int":
        return f"{value:,}"
    return str(value)


class _Page:
    """The page being written, with the data its figures are read from."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.out: list[str] = []

    def fig(self, path: str, kind: str = "int") -> str:
        """A figure: the value at ``path``, marked with its place."""
        value = figure_value(self.data, path)
        return (
            f'<span data-figure="{escape(path)}" data-format="{kind}">'
            f"{escape(_format(value, kind))}</span>"
        )

    def add(self, *parts: str) -> None:
        self.out.extend(parts)

    def table(
        self,
        head: Sequence[str],
        rows: Sequence[Sequence[str]],
        numeric: Sequence[bool] = (),
        cls: str = "",
    ) -> None:
        """A table whose cells are already HTML (figures or escaped text)."""
        right = list(numeric) + [False] * (len(head) - len(numeric))
        cells = "".join(
            f"<th{' class=n' if r else ''}>{escape(h)}</th>"
            for h, r in zip(head, right, strict=True)
        )
        klass = f' class="{cls}"' if cls else ""
        self.add(f"<table{klass}><thead><tr>{cells}</tr></thead><tbody>")
        for row in rows:
            self.add(
                "<tr>"
                + "".join(
                    f"<td{' class=n' if r else ''}>{c}</td>"
                    for c, r in zip(row, right, strict=True)
                )
                + "</tr>"
            )
        self.add("</tbody></table>")


def _section(page: _Page, anchor: str, english: str, indonesian: str) -> None:
    cls = ' class="first"' if anchor == "checks" else ""
    page.add(
        f'<section id="{anchor}"{cls}><h2>{escape(english)} '
        f'<span class="id">/ {escape(indonesian)}</span></h2>'
    )


def _end(page: _Page) -> None:
    page.add("</section>")


def _header(page: _Page, title: str, generated: str) -> None:
    data = page.data
    passed = data.get("passed", False)
    page.add(
        f"<h1>{escape(title)} <span class=id>/ Laporan audit</span></h1>",
        f'<p>Log <b class="mono">{escape(str(data["origin"]))}</b>: '
        f"{page.fig('tree_size')} entries, root "
        f'<span class="mono">{page.fig("root", "text")}</span>.</p>',
        f'<div class="verdict {"pass" if passed else "fail"}">'
        + (
            "VERIFIED / TERVERIFIKASI: every check passed"
            if passed
            else "VERIFICATION FAILED / GAGAL: see the failing checks"
        )
        + "</div>",
        f'<p class="note">Generated {escape(generated)} from the report of '
        "<span class=mono>saksi-verify audit --json</span> for this log. Every "
        "figure in this report is a value of that report; the page computes none. "
        "Flags are for a person to look at; none is evidence of fraud by itself. "
        "/ Setiap angka berasal dari laporan verifikator; tanda bukan bukti "
        "kecurangan.</p>",
    )


def _checks(page: _Page) -> None:
    _section(page, "checks", "What was checked", "Yang diperiksa")
    rows = []
    for i, check in enumerate(page.data["checks"]):
        status = check["status"]
        cls = {"pass": "pass", "fail": "fail", "flagged": "flag"}.get(status, "")
        rules = check.get("rules") or {}
        rules_text = ", ".join(
            f"{escape(rule)} {page.fig(f'checks.{i}.rules.{rule}')}" for rule in rules
        )
        rows.append(
            [
                page.fig(f"checks.{i}.number"),
                f'<span class="nw">{escape(check["check"])}</span>',
                escape(check.get("meaning", ""))
                + (f"<br>{rules_text}" if rules else ""),
                f'<span class="{cls}">{escape(status)}</span>',
                page.fig(f"checks.{i}.checked"),
                page.fig(f"checks.{i}.findings"),
            ]
        )
    page.table(
        ["#", "check", "what it means", "result", "checked", "findings"],
        rows,
        [True, False, False, False, True, True],
    )
    _end(page)


def _timeline(page: _Page) -> None:
    timeline = page.data.get("timeline") or {"hours": [], "provinces": {}}
    hours = timeline["hours"]
    _section(page, "timeline", "The log over time", "Log dari waktu ke waktu")
    labels = [h["hour"] or "?" for h in hours]
    page.add(
        "<h3>Size of the log at the end of each hour (UTC) / Ukuran log</h3>",
        charts.line("entries in the log by hour", labels, [h["size"] for h in hours]),
        "<h3>Entries logged per hour, by kind / Entri per jam</h3>",
        charts.stacked_bars(
            "entries logged per hour by kind",
            labels,
            [
                (kind, [h[kind] for h in hours])
                for kind in ("forms", "recaps", "keys", "election_data", "other")
            ],
        ),
    )
    rows = [
        [escape(h["hour"] or "unknown")]
        + [
            page.fig(f"timeline.hours.{i}.{k}")
            for k in ("entries", "forms", "recaps", "keys", "election_data", "size")
        ]
        for i, h in enumerate(hours)
    ]
    page.table(
        ["hour (UTC)", "entries", "forms", "recaps", "keys", "election data", "size"],
        rows,
        [False] + [True] * 6,
    )
    provinces = timeline["provinces"]
    page.add(
        "<h3>Submissions per hour per province / Kiriman per jam per provinsi</h3>"
    )
    names = sorted(provinces)
    page.add(
        charts.heat_map(
            "records per hour per province",
            names,
            labels,
            [[provinces[p].get(h["hour"], 0) for h in hours] for p in names],
            cell=max(2, min(12, 560 // max(len(labels), 1))),
            x_label="hour (UTC)",
        ),
        '<p class="note">Darker cells: more records about the province in that '
        "hour (forms, recaps, region records). The counts are in the JSON "
        "report's <span class=mono>timeline.provinces</span>.</p>",
    )
    _end(page)


def _counts_by_province(
    page: _Page, provinces: Mapping[str, Any], field: str, head: tuple[str, str]
) -> bool:
    """A table of each province's counts in ``field`` (by name); False if none.

    ``head``: the names' and the counts' column headings.
    """
    rows = [
        [
            escape(code),
            escape(name),
            page.fig(f"forensics.provinces.{code}.{field}.{name}"),
        ]
        for code, p in provinces.items()
        for name in p[field]
    ]
    if rows:
        page.table(["province", *head], rows, [False, False, True])
    return bool(rows)


def _regions(page: _Page) -> None:
    found = page.data.get("forensics") or {}
    provinces = found.get("provinces", {})
    _section(page, "regions", "Completeness, corrections and flags",
             "Kelengkapan, koreksi dan tanda")  # fmt: skip
    if "decrease_count" not in found:
        page.add("<p>This audit report has no election forensics.</p>")
        _end(page)
        return
    ballots = ("ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk")
    rows = []
    for code in provinces:
        base = f"forensics.provinces.{code}"
        rows.append(
            [escape(code), page.fig(f"{base}.stations")]
            + [page.fig(f"{base}.reported.{b}") for b in ballots]
            + [
                page.fig(f"{base}.completeness.ppwp", "pct"),
                page.fig(f"{base}.stale_recaps"),
                page.fig(f"{base}.arithmetic_flags"),
            ]
        )
    page.add("<h3>By province / Per provinsi</h3>")
    page.table(
        ["province", "stations", *ballots, "ppwp complete", "stale recaps", "flags"],
        rows,
        [False] + [True] * 9,
    )
    page.add(
        charts.bars(
            "presidential forms logged over stations listed, by province",
            [(code, p["completeness"]["ppwp"] or 0.0) for code, p in provinces.items()],
            "%",
        )
    )
    page.add("<h3>Corrections by reason / Koreksi menurut alasan</h3>")
    if not _counts_by_province(
        page, provinces, "corrections", ("reason", "corrections")
    ):
        page.add("<p>No corrections in the log. / Tidak ada koreksi.</p>")
    page.add(
        "<h3>Totals that went down with no correction / Total turun tanpa koreksi</h3>",
        f"<p>{page.fig('forensics.decrease_count')} forms.</p>",
    )
    rows = [
        [
            page.fig(f"forensics.decreases.{i}.index"),
            f'<span class="mono">{escape(d["subject"])}</span>',
            page.fig(f"forensics.decreases.{i}.before"),
            page.fig(f"forensics.decreases.{i}.after"),
        ]
        for i, d in enumerate(found.get("decreases", []))
    ]
    if rows:
        page.table(
            ["entry", "form", "before", "after"], rows, [True, False, True, True]
        )
    regencies = found.get("regencies", {})
    page.add("<h3>By regency / Per kabupaten/kota</h3>")
    page.table(
        [
            "regency",
            "stations",
            "ppwp forms",
            "ppwp complete",
            "stale recaps",
            "last digits p",
        ],
        [
            [
                escape(code),
                page.fig(f"forensics.regencies.{code}.stations"),
                page.fig(f"forensics.regencies.{code}.reported.ppwp"),
                page.fig(f"forensics.regencies.{code}.completeness.ppwp", "pct"),
                page.fig(f"forensics.regencies.{code}.stale_recaps"),
                page.fig(f"forensics.regencies.{code}.last_digits.p_value", "p"),
            ]
            for code in regencies
        ],
        [False, True, True, True, True, True],
    )
    _end(page)


def _forensics(page: _Page) -> None:
    found = page.data.get("forensics") or {}
    provinces = found.get("provinces", {})
    _section(page, "forensics", "Election forensics", "Forensik pemilu")
    if "decrease_count" not in found:
        page.add("<p>This audit report has no election forensics.</p>")
        _end(page)
        return
    flagged = found.get("flagged", [])
    page.add(
        f'<p class="note">{escape(found.get("methods", {}).get("caution", ""))}</p>',
        "<h3>Flagged for a person to look at / Ditandai untuk diperiksa</h3>",
    )
    if flagged:
        page.table(
            ["region", "statistic", "figure"],
            [
                [
                    escape(item["region"]),
                    escape(item["statistic"]),
                    page.fig(f"forensics.flagged.{i}.p_value", "p")
                    if "p_value" in item
                    else page.fig(f"forensics.flagged.{i}.corner_share", "pct"),
                ]
                for i, item in enumerate(flagged)
            ],
            [False, False, True],
        )
    else:
        page.add("<p>Nothing flagged. / Tidak ada yang ditandai.</p>")
    page.add("<h3>Last digits of candidate counts / Digit terakhir</h3>")
    page.table(
        ["province", "digits tested", "chi-square", "p-value", "flagged"],
        [
            [
                escape(code),
                page.fig(f"forensics.provinces.{code}.last_digits.n"),
                page.fig(f"forensics.provinces.{code}.last_digits.chi_square", "text"),
                page.fig(f"forensics.provinces.{code}.last_digits.p_value", "p"),
                "yes" if p["last_digits"]["flagged"] else "",
            ]
            for code, p in provinces.items()
        ],
        [False, True, True, True, False],
    )
    page.add(
        "<h3>Turnout against the leader's share (election fingerprint) / "
        "Sidik jari pemilu</h3>",
        '<p class="note">Rows: turnout from 0% (top) to 100%; columns: the '
        "leading candidate's share of valid votes from 0% to 100%. Mass in the "
        "bottom-right corner is what the method flags.</p>",
    )
    shown = [
        code for code, p in provinces.items() if p["fingerprint"]["flagged"]
    ] + sorted(
        (c for c, p in provinces.items() if not p["fingerprint"]["flagged"]),
        key=lambda c: -provinces[c]["fingerprint"]["stations"],
    )
    for code in shown[:FINGERPRINTS_SHOWN]:
        fingerprint = provinces[code]["fingerprint"]
        if not fingerprint["stations"]:
            continue
        bins = fingerprint["bins"]
        page.add(
            f"<p>Province {escape(code)}: "
            f"{page.fig(f'forensics.provinces.{code}.fingerprint.stations')} stations, "
            f"{page.fig(f'forensics.provinces.{code}.fingerprint.corner_share', 'pct')}"
            " in the corner"
            + (' <span class="flag">flagged</span>' if fingerprint["flagged"] else "")
            + "</p>",
            charts.heat_map(
                f"election fingerprint, province {code}",
                # Turnout up the page, as the paper draws it: the top row is
                # the highest bin.
                [
                    f"{100 * r // bins}%" if r % 5 == 0 else ""
                    for r in reversed(range(bins))
                ],
                ["0%", *[""] * (bins - 2), "100%"],
                list(reversed(fingerprint["cells"])),
                cell=9,
                x_label="leader's share",
                y_label="turnout",
            ),
        )
    page.add(
        "<h3>Stations at the extremes / TPS ekstrem</h3>",
        f"<p>{page.fig('forensics.extreme_station_count')} stations with 100% "
        "turnout or one candidate at 100%.</p>",
    )
    _counts_by_province(page, provinces, "extremes", ("extreme", "stations"))
    page.add("<h3>Methods / Metode</h3><ul>")
    for name, text in found.get("methods", {}).items():
        page.add(f"<li><b>{escape(name)}</b>: {escape(text)}</li>")
    page.add("</ul>")
    _end(page)


def _keys(page: _Page) -> None:
    keys = page.data.get("keys")
    _section(page, "keys", "The key registry's events", "Peristiwa registri kunci")
    if not keys:
        page.add("<p>This audit report has no key events.</p>")
        _end(page)
        return
    page.add(
        f"<p>Admin threshold {page.fig('keys.threshold')}; "
        f"{page.fig('keys.admins')} admin keys in force. Grants "
        f"{page.fig('keys.counts.grant')}, rotations "
        f"{page.fig('keys.counts.rotation')}, "
        f"changed grants {page.fig('keys.counts.change')}, revocations "
        f"{page.fig('keys.counts.revocation')}.</p>"
    )
    page.table(
        ["role", "keys granted"],
        [
            [escape(r), page.fig(f"keys.grants_by_role.{r}")]
            for r in keys["grants_by_role"]
        ],
        [False, True],
    )
    rows = []
    for i, event in enumerate(keys["events"]):
        what = {
            "genesis": f"genesis: {event.get('admins', 0)} admins, threshold "
            f"{event.get('threshold')}",
            "revocation": f"revoked ({event.get('reason', '')})",
        }.get(event["kind"], f"{event['kind']}: {event.get('role', '')} "
              f"{event.get('scope', '')} ({event.get('holder', '')})")  # fmt: skip
        rows.append(
            [
                page.fig(f"keys.events.{i}.index"),
                escape(event["logged_at"]),
                escape(what),
                f'<span class="mono">{escape(event.get("keyid", "")[:16])}</span>',
                page.fig(f"keys.events.{i}.signers"),
            ]
        )
    page.add(
        "<h3>Events other than ordinary grants / Peristiwa selain pemberian biasa</h3>"
    )
    page.table(["entry", "logged at", "event", "key", "signatures"], rows,
               [True, False, False, False, True])  # fmt: skip
    _end(page)


def _checkpoint(page: _Page) -> None:
    _section(page, "witnesses", "Checkpoint and witnesses", "Checkpoint dan saksi")
    data = page.data
    page.add(
        "<p>The audit was proven against this checkpoint, signed by the log:</p>",
        f"<pre>{escape(data.get('checkpoint', ''))}</pre>",
    )
    witnesses = data.get("witnesses") or {}
    if witnesses:
        page.table(
            ["witness", "cosigned at (UTC)"],
            [
                [
                    escape(name),
                    escape(
                        dt.datetime.fromtimestamp(when, dt.UTC).strftime(
                            "%Y-%m-%d %H:%M:%S"
                        )
                    ),
                ]
                for name, when in sorted(witnesses.items())
            ],
        )
    else:
        page.add(
            '<p class="flag">No witness was asked for: the audit trusted the '
            "log's own signature. Run it with --witness to require cosignatures. / "
            "Tanpa saksi.</p>"
        )
    _end(page)


def _samples(page: _Page) -> None:
    _section(page, "samples", "Audit samples", "Sampel audit")
    samples = page.data.get("samples") or []
    if not samples:
        page.add(
            "<p>No sample file was given. / Tidak ada sampel. Draw one with "
            "<span class=mono>saksi-verify sample</span>.</p>"
        )
    for i, sample in enumerate(samples):
        base = f"samples.{i}"
        plan = sample["plan"]
        size = sample["size"]
        page.add(
            f"<h3>{escape(plan['subject'])} "
            f"(entry {page.fig(f'{base}.plan.index')})</h3>",
            f"<p>{escape(plan['body'].get('purpose', ''))}: "
            f"{escape(plan['body']['ballot'])}, by {escape(plan['body']['unit'])}. "
            f"Seed: the root of the first {page.fig(f'{base}.seed.tree_size')} "
            f'entries, <span class="mono">{page.fig(f"{base}.seed.root", "text")}'
            "</span>; seed "
            f'<span class="mono">{page.fig(f"{base}.seed.seed", "text")}</span>.</p>',
            f"<p>Method {escape(size['method'])}: n = {page.fig(f'{base}.size.n')}, "
            f"drawn {page.fig(f'{base}.size.drawn')} of "
            f"{page.fig(f'{base}.population.units')} units.</p>",
        )
        if "margin" in size:
            page.add(
                f"<p>Margin {page.fig(f'{base}.size.margin.votes')} votes; "
                f"{page.fig(f'{base}.size.stations_to_change_outcome')} stations "
                "could change the outcome; risk limit "
                f"{page.fig(f'{base}.size.risk_limit', 'text')}, at most "
                f"{page.fig(f'{base}.size.max_shift', 'text')} of a station's votes "
                "moved.</p>"
            )
        page.table(
            ["stratum", "units", "drawn"],
            [
                [
                    escape(row["stratum"] or "all"),
                    page.fig(f"{base}.strata.{j}.units"),
                    page.fig(f"{base}.strata.{j}.drawn"),
                ]
                for j, row in enumerate(sample["strata"])
            ],
            [False, True, True],
        )
        units = sample["units"][:UNITS_SHOWN]
        page.add(
            '<p class="units">'
            + " ".join(escape(u["unit"]) for u in units)
            + (" …" if len(sample["units"]) > UNITS_SHOWN else "")
            + "</p>",
            '<p class="note">Anyone recomputes it: <span class=mono>saksi-verify '
            f"sample --plan {page.fig(f'{base}.plan.index', 'text')} "
            "--check FILE</span>.</p>",
        )
    _end(page)


def _fitness(page: _Page, checklist: Sequence[Control]) -> None:
    _section(page, "fitness", "Fitness-test checklist", "Daftar periksa uji kelaikan")
    if not checklist:
        page.add("<p>SECURITY.md was not found: pass --security FILE.</p>")
        _end(page)
        return
    page.add(
        '<p class="note">Each control of SECURITY.md, the tests that prove it, and '
        "what this report shows of it for this log.</p>"
    )
    index = {c["check"]: i for i, c in enumerate(page.data["checks"])}
    rows = []
    for control in checklist:
        shown = []
        for name in control.evidence:
            if name in index:
                i = index[name]
                shown.append(
                    f"check {page.fig(f'checks.{i}.number')} {escape(name)}: "
                    f"{escape(page.data['checks'][i]['status'])}, "
                    f"{page.fig(f'checks.{i}.checked')} checked, "
                    f"{page.fig(f'checks.{i}.findings')} findings"
                )
            else:
                shown.append(f'<a href="#{escape(name)}">{escape(name)}</a> above')
        rows.append(
            [
                escape(control.threat),
                escape(control.control[:300])
                + ("…" if len(control.control) > 300 else ""),
                "<br>".join(
                    f"<span class=mono>{escape(t)}</span>" for t in control.tests
                ),
                "<br>".join(shown) or "operator's side: the tests named",
            ]
        )
    page.table(["threat", "control", "tests", "in this report"], rows, cls="fitness")
    _end(page)


def _findings(page: _Page) -> None:
    _section(page, "findings", "Findings", "Temuan")
    findings = list(page.data.get("findings") or [])
    failures = [f for f in findings if f["check"] not in _NOT_FAILURES]
    shown = (failures + [f for f in findings if f["check"] in _NOT_FAILURES])[
        :FINDINGS_SHOWN
    ]
    total = sum(c["findings"] for c in page.data["checks"])
    page.add(
        f"<p>{len(shown):,} of the findings (failures first); the JSON report "
        f"lists all.</p>"
        if total > len(shown)
        else "<p>Every finding:</p>"
        if shown
        else "<p>No findings. / Tidak ada temuan.</p>"
    )
    if shown:
        page.table(
            ["entry", "check", "subject", "detail"],
            [
                [
                    escape(f"{f['index']:,}"),
                    escape(f["check"] + (f"/{f['rule']}" if f.get("rule") else "")),
                    f'<span class="mono">{escape(f.get("subject") or "")}</span>',
                    escape(f["detail"]),
                ]
                for f in shown
            ],
            [True, False, False, False],
        )
    _end(page)


def render(
    audit: Mapping[str, Any],
    *,
    samples: Sequence[Mapping[str, Any]] = (),
    checklist: Sequence[Control] = (),
    title: str = "Audit report",
    generated: str = "",
) -> str:
    """The report's HTML for ``audit`` (``saksi-verify audit --json``'s object)."""
    page = _Page({**audit, "samples": list(samples)})
    page.add(
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
    )
    _header(page, title, generated)
    _checks(page)
    _timeline(page)
    _regions(page)
    _forensics(page)
    _keys(page)
    _checkpoint(page)
    _samples(page)
    _fitness(page, checklist)
    _findings(page)
    page.add("</body></html>")
    return "\n".join(page.out)
