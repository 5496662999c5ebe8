"""Charts as inline SVG strings: nothing is loaded from outside the page."""

from __future__ import annotations

import math
from html import escape

PALETTE = ["#2f7cf6", "#f59e0b", "#16a34a", "#8b5cf6", "#dc2626", "#0ea5e9"]
LABEL_W = 40


def stacked_bars(
    labels: list[str],
    series: list[tuple[str, list[int]]],
    *,
    line: tuple[str, list[int]] | None = None,
    width: int = 720,
    height: int = 240,
) -> str:
    """Columns per label, stacked by series; an optional line drawn over them."""
    pad_l, pad_r, pad_t, pad_b = 36, 12, 16, 42
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = max([*totals, *(line[1] if line else []), 1])
    step_y = max(1, round(top / 4))
    peak = -(-top // step_y) * step_y  # the axis ends on a tick at or above the tallest bar
    step = plot_w / max(len(labels), 1)
    bar = max(step * 0.62, 2)
    # As many dates as fit: one takes about LABEL_W of the width.
    stride = max(1, math.ceil(len(labels) * LABEL_W / plot_w))
    parts = [_svg_open(width, height, "按天新增（柱）与完结（线）")]
    for tick in range(0, peak + 1, step_y):
        y = pad_t + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>'
        )
        parts.append(
            f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick}</text>'
        )
    for i, label in enumerate(labels):
        x = pad_l + i * step + (step - bar) / 2
        base = float(pad_t + plot_h)
        for j, (name, values) in enumerate(series):
            h = plot_h * values[i] / peak
            if h > 0:
                base -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(label)} {escape(name)} {values[i]}</title></rect>'
                )
        if (len(labels) - 1 - i) % stride == 0:  # the newest day always has its date
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - pad_b + 16}" text-anchor="middle" class="axis">{escape(label)}</text>'
            )
    if line is not None:
        points = " ".join(
            f"{pad_l + i * step + step / 2:.1f},{pad_t + plot_h - plot_h * v / peak:.1f}"
            for i, v in enumerate(line[1])
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1f2329" stroke-width="2"/>')
    legend = [*(name for name, _ in series), *([line[0]] if line else [])]
    parts += _legend(legend, pad_l, height - 10, with_line=line is not None)
    parts.append("</svg>")
    return "".join(parts)


def hbars(items: list[tuple[str, int]], *, width: int = 360, row: int = 26, title: str = "") -> str:
    """Horizontal bars, largest first (top reasons, pending by path)."""
    height = max(len(items), 1) * row + 8
    peak = max([n for _, n in items] + [1])
    label_w = 110
    parts = [_svg_open(width, height, title)]
    for i, (label, n) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 48) * n / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" class="label">{escape(label[:10])}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" rx="3" fill="{PALETTE[0]}"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="label">{n}</text>')
    if not items:
        parts.append(
            f'<text x="{width / 2}" y="20" text-anchor="middle" class="axis">暂无数据</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _legend(names: list[str], x: float, y: float, *, with_line: bool) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        is_line = with_line and i == len(names) - 1
        color = "#1f2329" if is_line else PALETTE[i % len(PALETTE)]
        shape = (
            f'<line x1="{x}" x2="{x + 12}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2"/>'
            if is_line
            else f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>'
        )
        parts.append(shape + f'<text x="{x + 16}" y="{y}" class="axis">{escape(name)}</text>')
        x += 24 + 13 * len(name)
    return parts
