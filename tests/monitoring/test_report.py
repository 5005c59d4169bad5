"""report.html on its own: one file with everything inlined, written for the person who reads it: a title with
the date and the length of what was watched, the alert rule in words, alerts placed in the video's time with the
frame that raised them (and a verdict that changed since, said), bars sized to the duration, the people needing
attention first; and without matplotlib still a complete report (the table, and a line saying what to install)."""

from __future__ import annotations

import base64
import re
import sys

import cv2
import numpy as np

from maskdet.inference.detections import Detections, Frame
from maskdet.monitoring.people import MonitorSettings, PeopleCounter
from maskdet.monitoring.report import RunInfo, bin_size, render
from maskdet.monitoring.sinks import ReportSink

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
SOURCE = "/data/cameras/entrance/door.mp4"
JPEG = cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))[1].tobytes()


def see(counter: PeopleCounter, track_id: int, cls: int, start: float, frames: int = 3) -> None:
    image = np.full((120, 160, 3), 90, np.uint8)
    for k in range(frames):
        det = Detections(np.array([[40, 30, 80, 80]], np.float32), np.array([0.9], np.float32), np.array([cls]), NAMES,
                         tracker_id=np.array([track_id]))
        t = start + k * 0.1
        counter(Frame(image, SOURCE, "door", "video", round(t * 10), t, fps=10.0, position="1/1"), det)


def counter_with_people(settings: MonitorSettings | None = None) -> PeopleCounter:
    """A 30-s clip: masked people at 1 s and 12 s, an unmasked one at 25 s, one wearing it wrong at 3 s."""
    counter = PeopleCounter(NAMES, settings or MonitorSettings(min_frames=2))
    for track_id, cls, start in ((1, 0, 1.0), (2, 2, 3.0), (3, 0, 12.0), (4, 1, 25.0)):
        see(counter, track_id, cls, start)
        counter.finish_all()
    return counter


def info(duration: float = 30.0, live: bool = False) -> RunInfo:
    return RunInfo(started="2026-12-05T14:30:00+00:00", duration_s=duration, live=live, sources=(SOURCE,))


def test_the_title_gives_the_date_and_the_duration_and_the_source_once():
    html = render(counter_with_people(), [], {}, f"maskdet: {SOURCE}", info=info())
    assert "<h1>maskdet: door.mp4</h1>" in html
    assert "05 Dec 2026, 14:30, 30.0 s of video; source: /data/cameras/entrance/door.mp4" in html
    assert html.split("<body>")[1].count(SOURCE) == 1  # not repeated on every person's row
    assert "<title>maskdet: /data/cameras/entrance/door.mp4 — 05 Dec 2026, 14:30, 30.0 s of video</title>" in html


def test_bins_are_sized_from_the_duration_so_a_short_clip_gets_more_than_one_bar():
    assert [bin_size(s) for s in (10, 30, 120, 3600, 8 * 3600)] == [1, 2, 5, 300, 1800]
    html = render(counter_with_people(), [], {}, "door", info=info())
    rows = re.findall(r"<tr><td class='num'>(\d+-\d+ s)</td><td class='num'>(\d)</td><td class='num'>(\d)</td>"
                      r"<td class='num'>(\d)</td><td class='num'>([\d%]*)</td></tr>", html)
    assert len(rows) == 15 and rows[0] == ("0-2 s", "1", "0", "0", "100%") and rows[-1] == ("28-30 s", "0", "0", "0", "")
    assert rows[1] == ("2-4 s", "0", "0", "1", "0%") and rows[12] == ("24-26 s", "0", "1", "0", "0%")
    sources = re.findall(r"src=['\"]([^'\"]*)", html)
    assert base64.b64decode(sources[0].split(",", 1)[1]).startswith(b"\x89PNG")  # the plot comes first


def test_people_needing_attention_come_first_with_plain_words_for_the_verdict():
    html = render(counter_with_people(), [], {}, "door", info=info())
    assert re.findall(r"<tr id='person-(\d+)'>", html) == ["4", "2", "1", "3"]  # no mask, worn incorrectly, then by time
    assert "<td>mask worn incorrectly</td>" in html and "mask_weared_incorrect" not in html
    totals = re.findall(r"<tr><td class='num'>(\d)</td><td class='num'>(\d)</td><td class='num'>(\d)</td>"
                        r"<td class='num'>(\d)</td><td class='num'>([\d%]*)</td></tr>", html)[0]
    assert totals == ("4", "2", "1", "1", "50%")  # people, each verdict, share wearing a mask correctly


def test_the_alert_rule_is_stated_so_a_reader_knows_why_someone_brief_raised_none():
    html = render(counter_with_people(MonitorSettings(min_frames=2, alert_classes=("without_mask",), alert_after=2.0)),
                  [], {}, "door", info=info())
    rule = re.search(r"<p class=rule>(.*?)</p>", html).group(1)
    assert "<b>no mask</b> for at least 2 s (--alert-after 2)" in rule and "seen in 2 frames (--min-frames)" in rule
    assert "for less than that (for instance 0.5 s) raises no alert" in rule
    assert "No alerts were asked for" in render(counter_with_people(), [], {}, "door", info=info())


def alert(track_id: int, verdict: str, **extra) -> dict:
    return {"time": "2026-12-05T14:31:07+00:00", "source": SOURCE, "frame": 250, "timestamp": 25.0, "track_id": track_id,
            "verdict": verdict, "confidence": 0.9, "delivery": "not sent (no --alert-url)", "live": False, **extra}


def test_an_alert_shows_the_frame_that_raised_it_at_its_time_in_the_video_and_says_when_the_verdict_changed_since():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2, alert_classes=("without_mask",), alert_after=0.0))
    see(counter, 7, 1, 5.0, frames=3)  # unmasked at first: the alert...
    see(counter, 7, 0, 5.3, frames=6)  # ...then masked for longer: the final verdict is with_mask
    counter.finish_all()
    html = render(counter, [alert(7, "without_mask", frame=52, timestamp=5.2)], {7: JPEG}, "door", info=info(), alert_frames={7: JPEG})
    row = re.search(r"<h2>Alerts \(1\)</h2>\s*<table>.*?</tr>\s*<tr>(.*?)</tr>", html, re.S).group(1)
    assert "<img class=frame alt='frame 52'" in row and "<img class=thumb alt='face'" in row
    assert "5.2 s into the video (frame 52)" in row and "14:31:07" not in row  # video time, not the time it was processed
    assert "<td>no mask (0.90)</td>" in row
    assert "mask worn: changed after the alert, once more frames were seen (67% of 9 frames)" in row
    live = render(counter, [alert(7, "with_mask", live=True)], {}, "cam", info=info(live=True))
    assert "05 Dec 2026 14:31:07" in live and "s into the video" not in live  # a camera's alerts: wall-clock time


def test_the_report_sink_measures_the_duration_from_the_frames_it_sees(tmp_path):
    counter = counter_with_people()

    class NoAlerts:
        import threading
        lock, records, crops, frames = threading.Lock(), [], {}, {}

    sink = ReportSink(tmp_path / "report.html", counter, NoAlerts(), f"maskdet: {SOURCE}")
    image = np.zeros((120, 160, 3), np.uint8)
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), NAMES)
    for i in range(300):  # 30 s at 10 fps
        sink.write(Frame(image, SOURCE, "door", "video", i, i / 10, fps=10.0, position="1/1"), empty, None)
    sink.close()
    assert "30.0 s of video; source: /data/cameras/entrance/door.mp4" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_while_the_run_goes_on_the_report_is_written_on_its_first_frame_and_then_every_minute(tmp_path):
    """A run killed with kill -9 (or a power cut) never reaches close(): what it leaves is the report last written
    while it ran, which says so. The final report replaces it and no longer does."""
    import threading

    class NoAlerts:
        lock, records, crops, frames = threading.Lock(), [], {}, {}

    image = np.zeros((120, 160, 3), np.uint8)
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), NAMES)
    path = tmp_path / "report.html"

    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2))
    sink = ReportSink(path, counter, NoAlerts(), "door", every_s=3600)
    sink.write(Frame(image, SOURCE, "door", "video", 0, 0.0, fps=10.0, position="1/1"), empty, None)
    first = path.read_text(encoding="utf-8")
    assert "The run was still going" in first and "<h2>People (0)</h2>" in first and first.rstrip().endswith("</html>")
    see(counter, 1, 1, 1.0)
    counter.finish_all()
    sink.write(Frame(image, SOURCE, "door", "video", 40, 4.0, fps=10.0, position="1/1"), empty, None)
    assert path.read_text(encoding="utf-8") == first  # not before the minute is up: a report is not drawn per frame
    sink.close()
    final = path.read_text(encoding="utf-8")
    assert "<h2>People (1)</h2>" in final and "The run was still going" not in final

    counter = counter_with_people()
    sink = ReportSink(path, counter, NoAlerts(), "door", every_s=0.0)  # the minute is always up
    sink.write(Frame(image, SOURCE, "door", "video", 300, 30.0, fps=10.0, position="1/1"), empty, None)
    running = path.read_text(encoding="utf-8")
    assert "The run was still going" in running and "<h2>People (4)</h2>" in running


def test_without_matplotlib_the_report_is_complete_but_for_the_plot(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    html = render(counter_with_people(), [], {}, "door", info=info())
    assert "data:image/png" not in html and "(install matplotlib for the plot" in html
    assert html.count("<tr id='person-") == 4 and "<td class='num'>0-2 s</td>" in html



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
