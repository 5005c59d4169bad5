"""--retain removes old people and alerts from a run's tables and report while it runs, but the run's own summary
still counts everyone it saw and every alert it raised: what retention removed is said on its own line."""

from __future__ import annotations

from contextlib import ExitStack

from maskdet.inference.detections import Frame
from maskdet.pipeline.step import Pipeline
from maskdet.settings import DetectionSettings, MonitoringSettings, Settings

FACE = (60, 30, 100, 80)  # x1, y1, x2, y2 in a 160x120 frame


def test_the_summary_counts_what_the_run_saw_after_its_tables_are_pruned(helpers, tmp_path):
    box = helpers.to_model_pixels(FACE, (160, 120), 160)
    model = helpers.write_scripted_onnx(tmp_path / "scripted.onnx", [(*box, 1, 0.9)], 160)
    pipeline = Pipeline(Settings(detection=DetectionSettings(weights=model, second_stage="off"),
                                 monitoring=MonitoringSettings(track=True, min_frames=1, alert=["without_mask"],
                                                               alert_after=0)))
    monitor = pipeline.monitor
    with ExitStack() as stack:
        sinks = monitor.open_sinks(stack, tmp_path, "test", lambda _m: None)
        for i in range(5):
            frame = Frame(helpers.synthetic_frame(i), "door.mp4", "door", "video", i, i / 25, fps=25.0, position="1/1")
            det = pipeline.process(frame)
            for sink in sinks:
                sink.write(frame, det, None)
        monitor.people.finish_all()  # the person leaves the view: their row is written
        for sink in sinks:
            sink.write(frame, det, None)
        assert monitor.prune(-1.0) == 2  # everything counts as older than the duration: 1 person, 1 alert
    assert (tmp_path / "people.csv").read_text(encoding="utf-8").count("\n") == 1  # the header alone
    assert (tmp_path / "alerts.jsonl").read_text(encoding="utf-8") == ""
    lines = monitor.lines()
    assert lines[0].startswith("people: 1 seen (1 without_mask)") and "alerts: 1 raised" in lines
