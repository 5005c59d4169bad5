"""A real network stream (ffmpeg serving MPEG-TS over HTTP on 127.0.0.1 at real-time rate): detect.py
rides out the server going away and coming back, gives up by itself after --stream-timeout, and never
falls behind a stream faster than the model (frames are dropped, not queued)."""

from __future__ import annotations

import re
import time

import cv2
import pandas as pd
import pytest
from synthetic import h264_video

LIVE_LINE = re.compile(r" frame (\d+): .*, ([\d.]+)ms \(delay (\d+)ms\)$")


def live_frames(stdout: str) -> list[tuple[int, float]]:
    """(frame index, capture-to-result delay in ms) of each per-frame line."""
    found = []
    for line in stdout.splitlines():
        m = LIVE_LINE.search(line)
        if m:
            found.append((int(m.group(1)), float(m.group(3))))
    return found


@pytest.fixture(scope="module")
def stream_video(tmp_path_factory, make_video):
    """4 s at 25 fps, served on a loop."""
    return make_video(tmp_path_factory.mktemp("stream") / "loop.mp4", frames=100, fps=25.0)


def test_stream_reconnects_when_the_server_returns_and_ends_after_the_stream_timeout(
        detect, background, stream_server, stream_video, model, tmp_path, kit):
    server = stream_server(stream_video)
    proc = background(detect.argv("--source", server.url, "--weights", model.onnx, "--conf", kit.low_conf,
                                  "--stream-timeout", "5", "--save-csv"), "detect")
    kit.wait_for(lambda: len(live_frames(proc.stdout)) >= 20 or not proc.running(), 60, message="20 frames from the stream")
    assert proc.running(), proc.stderr[-2000:]

    # The server goes away: detect.py notices and keeps trying.
    server.stop()
    kit.wait_for(lambda: "reconnecting" in proc.stderr or not proc.running(), 20, message="the drop to be noticed")
    assert proc.running(), proc.stderr[-2000:]
    before_outage = live_frames(proc.stdout)
    last_before = before_outage[-1][0]
    time.sleep(2)
    assert proc.running(), "a 2 s outage is shorter than --stream-timeout 5: detect.py must wait"

    # It comes back: detection goes on.
    server.start()
    kit.wait_for(lambda: "reconnected" in proc.stderr or not proc.running(), 30, message="a reconnect")
    kit.wait_for(lambda: len(live_frames(proc.stdout)) >= len(before_outage) + 20 or not proc.running(), 30,
                 message="20 more frames after the reconnect")
    assert proc.running(), proc.stderr[-2000:]
    after = live_frames(proc.stdout)[len(before_outage):]
    assert after and all(index > last_before for index, _ in after), "frame numbers go on after a reconnect"

    # It goes away for good: detect.py gives up by itself after --stream-timeout, with complete outputs.
    server.stop()
    gone = time.monotonic()
    rc = proc.wait(timeout=40)
    waited = time.monotonic() - gone
    assert rc == 1, proc.stderr[-3000:]  # a dead camera is not a finished job: a script can tell them apart
    assert 4 <= waited < 30, waited  # 5 s after the last frame, which came just before the server went
    kit.assert_clean_stderr(proc.stderr)
    stderr_lines = proc.stderr.splitlines()
    assert stderr_lines[-1] == f"stopped: {server.url}: gave up after 5 s without frames", proc.stderr
    # A promise to try again says when, and is made only while there is time left to keep it.
    assert all(re.search(r"trying again in \d+ s$", line) for line in stderr_lines if "trying again" in line), proc.stderr
    assert all(line.startswith(("warning: ", "note: ", "stopped: ")) for line in stderr_lines), proc.stderr
    summary = proc.stdout[proc.stdout.index("\n\n"):]
    processed = len(live_frames(proc.stdout))
    assert f"{processed} frames from 1 inputs" in summary
    assert "problems: 1 of 1 inputs skipped or stopped early" in summary
    assert "live: worst capture-to-result delay" in summary

    run_dir = tmp_path / "runs" / "exp"
    rows = pd.read_csv(run_dir / "predictions.csv")
    assert list(rows.columns) == kit.record_fields and not rows.isna().any().any()
    assert set(rows["source"]) == {server.url}
    assert rows["frame"].max() > last_before, "records from after the reconnect"
    assert rows["frame"].is_monotonic_increasing
    assert rows["timestamp"].is_monotonic_increasing
    videos = list(run_dir.glob("*.mp4"))
    assert len(videos) == 1
    # The video plays in real time: frames the model skipped, and the outage, are filled by holding the
    # last annotated frame, so its length is the time from the first record to the last.
    written = kit.count_video_frames(videos[0])
    assert written >= processed
    cap = cv2.VideoCapture(str(videos[0]))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    span_s = rows["timestamp"].max() - rows["timestamp"].min()
    assert span_s > 4 and abs(written / fps - span_s) < 1.0, (written, fps, span_s)


def test_a_slow_model_drops_stream_frames_instead_of_falling_behind(
        detect, background, stream_server, stream_video, slow_model, kit):
    """At imgsz 640 a frame takes several stream frame-times (40 ms at 25 fps); queued frames would make the
    delay grow by that much per frame. Instead the reader hands over only the newest frame."""
    server = stream_server(stream_video)
    proc = background(detect.argv("--source", server.url, "--weights", slow_model, "--stream-timeout", "3", "--nosave"),
                      "detect")
    kit.wait_for(lambda: len(live_frames(proc.stdout)) >= 30 or not proc.running(), 90, message="30 frames from the stream")
    server.stop()
    assert proc.wait(timeout=40) == 1, proc.stderr[-3000:]  # the stream stopped sending: not a finished job
    kit.assert_clean_stderr(proc.stderr)

    frames = live_frames(proc.stdout)
    indices = [i for i, _ in frames]
    assert indices == sorted(set(indices)), "each frame is processed at most once, in order"
    per_frame_ms = sorted(float(m) for m in re.findall(r", ([\d.]+)ms \(delay", proc.stdout))
    if per_frame_ms[len(per_frame_ms) // 2] > 80:  # two stream frame-times: true here, maybe not on a fast machine
        span = indices[-1] - indices[0] + 1
        assert span >= 1.5 * len(indices), f"frames should be skipped: {len(indices)} processed out of {span}"
        assert any(b - a > 1 for a, b in zip(indices, indices[1:]))

    delays = [d for _, d in frames]
    assert max(delays) < 2000, delays
    worst = float(re.search(r"live: worst capture-to-result delay (\d+) ms", proc.stdout).group(1))
    assert worst < 2000
    # No growth: the last frames are no later than the first ones give or take one slow frame.
    tail, head = delays[-10:], delays[:10]
    assert sum(tail) / len(tail) < sum(head) / len(head) + 500, (head, tail)


def test_a_stream_whose_frames_are_over_max_pixels_is_stopped_not_processed(detect, stream_server, stream_video, model,
                                                                             tmp_path, kit):
    """A stream is outside input: its frames are bounded as a file's are (160x120 here against a 0.01 MP limit)."""
    server = stream_server(stream_video)
    proc = detect("--source", server.url, "--weights", model.onnx, "--max-pixels", "10000", "--stream-timeout", "5",
                  timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]  # nothing was done
    assert proc.stderr.splitlines() == [f"stopped: {server.url}: frames of 160x120 pixels, over the 0.01 megapixel "
                                        "limit (--max-pixels)", "error: none of the 1 inputs could be read (see above)"]
    assert not live_frames(proc.stdout), "no frame over the limit is processed"


def test_a_stream_whose_frames_grow_past_max_pixels_midway_is_stopped_at_the_first_big_one(detect, stream_server, model,
                                                                                           tmp_path):
    """OpenCV rescales every frame of a stream to its first one's size, after FFmpeg decoded it whole: a
    camera (or whoever answers at its address) could switch to huge frames unseen. Decoded by PyAV under
    --max-pixels, the first such frame is refused by the decoder. 2 s of 160x120, then 320x240 (0.03 MP limit)."""
    grows = tmp_path / "grows.ts"
    grows.write_bytes(h264_video(tmp_path / "a.ts", 50).read_bytes()
                      + h264_video(tmp_path / "b.ts", 25, size=(320, 240)).read_bytes())
    server = stream_server(grows, as_is=True)
    proc = detect("--source", server.url, "--weights", model.onnx, "--max-pixels", "30000", "--stream-timeout", "5",
                  timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]  # frames were done, but the source stopped
    assert f"stopped: {server.url}: frames of 320x240 pixels, over the 0.03 megapixel limit (--max-pixels)" in proc.stderr
    assert live_frames(proc.stdout), "the small frames before were processed"
