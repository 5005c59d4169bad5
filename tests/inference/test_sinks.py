"""MediaSink: a video source's .mp4 has one frame per frame read; a live source's .mp4 plays in real time,
each annotated frame held until the next, however many frames the model had to skip. Videos are H.264 in a
fragmented MP4 (what browsers play, readable up to the last second even after kill -9), or, without PyAV,
OpenCV's mp4v with a note saying what is lost."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from synthetic import video_frames

from maskdet.inference import sinks
from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import MediaSink

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def no_detections() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), NAMES)


def shade(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def decoded_shades(path) -> list[int]:
    """The mean grey level of every frame a player decodes."""
    return [int(round(image.mean())) for image in video_frames(path)]


def test_a_live_source_is_written_in_real_time_holding_each_frame_until_the_next(tmp_path):
    # 10 fps camera; the model kept up with frames 0 and 1, then took 0.4 s and 0.3 s.
    captured = [(0, 5.00, 40), (1, 5.10, 120), (5, 5.50, 200), (8, 5.80, 250)]
    with MediaSink(tmp_path) as sink:
        for index, timestamp, value in captured:
            frame = Frame(shade(value), "webcam 0", "webcam0", "live", index, timestamp, fps=10.0)
            sink.write(frame, no_detections(), frame.image)
    shades = decoded_shades(tmp_path / "webcam0.mp4")
    assert len(shades) == 9, "0.8 s at 10 fps, from the first frame to the last"
    expected = [40, 120, 120, 120, 120, 200, 200, 200, 250]
    assert all(abs(got - want) <= 4 for got, want in zip(shades, expected, strict=True)), shades


def test_a_video_file_gets_one_frame_per_frame_read_whatever_the_timestamps(tmp_path):
    with MediaSink(tmp_path) as sink:
        for index, value in enumerate((40, 120, 200)):
            frame = Frame(shade(value), "clip.mp4", "clip", "video", index * 5, index * 0.2, fps=5.0)
            sink.write(frame, no_detections(), frame.image)
    shades = decoded_shades(tmp_path / "clip.mp4")
    assert len(shades) == 3
    assert all(abs(got - want) <= 4 for got, want in zip(shades, (40, 120, 200), strict=True)), shades


def test_frames_that_come_early_are_still_written(tmp_path, kit):
    """A camera delivering faster than it claims: no annotated frame is dropped to keep the clock."""
    with MediaSink(tmp_path) as sink:
        for index in range(5):
            frame = Frame(shade(100), "webcam 0", "webcam0", "live", index, index * 0.01, fps=10.0)
            sink.write(frame, no_detections(), frame.image)
    assert kit.count_video_frames(tmp_path / "webcam0.mp4") == 5


def write_clip(folder, frames: int = 30, fps: float = 10.0, size: tuple[int, int] = (65, 49)):
    with MediaSink(folder) as sink:
        for index in range(frames):
            frame = Frame(np.full((size[1], size[0], 3), index * 8 % 256, np.uint8), "clip.mp4", "clip", "video", index,
                          index / fps, fps=fps)
            sink.write(frame, no_detections(), frame.image)
    return folder / "clip.mp4"


def test_videos_are_h264_in_a_fragmented_mp4_that_browsers_play(tmp_path):
    av = pytest.importorskip("av", reason="PyAV (brought by supervision, requirements.txt)")
    path = write_clip(tmp_path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (66, 50)  # odd sides: one more, a copy
        assert sum(1 for _ in container.decode(stream)) == 30
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"moof") < data.index(b"mdat")  # the index first, then fragments
    assert data.count(b"moof") >= 3  # a fragment a second: 3 s of video
    assert len(decoded_shades(path)) == 30  # OpenCV reads it too


def test_without_pyav_videos_are_mp4v_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)  # as if not installed
    monkeypatch.setattr(sinks, "_noted", set())
    path = write_clip(tmp_path, frames=5)
    assert "PyAV is not installed (pip install av)" in capsys.readouterr().err
    cap = cv2.VideoCapture(str(path))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    cap.release()
    assert fourcc in ("mp4v", "FMP4") and len(decoded_shades(path)) == 5  # FMP4: FFmpeg's name for the same codec


def test_the_json_file_is_valid_json_after_every_frame_so_kill_9_keeps_it_readable(tmp_path):
    import json

    from maskdet.inference.sinks import JsonSink

    path = tmp_path / "predictions.json"
    one_face = Detections(np.array([[1, 2, 30, 40]], np.float32), np.array([0.9], np.float32), np.array([1]), NAMES)
    sink = JsonSink(path)
    assert json.loads(path.read_text()) == []
    for index in range(3):  # never closed: as after kill -9
        sink.write(Frame(shade(0), "clip.mp4", "clip", "video", index, index / 25, 0.0, 25.0), one_face, None)
        records = json.loads(path.read_text())
        assert [r["frame"] for r in records] == list(range(index + 1))
    sink.write(Frame(shade(0), "clip.mp4", "clip", "video", 3, 3 / 25, 0.0, 25.0), no_detections(), None)
    sink.close()
    assert len(json.loads(path.read_text())) == 3


def one_face_frame(index: int, source: str = "clip.mp4") -> tuple[Frame, Detections]:
    face = Detections(np.array([[1, 2, 30, 40]], np.float32), np.array([0.9], np.float32), np.array([1]), NAMES)
    return Frame(shade(0), source, "clip", "video", index, index / 25, 0.0, 25.0), face


def test_in_a_reused_run_folder_csv_rows_and_json_records_follow_the_earlier_runs_never_replace_them(tmp_path, capsys):
    """--exist-ok reuses the folder (as YOLOv5's): an earlier run's predictions are the user's data too."""
    import csv
    import json

    from maskdet.inference.sinks import CsvSink, JsonSink

    for run, source in enumerate(("first.mp4", "second.mp4")):
        with CsvSink(tmp_path / "predictions.csv") as table, JsonSink(tmp_path / "predictions.json") as array:
            for index in range(2 + run):
                frame, det = one_face_frame(index, source)
                table.write(frame, det, None)
                array.write(frame, det, None)
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open(newline="")))
    assert [r["source"] for r in rows] == ["first.mp4"] * 2 + ["second.mp4"] * 3  # one header, every row
    assert [r["source"] for r in json.loads((tmp_path / "predictions.json").read_text())] == [r["source"] for r in rows]
    assert "rows follow those already there" in capsys.readouterr().err


def test_a_row_cut_off_by_a_kill_is_ended_before_the_next_run_appends(tmp_path):
    import csv

    from maskdet.inference.sinks import CsvSink

    path = tmp_path / "predictions.csv"
    with CsvSink(path) as table:
        table.write(*one_face_frame(0), None)
    with path.open("a", newline="") as f:
        f.write("clip.mp4,1,0.04,1,without_ma")  # killed in the middle of a row
    with CsvSink(path) as table:
        table.write(*one_face_frame(5), None)
    rows = list(csv.reader(path.open(newline="")))
    assert len(rows) == 4 and rows[-1][:2] == ["clip.mp4", "5"], rows


def test_an_earlier_file_this_run_cannot_follow_is_refused_in_one_line_and_kept(tmp_path):
    from maskdet.errors import UserError
    from maskdet.inference.sinks import CsvSink, JsonSink

    (tmp_path / "predictions.csv").write_text("name,count\nme,1\n")
    (tmp_path / "predictions.json").write_text('{"mine": true}\n')
    with pytest.raises(UserError, match="other columns"):
        CsvSink(tmp_path / "predictions.csv")
    with pytest.raises(UserError, match="not a JSON array this tool wrote"):
        JsonSink(tmp_path / "predictions.json")
    assert (tmp_path / "predictions.csv").read_text() == "name,count\nme,1\n"
    assert (tmp_path / "predictions.json").read_text() == '{"mine": true}\n'


def test_a_video_with_odd_sides_keeps_its_last_row_and_column(tmp_path):
    pytest.importorskip("av", reason="PyAV (brought by supervision, requirements.txt)")
    image = np.zeros((49, 65, 3), np.uint8)
    image[:, -1] = image[-1, :] = 255  # a box drawn along the frame's right and bottom edges
    with MediaSink(tmp_path) as sink:
        for index in range(3):
            sink.write(Frame(image, "clip.mp4", "clip", "video", index, index / 5, fps=5.0), no_detections(), image)
    capture = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    ok, decoded = capture.read()
    capture.release()
    assert ok and decoded.shape[:2] == (50, 66)
    assert decoded[:40, 64].mean() > 200 and decoded[48, :60].mean() > 200  # the edges are there
    assert decoded[:40, 60].mean() < 40  # and nothing else became bright
