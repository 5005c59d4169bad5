"""report.html: one self-contained file (plot and thumbnails inlined as base64) that opens offline.

Written for the person who reads it, not for the one who ran it: plain words for the classes, the
alert rule stated, times as seconds into the video for files (wall-clock time only for live
sources), bins sized to the length of what was watched, the people needing attention first.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from maskdet.inference.visualize import NAMED_COLORS
from maskdet.monitoring.people import COMPLIANT, PeopleCounter, Person

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f3f3f3}.num{text-align:right}img.thumb{max-height:96px}img.frame{max-height:180px}.totals td{font-size:1.2em}
.rule{background:#fff8e1;border:1px solid #ffb300;padding:.5em 1em}.changed{color:#b00020}.sub{color:#555;margin-top:-.5em}"""
LABELS = {"with_mask": "mask worn", "without_mask": "no mask", "mask_weared_incorrect": "mask worn incorrectly"}
ATTENTION = ("without_mask", "mask_weared_incorrect")  # listed first
BIN_CHOICES_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BINS = 24
REWRITE_EVERY_S = 60.0  # a run's report is rewritten this often while it goes on: a killed run keeps a recent one


def label(name: str) -> str:
    """A class name as a person reads it."""
    return LABELS.get(name, name.replace("_", " "))


@dataclass
class RunInfo:
    """What the report says about the run as a whole (the report sink notes it while frames pass)."""

    started: str = ""  # ISO 8601 wall-clock time the run started
    duration_s: float = 0.0  # seconds of video (or of live watching) seen, all sources together
    live: bool = False  # a camera or stream: alert times are wall-clock times
    sources: tuple[str, ...] = ()


def data_uri(jpeg: bytes | None) -> str:
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode('ascii')}" if jpeg else ""


def face_img(jpeg: bytes | None, alt: str, css: str = "thumb") -> str:
    """The one place a picture of a person goes into the report (face thumbnails and alert frames)."""
    uri = data_uri(jpeg)
    return f"<img class={css} alt={html.escape(alt)!r} src={uri!r}>" if uri else ""


def duration_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def clock_text(iso: str) -> str:
    """A wall-clock time as a person reads it (a camera's alert): '05 Dec 2026 14:31:07'."""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y %H:%M:%S")
    except ValueError:
        return html.escape(iso)


def bin_size(duration_s: float) -> int:
    """The smallest round bin that keeps the chart to MAX_BINS bars: a 30-s clip gets 2-s bins, an hour 5-min ones."""
    return next((b for b in BIN_CHOICES_S if duration_s / b <= MAX_BINS), BIN_CHOICES_S[-1])


def bin_label(start: int, size: int) -> str:
    if size < 60:
        return f"{start}-{start + size} s"
    return f"{start // 60}-{(start + size) // 60} min" if size < 3600 else f"{start // 3600}-{(start + size) // 3600} h"


def per_bin(people: Sequence[Person], counter: PeopleCounter, size: int, duration_s: float) -> tuple[list[int], dict[str, list[int]]]:
    """People by the bin they were first seen in (seconds into the source), by verdict; bins cover the whole duration."""
    bins = [int(p.first_time // size) for p in people]
    count = max([*bins, int(max(duration_s - 1e-9, 0) // size)]) + 1 if (people or duration_s) else 0
    span = [k * size for k in range(count)]
    series = {n: [0] * count for n in counter.names}
    for p, k in zip(people, bins):
        series[counter.verdict_name(p)][k] += 1
    return span, series


def plot_png(span: list[int], series: dict[str, list[int]], size: int) -> bytes | None:
    """A stacked bar chart of people per bin by verdict, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    unit, div = ("s", 1) if size < 60 else ("min", 60) if size < 3600 else ("h", 3600)
    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    x = np.array(span, float) / div
    bottom = np.zeros(len(span))
    for name, values in series.items():
        b, g, r = NAMED_COLORS.get(name, (128, 128, 128))
        ax.bar(x, values, width=size / div * 0.85, align="edge", bottom=bottom, label=label(name), color=(r / 255, g / 255, b / 255))
        bottom += np.asarray(values, float)
    ax.set_xlim(0, (span[-1] + size) / div if span else 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole people
    ax.set_xlabel(f"{unit} since the start (bars of {size // div} {unit})")
    ax.set_ylabel("people first seen")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def short_title(title: str, sources: Sequence[str]) -> str:
    """The title with sources by their file names: the full path is said once, under it."""
    for source in sources:
        title = title.replace(source, Path(source).name)
    return title


def people_order(counter: PeopleCounter):
    """Sort key: the people needing attention first (no mask, then mask worn incorrectly), then by time."""
    def key(p: Person) -> tuple:
        name = counter.verdict_name(p)
        return (ATTENTION.index(name) if name in ATTENTION else len(ATTENTION) + (name == COMPLIANT), p.first_time, p.track_id)
    return key


def alert_rule(counter: PeopleCounter) -> str:
    """The rule in words: who raises an alert, and why someone brief does not."""
    s = counter.settings
    verdicts = " or ".join(f"<b>{html.escape(label(c))}</b>" for c in s.alert_classes)
    given = (f"A person's verdict is the class of most of their frames (weighted by confidence), given once they have been "
             f"seen in {s.min_frames} frames (--min-frames).")
    if not s.alert_classes:
        return f"<p class=rule>No alerts were asked for (detect.py --alert CLASS ...). {given}</p>"
    return (f"<p class=rule><b>Alert rule:</b> one alert per person whose verdict has been {verdicts} for at least "
            f"{s.alert_after:g} s (--alert-after {s.alert_after:g}). {given} Someone in view for less than that "
            f"(for instance {max(s.alert_after / 4, 0.1):g} s) raises no alert, whatever they wear; they are still counted below "
            f"once they have a verdict. The verdict can change after an alert as more frames are seen: the alert then says so.</p>")


def status_note(interrupted: bool, running_at: str | None) -> str:
    """What the report covers, when the run did not simply end: stopped by Ctrl-C, or still going (a report written
    while the run goes on is what is left of a run that was killed)."""
    if interrupted:
        return "<p><b>The run was interrupted</b>: this report covers what was seen until then.</p>"
    if running_at:
        when = html.escape(running_at.replace("T", " "))
        return (f"<p><b>The run was still going</b> when this report was written ({when}): it covers what was seen "
                "until then, and is written again every minute and at the end. If the run was killed, this is where it "
                "stopped.</p>")
    return ""


def render(counter: PeopleCounter, alerts: Sequence[dict], alert_crops: dict[int, bytes | None], title: str,
           interrupted: bool = False, info: RunInfo | None = None, alert_frames: dict[int, bytes | None] | None = None,
           running_at: str | None = None) -> str:
    """The whole report as one HTML string; running_at: written while the run goes on, at that time (ISO 8601 with its offset)."""
    info = info or RunInfo()
    alert_frames = alert_frames or {}
    people = sorted(counter.people, key=people_order(counter))
    esc = html.escape
    duration = max([info.duration_s, *(p.last_time for p in people)]) if people or info.duration_s else 0.0
    started = datetime.fromisoformat(info.started) if info.started else None
    when = started.strftime("%d %b %Y, %H:%M") if started else ""
    subtitle = ", ".join(x for x in (when, f"{duration_text(duration)} {'watched' if info.live else 'of video'}") if x)
    sources = info.sources or tuple(dict.fromkeys(p.source for p in people))
    totals = Counter(counter.verdict_name(p) for p in people)
    share = counter.compliance(people)
    size = bin_size(duration)
    span, series = per_bin(people, counter, size, duration)
    png = plot_png(span, series, size) if people else None
    parts = [f"<!doctype html><html lang=en><head><meta charset='utf-8'><title>{esc(title)} — {esc(subtitle)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{esc(short_title(title, sources))}</h1>", f"<p class=sub>{esc(subtitle)}"
             + (f"; source: {esc(sources[0])}" if len(sources) == 1 else f"; {len(sources)} sources" if sources else "") + "</p>"]
    parts.append(status_note(interrupted, running_at))
    parts.append(alert_rule(counter))
    parts.append("<h2>Totals</h2><table class='totals'><tr><th>people</th>"
                 + "".join(f"<th>{esc(label(n))}</th>" for n in counter.names) + "<th>wearing a mask correctly</th></tr>")
    parts.append(f"<tr><td class='num'>{len(people)}</td>" + "".join(f"<td class='num'>{totals.get(n, 0)}</td>" for n in counter.names)
                 + f"<td class='num'>{'' if share is None else f'{share:.0%}'}</td></tr></table>")
    if counter.short_tracks:
        parts.append(f"<p>Not counted: {counter.short_tracks} face(s) seen in fewer than {counter.settings.min_frames} frames "
                     "(too briefly for a verdict; often a false detection).</p>")
    if counter.settings.line is not None:
        counts = counter.line_counts()  # everyone has left by now: the same people as the table
        parts.append("<h2>Line crossings</h2><table><tr><th>direction</th>" + "".join(f"<th>{esc(label(n))}</th>" for n in counter.names) + "</tr>")
        parts += [f"<tr><td>{d}</td>" + "".join(f"<td class='num'>{c.get(n, 0)}</td>" for n in counter.names) + "</tr>"
                  for d, c in counts.items()]
        parts.append("</table>")
    parts.append(f"<h2>Compliance over time</h2><p>People by when they were first seen, in bars of {esc(bin_label(0, size).split('-')[1])}.</p>")
    if png:
        parts.append(f"<img alt='people first seen per {size} s, by verdict' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>")
    elif people:
        parts.append("<p>(install matplotlib for the plot: pip install matplotlib)</p>")
    parts.append("<table><tr><th>time</th>" + "".join(f"<th>{esc(label(n))}</th>" for n in counter.names)
                 + f"<th>{esc(label(COMPLIANT))} share</th></tr>")
    for k, start in enumerate(span):
        row = [series[n][k] for n in counter.names]
        total = sum(row)
        ok = series.get(COMPLIANT, [0] * len(span))[k]
        parts.append(f"<tr><td class='num'>{bin_label(start, size)}</td>" + "".join(f"<td class='num'>{v}</td>" for v in row)
                     + f"<td class='num'>{f'{ok / total:.0%}' if total else ''}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Alerts ({len(alerts)})</h2>")
    if alerts:
        final = {p.track_id: p for p in counter.everyone()}
        parts.append("<table><tr><th>the frame that raised it</th><th>face</th><th>when</th><th>person</th><th>verdict then</th>"
                     "<th>final verdict</th><th>delivery</th></tr>")
        for a in alerts:
            live = a.get("live", info.live)
            when = clock_text(a["time"]) if live else f"{a.get('timestamp', 0):.1f} s into the video (frame {a['frame']})"
            person = final.get(a["track_id"])
            now = counter.verdict_name(person) if person else a["verdict"]
            changed = (f"<span class=changed>{esc(label(now))}: changed after the alert, once more frames were seen "
                       f"({person.share():.0%} of {person.frames} frames)</span>" if person and now != a["verdict"] else esc(label(now)))
            evidence = face_img(alert_frames.get(a["track_id"]), f"frame {a['frame']}", "frame")
            parts.append(f"<tr><td>{evidence}</td>"
                         f"<td>{face_img(alert_crops.get(a['track_id']), 'face')}</td><td>{when}</td>"
                         f"<td class='num'><a href='#person-{a['track_id']}'>{a['track_id']}</a></td>"
                         f"<td>{esc(label(a['verdict']))} ({a['confidence']:.2f})</td><td>{changed}</td><td>{esc(a['delivery'])}</td></tr>")
        parts.append("</table>")
    many = len(sources) > 1
    parts.append(f"<h2>People ({len(people)})</h2><p>No mask first, then mask worn incorrectly, then mask worn; "
                 "each by when they were first seen.</p><table><tr><th>face</th><th>ID</th><th>verdict</th><th>share of frames</th>"
                 "<th>frames</th><th>first seen</th><th>last seen</th>" + ("<th>source</th>" if many else "") + "</tr>")
    for p in people:
        parts.append(f"<tr id='person-{p.track_id}'><td>{face_img(p.thumb, f'person {p.track_id}')}</td>"
                     f"<td class='num'>{p.track_id}</td><td>{esc(label(counter.verdict_name(p)))}</td><td class='num'>{p.share():.0%}</td>"
                     f"<td class='num'>{p.frames}</td><td>{p.first_time:.1f} s (frame {p.first_frame})</td>"
                     f"<td>{p.last_time:.1f} s (frame {p.last_frame})</td>" + (f"<td>{esc(Path(p.source).name)}</td>" if many else "") + "</tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def render_counts(counts, alerts: int, title: str, interrupted: bool = False, running_at: str | None = None) -> str:
    """--privacy counts: totals and the table per period (a maskdet.privacy.counts.PeriodCounts), no picture, no person."""
    esc = html.escape
    names = counts.names
    totals = counts.totals()
    people = sum(totals.values())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             "<p>Counts only (--privacy counts): no image and no record of any one person was kept.</p>"]
    parts.append(status_note(interrupted, running_at))
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
