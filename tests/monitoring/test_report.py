"""report.html on its own: one file with everything inlined, people per minute by verdict as a plot and a
table, and without matplotlib still a complete report (the table, and a line saying what to install)."""

from __future__ import annotations

import base64
import re
import sys

import numpy as np

from maskdet.inference.detections import Detections, Frame
from maskdet.monitoring.people import MonitorSettings, PeopleCounter
from maskdet.monitoring.report import render

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def counter_with_people() -> PeopleCounter:
    """Three people: two masked in minute 0, one unmasked first seen in minute 2."""
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2))
    image = np.full((120, 160, 3), 90, np.uint8)
    for track_id, cls, start in ((1, 0, 0.0), (2, 0, 30.0), (3, 1, 130.0)):
        for k in range(3):
            det = Detections(np.array([[40, 30, 80, 80]], np.float32), np.array([0.9], np.float32), np.array([cls]), NAMES,
                             tracker_id=np.array([track_id]))
            counter(Frame(image, "door.mp4", "door", "video", int((start + k) * 10), start + k, fps=10.0, position="1/1"), det)
        counter.finish_all()
    return counter


def test_the_report_inlines_a_plot_and_a_thumbnail_per_person_and_tabulates_each_minute():
    html = render(counter_with_people(), [], {}, "door")
    sources = re.findall(r"src=['\"]([^'\"]*)", html)
    assert len(sources) == 4 and all(s.startswith("data:image/") for s in sources)  # the plot and 3 thumbnails
    png = base64.b64decode(sources[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG")
    rows = re.findall(r"<tr><td class='num'>(\d)</td><td class='num'>(\d)</td><td class='num'>(\d)</td>"
                      r"<td class='num'>(\d)</td><td class='num'>([\d%]*)</td></tr>", html)
    assert rows[0] == ("3", "2", "1", "0", "67%")  # the totals: people, each verdict, share wearing a mask correctly
    assert rows[1:] == [("0", "2", "0", "0", "100%"), ("1", "0", "0", "0", ""), ("2", "0", "1", "0", "0%")]  # per minute


def test_without_matplotlib_the_report_is_complete_but_for_the_plot(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    html = render(counter_with_people(), [], {}, "door")
    assert "data:image/png" not in html and "(install matplotlib for the plot" in html
    assert html.count("<tr id='person-") == 3 and "<td class='num'>2</td><td class='num'>0</td><td class='num'>1</td>" in html


def test_a_second_ctrl_c_while_the_report_is_drawn_still_leaves_report_html(tmp_path, monkeypatch):
    # The first Ctrl-C stopped the run; the report is then rendered (a plot: seconds on a slow machine).
    # A second Ctrl-C in that time used to kill the write, while the message said everything was kept.
    import signal

    import pytest

    from maskdet.monitoring import sinks
    from maskdet.monitoring.sinks import AlertSink, ReportSink

    def render_interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # the second Ctrl-C, in the middle of drawing
        return render(*args, **kwargs)

    monkeypatch.setattr(sinks, "render", render_interrupted)
    counter = counter_with_people()
    report = ReportSink(tmp_path / "report.html", counter, AlertSink(tmp_path, counter, lambda line: None), "test")
    with pytest.raises(KeyboardInterrupt):  # delivered once the report is safe
        report.close()
    assert "<html" in (tmp_path / "report.html").read_text(encoding="utf-8").lower()
