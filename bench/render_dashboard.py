"""
Draw captured StatsD packets of the ``mineru.*`` metrics as a dashboard (an SVG; standard library only).

    python bench/render_dashboard.py PACKETS.jsonl OUT.svg [--title TEXT]

``PACKETS.jsonl`` holds one ``{"t": seconds, "packet": "name,tag=value:value|type"}`` a line, as
``bench_account_dashboard.py`` writes it (InfluxDB-style tags, Airflow's ``statsd_influxdb_enabled``).
Counters are summed per tag set, gauges show their last value, timers every sample.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter, defaultdict
from html import escape
from pathlib import Path

WIDTH, PANEL_W, PANEL_H, GAP = 960, 300, 190, 15
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]


def parse(line: str) -> tuple[str, dict[str, str], float, str]:
    """``name,tag=value:value|type`` → name (without the ``airflow.`` prefix), tags, value, type."""
    head, _, rest = line.partition(":")
    value, _, kind = rest.partition("|")
    name, *tags = head.split(",")
    return name.removeprefix("airflow."), dict(t.split("=", 1) for t in tags), float(value), kind


class Svg:
    def __init__(self, height: int) -> None:
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
            f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        ]

    def text(self, x: float, y: float, words: str, size: int = 12, anchor: str = "start", **style: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in style.items())
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(words)}</text>'
        )

    def rect(self, x: float, y: float, w: float, h: float, fill: str, **style: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in style.items())
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{extra}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#999") -> None:
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>')

    def panel(self, x: float, y: float, title: str, metric: str) -> None:
        self.rect(x, y, PANEL_W, PANEL_H, "#f7f7f7", stroke="#dddddd", rx="4")
        self.text(x + 10, y + 20, title, 14, font_weight="bold")
        self.text(x + 10, y + 36, metric, 10, fill="#777777")

    def done(self) -> str:
        return "\n".join([*self.parts, "</svg>"]) + "\n"


def bars(svg: Svg, x: float, y: float, values: dict[str, float], unit: str = "") -> None:
    """Horizontal bars, largest first, inside a panel whose top-left is (x, y)."""
    top = max(values.values(), default=1) or 1
    for i, (label, value) in enumerate(sorted(values.items(), key=lambda kv: -kv[1])[:6]):
        row = y + 52 + i * 22
        svg.text(x + 10, row + 12, label, 11)
        svg.rect(x + 120, row, max(1.0, 140 * value / top), 16, COLORS[i % len(COLORS)])
        svg.text(x + 124 + 140 * value / top, row + 12, f"{value:g}{unit}", 11)
    if not values:
        svg.text(x + 10, y + 70, "no packets", 11, fill="#777777")


def samples(svg: Svg, x: float, y: float, values: list[float]) -> None:
    """A strip of timer samples (seconds) with min / median / max."""
    if not values:
        svg.text(x + 10, y + 70, "no packets", 11, fill="#777777")
        return
    low, high = 0.0, max(values) * 1.1 or 1.0
    axis_y = y + 140
    svg.line(x + 15, axis_y, x + PANEL_W - 15, axis_y)
    for tick in range(5):
        value = high * tick / 4
        tx = x + 15 + (PANEL_W - 30) * tick / 4
        svg.line(tx, axis_y, tx, axis_y + 4)
        svg.text(tx, axis_y + 16, f"{value:.1f} s", 10, "middle")
    column: Counter[int] = Counter()
    for value in sorted(values):
        px = x + 15 + (PANEL_W - 30) * (value - low) / (high - low)
        slot = round(px / 6)
        column[slot] += 1
        svg.parts.append(
            f'<circle cx="{px:.1f}" cy="{axis_y - 6 - 7 * (column[slot] - 1):.1f}" r="3" fill="{COLORS[0]}"/>'
        )
    svg.text(
        x + 10,
        y + 58,
        f"n={len(values)}  min {min(values):.2f} s  median {statistics.median(values):.2f} s  max {max(values):.2f} s",
        11,
    )


def render(rows: list[dict], title: str) -> str:
    counters: dict[str, Counter[str]] = defaultdict(Counter)
    gauges: dict[str, dict[str, float]] = defaultdict(dict)
    timers: dict[str, list[float]] = defaultdict(list)
    timeline: dict[str, list[float]] = defaultdict(list)
    common: dict[str, str] = {}
    for row in rows:
        name, tags, value, kind = parse(row["packet"])
        timeline[name].append(float(row["t"]))
        for key in ("conn_id", "flavor", "model"):
            if key in tags:
                common.setdefault(key, tags[key])
        if kind == "c":
            label = tags.get("outcome") or tags.get("status") or tags.get("kind") or "total"
            if name.endswith("http_retries"):
                label = f"status {label}"
            counters[name][label] += value
        elif kind == "g":
            gauges[name][tags.get("kind", "value")] = value
        elif kind == "ms":
            timers[name].append(value / 1000.0)
    height = 120 + 2 * (PANEL_H + GAP) + 40 + 22 * max(1, len(timeline)) + 40
    svg = Svg(height)
    svg.text(GAP, 28, title, 18, font_weight="bold")
    svg.text(GAP, 48, "tags: " + ", ".join(f"{k}={v}" for k, v in common.items()), 11, fill="#555555")
    xs = [GAP + i * (PANEL_W + GAP) for i in range(3)]
    y1, y2 = 64, 64 + PANEL_H + GAP

    svg.panel(xs[0], y1, "Documents by outcome", "mineru.documents (counter, tag outcome)")
    bars(svg, xs[0], y1, dict(counters["mineru.documents"]))

    svg.panel(xs[1], y1, "Pages and budget", "mineru.pages_submitted · mineru.budget_remaining")
    pages = sum(counters["mineru.pages_submitted"].values())
    svg.text(xs[1] + 20, y1 + 100, f"{pages:g}", 40, font_weight="bold", fill=COLORS[0])
    svg.text(xs[1] + 20, y1 + 120, "pages submitted", 11)
    left = gauges["mineru.budget_remaining"].get("pages")
    svg.text(xs[1] + 170, y1 + 100, "—" if left is None else f"{left:g}", 40, font_weight="bold", fill=COLORS[1])
    svg.text(xs[1] + 170, y1 + 120, "pages left today", 11)

    svg.panel(xs[2], y1, "Token", "mineru.token_expiry_days (gauge)")
    days = gauges["mineru.token_expiry_days"].get("value")
    svg.text(xs[2] + 20, y1 + 100, "—" if days is None else f"{days:g}", 40, font_weight="bold", fill=COLORS[4])
    svg.text(xs[2] + 20, y1 + 120, "days until the token expires", 11)

    svg.panel(xs[0], y2, "Queue time (submit → running)", "mineru.queue_time (timer)")
    samples(svg, xs[0], y2, timers["mineru.queue_time"])
    svg.panel(xs[1], y2, "Parse time (running → done)", "mineru.parse_time (timer)")
    samples(svg, xs[1], y2, timers["mineru.parse_time"])
    svg.panel(xs[2], y2, "Retries and rate waits", "mineru.http_retries (status) · mineru.rate_limited (kind)")
    waits = {f"waited: {k}": v for k, v in counters["mineru.rate_limited"].items()}
    bars(svg, xs[2], y2, {**dict(counters["mineru.http_retries"]), **waits})

    top = y2 + PANEL_H + GAP + 20
    end = max((max(ts) for ts in timeline.values()), default=1.0)
    start = min((min(ts) for ts in timeline.values()), default=0.0)
    span = max(end - start, 1e-3)
    svg.text(
        GAP,
        top,
        f"When each packet arrived (seconds since the run started; {len(rows)} packets)",
        13,
        font_weight="bold",
    )
    left_x, right_x = GAP + 200, WIDTH - GAP - 10
    for i, (name, ts) in enumerate(sorted(timeline.items())):
        row = top + 18 + i * 22
        svg.text(GAP, row + 4, name, 11)
        svg.line(left_x, row, right_x, row, "#e0e0e0")
        for t in ts:
            px = left_x + (right_x - left_x) * (t - start) / span
            svg.rect(px - 1, row - 6, 2, 12, COLORS[i % len(COLORS)])
    axis = top + 18 + len(timeline) * 22
    for tick in range(6):
        px = left_x + (right_x - left_x) * tick / 5
        svg.text(px, axis + 4, f"{start + span * tick / 5:.0f} s", 10, "middle", fill="#555555")
    return svg.done()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packets")
    parser.add_argument("out")
    parser.add_argument("--title", default="One run's mineru.* metrics, as StatsD received them")
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.packets).read_text().splitlines() if line.strip()]
    Path(args.out).write_text(render(rows, args.title))


if __name__ == "__main__":
    main()
