"""SVG charts of `compare`'s results, written by hand (no plotting library).

One file per scenario: side by side, the latency percentiles of each server (p50, p99, p99.9),
the server's CPU per message and its system calls per message, each bar the median over the
rounds with a whisker from the smallest to the largest round. Bars are horizontal, one group per
server, so long server names fit and the eye compares lengths.
"""

import html
import math
import os
import re

PANEL_W = 330
LABEL_W = 95
BAR_H = 14
GAP = 6
TOP = 46
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"]

# (title, [(column, legend)], logarithmic): percentiles span orders of magnitude, so the
# latency panel's axis is logarithmic (from 1 µs); the others start at zero.
PANELS = [
    ("latency (µs, log scale)", [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")],
     True),
    ("server CPU per message (µs)", [("cpu_us_per_msg", None)], False),
    ("system calls per message", [("syscalls_per_msg", None)], False),
]


def _fmt(v):
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _panel(x0, title, series, servers, summary, log_scale):
    """One panel: for each server, one bar per series (column)."""
    present = [(c, leg) for c, leg in series if any(c in summary[s] for s in servers)]
    if not present:
        return "", 0
    top = max((summary[s][c]["max"] for s in servers for c, _ in present if c in summary[s]),
              default=0) or 1.0
    width = PANEL_W - LABEL_W - 45
    out = [f'<text x="{x0 + 4}" y="20" font-weight="bold">{html.escape(title)}</text>']
    for i, (_, leg) in enumerate(present):
        if leg:
            lx = x0 + LABEL_W + i * 60
            out.append(f'<rect x="{lx}" y="28" width="10" height="10" fill="{COLORS[i]}"/>'
                       f'<text x="{lx + 14}" y="37" font-size="11">{leg}</text>')
    y = TOP
    for s in servers:
        group_h = len(present) * BAR_H
        out.append(f'<text x="{x0 + LABEL_W - 6}" y="{y + group_h / 2 + 4}" '
                   f'text-anchor="end">{html.escape(s)}</text>')
        for i, (c, _) in enumerate(present):
            st = summary[s].get(c)
            if st:
                def at(v):
                    if log_scale:
                        return width * math.log10(max(v, 1.0)) / max(math.log10(top), 1e-9)
                    return width * v / top
                w = at(st["median"])
                bx = x0 + LABEL_W
                out.append(f'<rect x="{bx}" y="{y + 1}" width="{w:.1f}" height="{BAR_H - 2}" '
                           f'fill="{COLORS[i]}"/>')
                lo, hi = bx + at(st["min"]), bx + at(st["max"])
                mid = y + BAR_H / 2
                out.append(f'<path d="M{lo:.1f},{mid}H{hi:.1f}M{lo:.1f},{mid - 4}V{mid + 4}'
                           f'M{hi:.1f},{mid - 4}V{mid + 4}" stroke="#222" fill="none"/>')
                out.append(f'<text x="{max(hi, bx + w) + 4:.1f}" y="{mid + 4}" '
                           f'font-size="11">{_fmt(st["median"])}</text>')
            y += BAR_H
        y += GAP * 2
    return "\n".join(out), y


def scenario_svg(title, summary, servers):
    """The SVG text for one scenario, or None when it has none of the figures drawn."""
    parts, height, x = [], 0, 0
    for ptitle, series, log_scale in PANELS:
        body, h = _panel(x, ptitle, series, servers, summary, log_scale)
        if body:
            parts.append(body)
            height = max(height, h)
            x += PANEL_W
    if not parts:
        return None
    height += 22
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x}" height="{height}" '
            f'font-family="sans-serif" font-size="12">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) +
            f'\n<text x="4" y="{height - 6}" font-size="11" fill="#555">'
            f'{html.escape(title)}; bars: median of the rounds, whiskers: min–max</text>\n'
            "</svg>\n")


def write_charts(out, directory):
    """Writes one SVG per scenario of `out` (compare's results by table title) into
    `directory`; returns the paths written."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for title, result in out.items():
        summary = result.get("summary") or {}
        servers = list(summary)
        svg = scenario_svg(title, summary, servers) if servers else None
        if not svg:
            continue
        name = re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].lower()).strip("-")
        path = os.path.join(directory, f"{name}.svg")
        with open(path, "w") as f:
            f.write(svg)
        written.append(path)
    return written
