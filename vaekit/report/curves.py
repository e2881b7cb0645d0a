"""Training curves as inline SVG: one panel per term, every run on the same axes, train solid and
validation dashed, a hover value on every point, and the training events (resumed, rollback...) marked."""
from __future__ import annotations

import math
from html import escape
from typing import List, Sequence, Tuple

from ..plots.curves import LABELS, _terms

WIDTH, HEIGHT = 440, 270
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 16, 40
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")  # matplotlib's tab10, so that a run has the same colour in the SVG and the PNG plots


def run_colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def by_epoch(rows: List[dict]) -> List[dict]:
    """One row per epoch, the last one written (a resumed run writes an epoch again), in epoch order."""
    rows_of = {}
    for i, row in enumerate(rows):
        rows_of[row.get("epoch", i + 1)] = row
    return [rows_of[e] for e in sorted(rows_of)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def _points(rows: List[dict], key: str) -> List[Tuple[float, float]]:
    return [(float(r["epoch"]), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))
            and not isinstance(r.get(key), bool) and math.isfinite(r[key]) and "epoch" in r]


def _panel(term: str, runs: Sequence[Tuple[str, List[dict], List[dict]]]) -> str:
    """One term's SVG: ``runs`` are (name, rows by epoch, event rows)."""
    lines = {(i, split): _points(rows, f"{split}_{term}") for i, (_, rows, _) in enumerate(runs)
             for split in ("train", "val")}
    xs = [x for pts in lines.values() for x, _ in pts] + [float(e["epoch"]) for _, _, ev in runs for e in ev
                                                          if isinstance(e.get("epoch"), (int, float))]
    ys = [y for pts in lines.values() for _, y in pts]
    if not ys:
        return ""
    xt = nice_ticks(min(xs), max(xs)) if max(xs) - min(xs) >= 5 else list(range(int(min(xs)), int(max(xs)) + 1))
    yt = nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = min(xt[0], min(xs)), max(xt[-1], max(xs)), yt[0], yt[-1]
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def sy(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)

    out = [f'<svg class="curve" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'role="img" aria-label="{escape(term)} by epoch">']
    for y in yt:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>'
                   f'<text class="tick" x="{LEFT - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.4g}</text>')
    for x in xt:
        out.append(f'<text class="tick" x="{sx(x):.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text class="axis" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle">epoch'
               f'</text><text class="axis" x="12" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 12 {TOP + (HEIGHT - TOP - BOTTOM) / 2})">'
               f'{escape(LABELS.get(term, term + " (per example)"))}</text>')
    for i, (name, _, events) in enumerate(runs):
        for e in events:
            if isinstance(e.get("epoch"), (int, float)):
                x = sx(float(e["epoch"]))
                tip = f"{name}: {e['event']} at epoch {e['epoch']}" + (f", step {e['step']}" if "step" in e else "")
                out.append(f'<line class="event" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
                           f'stroke="{run_colour(i)}" data-tip="{escape(tip)}"/>'
                           f'<text class="event-label" x="{x + 2:.1f}" y="{TOP + 9}" data-tip="{escape(tip)}">'
                           f'{escape(str(e["event"]))}</text>')
    for (i, split), pts in lines.items():
        if not pts:
            continue
        name, colour = runs[i][0], run_colour(i)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="5 3"' if split == "val" else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
        out += [f'<circle class="pt" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.2" fill="{colour}" '
                f'data-tip="{escape(f"{name} · {split} {term} · epoch {x:g}: {y:.6g}")}"/>' for x, y in pts]
    return "\n".join(out + ["</svg>"])


def curves_html(runs: Sequence[Tuple[str, List[dict]]]) -> str:
    """The curves section's body for ``runs``: (name, metrics.jsonl rows with the event rows)."""
    prepared = []
    for name, rows in runs:
        events = [r for r in rows if "event" in r]
        prepared.append((name, by_epoch([r for r in rows if "event" not in r]), events))
    terms = _terms([r for _, rows, _ in prepared for r in rows])
    panels = [p for p in (_panel(t, prepared) for t in terms) if p]
    if not panels:
        return '<p class="why">No training curves yet: no epoch has finished.</p>'
    legend = " ".join(f'<span class="key" style="color:{run_colour(i)}">&#9632; {escape(name)}</span>'
                      for i, (name, _, _) in enumerate(prepared)) if len(prepared) > 1 else ""
    events = sorted({e["event"] for _, _, ev in prepared for e in ev})
    note = (f"Solid: training, dashed: validation. Vertical lines mark the events ({escape(', '.join(events))}); "
            "hover a point or a line for its value.") if events else \
        "Solid: training, dashed: validation; hover a point for its value. No events (resumes, rollbacks) happened."
    return f'<p>{legend}</p><div class="panels">{"".join(panels)}</div><p class="note">{note}</p>'

