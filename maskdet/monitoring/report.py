"""report.html: one self-contained file (plot and thumbnails inlined as base64) that opens offline."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence

import numpy as np

from maskdet.inference.visualize import NAMED_COLORS
from maskdet.monitoring.people import COMPLIANT, PeopleCounter, Person

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}th{background:#f3f3f3}
.num{text-align:right}img.thumb{max-height:96px}.totals td{font-size:1.2em}"""


def data_uri(jpeg: bytes | None) -> str:
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode('ascii')}" if jpeg else ""


def per_minute(people: Sequence[Person], counter: PeopleCounter) -> tuple[list[int], dict[str, list[int]]]:
    """People by the minute they were first seen (seconds into the source), by verdict."""
    minutes = [int(p.first_time // 60) for p in people]
    span = list(range(max(minutes) + 1)) if minutes else []
    series = {n: [0] * len(span) for n in counter.names}
    for p, m in zip(people, minutes):
        series[counter.verdict_name(p)][m] += 1
    return span, series


def plot_png(span: list[int], series: dict[str, list[int]]) -> bytes | None:
    """A stacked bar chart of people per minute by verdict, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    bottom = np.zeros(len(span))
    for name, values in series.items():
        b, g, r = NAMED_COLORS.get(name, (128, 128, 128))
        ax.bar(span, values, bottom=bottom, label=name, color=(r / 255, g / 255, b / 255))
        bottom += np.asarray(values, float)
    ax.set_xlim(-0.6, len(span) - 0.4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole minutes and whole people
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("minute since the start of the source")
    ax.set_ylabel("people first seen")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def render(counter: PeopleCounter, alerts: Sequence[dict], alert_crops: dict[int, bytes | None], title: str,
           interrupted: bool = False) -> str:
    """The whole report as one HTML string."""
    people = counter.people
    esc = html.escape
    totals = Counter(counter.verdict_name(p) for p in people)
    share = counter.compliance(people)
    span, series = per_minute(people, counter)
    png = plot_png(span, series) if people else None
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    if interrupted:
        parts.append("<p><b>The run was interrupted</b>: this report covers what was seen until then.</p>")
    parts.append("<h2>Totals</h2><table class='totals'><tr><th>people</th>"
                 + "".join(f"<th>{esc(n)}</th>" for n in counter.names) + "<th>wearing a mask correctly</th></tr>")
    parts.append(f"<tr><td class='num'>{len(people)}</td>" + "".join(f"<td class='num'>{totals.get(n, 0)}</td>" for n in counter.names)
                 + f"<td class='num'>{'' if share is None else f'{share:.0%}'}</td></tr></table>")
    if counter.settings.line is not None:
        counts = counter.line_counts()  # everyone has left by now: the same people as the table
        parts.append("<h2>Line crossings</h2><table><tr><th>direction</th>" + "".join(f"<th>{esc(n)}</th>" for n in counter.names) + "</tr>")
        parts += [f"<tr><td>{d}</td>" + "".join(f"<td class='num'>{c.get(n, 0)}</td>" for n in counter.names) + "</tr>"
                  for d, c in counts.items()]
        parts.append("</table>")
    parts.append("<h2>Compliance over time</h2>")
    if png:
        parts.append(f"<img alt='people per minute by verdict' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>")
    elif people:
        parts.append("<p>(install matplotlib for the plot: pip install matplotlib)</p>")
    parts.append("<table><tr><th>minute</th>" + "".join(f"<th>{esc(n)}</th>" for n in counter.names)
                 + f"<th>{esc(COMPLIANT)} share</th></tr>")
    for m in span:
        row = [series[n][m] for n in counter.names]
        total = sum(row)
        ok = series.get(COMPLIANT, [0] * len(span))[m]
        parts.append(f"<tr><td class='num'>{m}</td>" + "".join(f"<td class='num'>{v}</td>" for v in row)
                     + f"<td class='num'>{f'{ok / total:.0%}' if total else ''}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Alerts ({len(alerts)})</h2>")
    if alerts:
        parts.append("<table><tr><th>face</th><th>time</th><th>ID</th><th>verdict</th><th>confidence</th><th>source</th>"
                     "<th>frame</th><th>delivery</th></tr>")
        for a in alerts:
            uri = data_uri(alert_crops.get(a["track_id"]))
            parts.append(f"<tr><td>{f'<img class=thumb src={uri!r}>' if uri else ''}</td><td>{esc(a['time'])}</td>"
                         f"<td class='num'>{a['track_id']}</td><td>{esc(a['verdict'])}</td><td class='num'>{a['confidence']:.2f}</td>"
                         f"<td>{esc(a['source'])}</td><td class='num'>{a['frame']}</td><td>{esc(a['delivery'])}</td></tr>")
        parts.append("</table>")
    parts.append(f"<h2>People ({len(people)})</h2><table><tr><th>face</th><th>ID</th><th>verdict</th><th>share of frames</th>"
                 "<th>frames</th><th>first seen</th><th>last seen</th><th>source</th></tr>")
    for p in people:
        uri = data_uri(p.thumb)
        parts.append(f"<tr id='person-{p.track_id}'><td>{f'<img class=thumb src={uri!r}>' if uri else ''}</td>"
                     f"<td class='num'>{p.track_id}</td><td>{esc(counter.verdict_name(p))}</td><td class='num'>{p.share():.0%}</td>"
                     f"<td class='num'>{p.frames}</td><td>{p.first_time:.1f} s (frame {p.first_frame})</td>"
                     f"<td>{p.last_time:.1f} s (frame {p.last_frame})</td><td>{esc(p.source)}</td></tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def render_counts(counts, alerts: int, title: str, interrupted: bool = False) -> str:
    """--privacy counts: totals and the table per period (a maskdet.privacy.counts.PeriodCounts), no picture, no person."""
    esc = html.escape
    names = counts.names
    totals = counts.totals()
    people = sum(totals.values())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             "<p>Counts only (--privacy counts): no image and no record of any one person was kept.</p>"]
    if interrupted:
        parts.append("<p><b>The run was interrupted</b>: this report covers what was seen until then.</p>")
    share = totals.get(COMPLIANT, 0) / people if people else None
    parts.append("<h2>Totals</h2><table class='totals'><tr><th>people</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
                 + "<th>wearing a mask correctly</th></tr>")
    parts.append(f"<tr><td class='num'>{people}</td>" + "".join(f"<td class='num'>{totals.get(n, 0)}</td>" for n in names)
                 + f"<td class='num'>{'' if share is None else f'{share:.0%}'}</td></tr></table>")
    parts.append(f"<h2>Per period of {counts.period_s:g} s</h2><table><tr><th>source</th><th>from (s)</th><th>to (s)</th>"
                 "<th>people</th>" + "".join(f"<th>{esc(n)}</th>" for n in names) + "<th>wearing a mask correctly</th></tr>")
    for row in counts.rows():
        share = row["mask_share"]
        parts.append(f"<tr><td>{esc(row['source'])}</td><td class='num'>{row['start_s']:g}</td><td class='num'>{row['end_s']:g}</td>"
                     f"<td class='num'>{row['people']}</td>" + "".join(f"<td class='num'>{row[n]}</td>" for n in names)
                     + f"<td class='num'>{'' if share is None else f'{share:.0%}'}</td></tr>")
    parts.append(f"</table><h2>Alerts: {alerts}</h2></body></html>\n")
    return "\n".join(parts)
