"""Small SVG charts for the audit report: drawn here, inline, with no library.

Each function returns one ``<svg>`` element as text, sized in CSS pixels, with
a ``<title>`` for screen readers. Values are drawn as given: the charts add no
figure of their own (axis ticks are the data's own extremes). Every text that
comes from the log is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bars", "heat_map", "line", "stacked_bars"]

PALETTE = ("#1f5fa8", "#d9822b", "#3a8f4b", "#8e44ad", "#7f8c8d", "#c0392b")
_FONT = 'font-family="DejaVu Sans, sans-serif" font-size="10"'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {_FONT}>'
        f"{escape(text)}</text>"
    )


def line(title: str, labels: Sequence[str], values: Sequence[int]) -> str:
    """A line of ``values`` over ``labels`` (e.g. the log's size by hour)."""
    width, height, left, bottom = 640, 220, 70, 40
    plot_w, plot_h = width - left - 20, height - bottom - 20
    top = max(values, default=0) or 1
    n = max(len(values) - 1, 1)
    points = " ".join(
        f"{left + plot_w * i / n:.1f},{20 + plot_h * (1 - v / top):.1f}"
        for i, v in enumerate(values)
    )
    body = [
        f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" '
        f'y2="{20 + plot_h}" stroke="#444"/>',
        f'<line x1="{left}" y1="20" x2="{left}" y2="{20 + plot_h}" stroke="#444"/>',
        f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" '
        f'points="{points}"/>',
        _text(left - 4, 24, f"{top:,}", "end"),
        _text(left - 4, 20 + plot_h, "0", "end"),
    ]
    if len(values) <= 60:  # few points: each one shown
        body += [
            f'<circle cx="{left + plot_w * i / n:.1f}" '
            f'cy="{20 + plot_h * (1 - v / top):.1f}" r="2.5" fill="{PALETTE[0]}"/>'
            for i, v in enumerate(values)
        ]
    if labels:
        body.append(_text(left, height - 18, labels[0]))
        body.append(_text(left + plot_w, height - 18, labels[-1], "end"))
    return _svg(width, height, title, body)


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> str:
    """One bar per label, stacked by series (name, values), with a legend."""
    width, height, left, bottom = 640, 240, 70, 60
    plot_w, plot_h = width - left - 20, height - bottom - 20
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    step = plot_w / max(len(labels), 1)
    body = [
        f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" '
        f'y2="{20 + plot_h}" stroke="#444"/>',
        _text(left - 4, 24, f"{top:,}", "end"),
        _text(left - 4, 20 + plot_h, "0", "end"),
    ]
    for i in range(len(labels)):
        y = 20.0 + plot_h
        for s, (_, values) in enumerate(series):
            h = plot_h * values[i] / top
            if h > 0:
                y -= h
                body.append(
                    f'<rect x="{left + i * step:.2f}" y="{y:.2f}" '
                    f'width="{max(step * 0.9, 0.5):.2f}" height="{h:.2f}" '
                    f'fill="{PALETTE[s % len(PALETTE)]}"/>'
                )
    if labels:
        body.append(_text(left, 20 + plot_h + 14, labels[0]))
        body.append(_text(left + plot_w, 20 + plot_h + 14, labels[-1], "end"))
    x = left
    for s, (name, _) in enumerate(series):
        body.append(
            f'<rect x="{x}" y="{height - 18}" width="10" height="10" '
            f'fill="{PALETTE[s % len(PALETTE)]}"/>'
        )
        body.append(_text(x + 14, height - 9, name))
        x += 14 + 7 * len(name) + 16
    return _svg(width, height, title, body)


def bars(title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value), value shown at the bar's end."""
    row, left = 16, 60
    width, height = 640, 20 + row * len(items)
    # Shares are drawn against the whole (100%), counts against the largest.
    top = 1.0 if unit == "%" else max((v for _, v in items), default=0) or 1
    plot_w = width - left - 80
    body = []
    for i, (label, value) in enumerate(items):
        y = 10 + i * row
        body.append(_text(left - 4, y + 11, label, "end"))
        body.append(
            f'<rect x="{left}" y="{y + 2}" width="{plot_w * value / top:.2f}" '
            f'height="{row - 4}" fill="{PALETTE[0]}"/>'
        )
        shown = f"{value:.1%}" if unit == "%" else f"{value:,}"
        body.append(_text(left + plot_w * value / top + 4, y + 11, shown))
    return _svg(width, height, title, body)


def heat_map(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[int]],
    *,
    cell: int = 12,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """A grid of counts, darker for more (rows top to bottom as given)."""
    left, top_margin = 70, 10
    width = max(left + cell * len(columns) + 20, 260)
    height = top_margin + cell * len(rows) + 44
    top = max((v for r in cells for v in r), default=0) or 1
    body = []
    for r, name in enumerate(rows):
        y = top_margin + r * cell
        body.append(_text(left - 4, y + cell - 2, name, "end"))
        for c, value in enumerate(cells[r]):
            if value:
                shade = 0.12 + 0.88 * value / top
                body.append(
                    f'<rect x="{left + c * cell}" y="{y}" width="{cell}" '
                    f'height="{cell}" fill="{PALETTE[0]}" '
                    f'fill-opacity="{shade:.3f}"/>'
                )
    grid_w, grid_h = cell * len(columns), cell * len(rows)
    body.append(
        f'<rect x="{left}" y="{top_margin}" width="{grid_w}" height="{grid_h}" '
        f'fill="none" stroke="#444"/>'
    )
    if columns:
        body.append(_text(left, top_margin + grid_h + 14, columns[0]))
        if grid_w >= 160:  # room for the last label too
            body.append(
                _text(left + grid_w, top_margin + grid_h + 14, columns[-1], "end")
            )
    if x_label:
        body.append(
            _text(left + grid_w / 2, top_margin + grid_h + 30, x_label, "middle")
        )
    if y_label:  # beside the top row, whose name is left empty for it
        body.append(_text(4, top_margin + cell - 2, y_label))
    return _svg(width, height, title, body)
