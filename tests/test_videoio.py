"""Video files are decoded with every frame bounded in pixels by the decoder itself, and come out as OpenCV
would give them: the same pixels, turned upright as the file says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic import h264_video, video_frames

from maskdet.videoio import VideoFile, VideoTooLarge, VideoUnreadable, probe_video


def mjpeg_avi(path: Path, frames: int = 5) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (30 * i, 100, 200 - 30 * i), np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("kind", ["h264", "mjpeg"])
def test_frames_are_the_ones_opencv_decodes(kind, tmp_path):
    path = h264_video(tmp_path / "v.mp4", 8) if kind == "h264" else mjpeg_avi(tmp_path / "v.avi")
    with VideoFile(path) as video:
        ours = list(video.frames())
    theirs = video_frames(path)
    assert len(ours) == len(theirs) and ours[0].shape == theirs[0].shape and ours[0].dtype == np.uint8
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(ours, theirs)) < 3  # rounding: a level or two


def test_the_header_gives_size_rate_and_length(tmp_path):
    info = probe_video(h264_video(tmp_path / "v.mp4", 12, size=(96, 64)))
    assert (info.width, info.height, info.frames, info.fps) == (96, 64, 12, 25.0)


def test_a_video_over_the_limit_is_refused_from_its_header_before_any_frame(tmp_path):
    with pytest.raises(VideoTooLarge, match="160x120 pixels a frame, over the 0.01 megapixel limit for videos"):
        VideoFile(h264_video(tmp_path / "v.mp4"), max_pixels=10_000)


def test_a_frame_that_grows_midway_is_refused_by_the_decoder_after_the_frames_before_it(tmp_path):
    joined = tmp_path / "grows.ts"
    joined.write_bytes(h264_video(tmp_path / "a.ts", 10).read_bytes()
                       + h264_video(tmp_path / "b.ts", 3, size=(320, 240)).read_bytes())
    assert {f.shape for f in video_frames(joined)} == {(120, 160, 3)}  # OpenCV hides the change (it rescales)
    seen = []
    with VideoFile(joined, max_pixels=30_000) as video, pytest.raises(
            VideoTooLarge, match="frame 10 is 320x240 pixels, over the 0.03 megapixel limit"):
        for image in video.frames():
            seen.append(image.shape)
    assert seen == [(120, 160, 3)] * 10
    with VideoFile(joined, max_pixels=100_000) as video:  # within a higher limit, every frame at its own size
        assert [f.shape for f in video.frames()][-3:] == [(240, 320, 3)] * 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (the command) not installed")
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_a_phone_video_comes_out_upright_as_opencv_turns_it(rotate, tmp_path):
    plain = h264_video(tmp_path / "plain.mp4", 3)
    turned = tmp_path / f"turned{rotate}.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(plain), "-c", "copy",
                    "-metadata:s:v:0", f"rotate={rotate}", str(turned)], check=True, timeout=60)
    with VideoFile(turned) as video:
        ours = next(video.frames())
    theirs = video_frames(turned)[0]
    assert ours.shape == theirs.shape and ours.shape[:2] == ((160, 120) if rotate != 180 else (120, 160))
    assert np.abs(ours.astype(int) - theirs).mean() < 3  # the white corner where OpenCV puts it


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, b"not a video at all"])
def test_what_is_not_a_video_is_unreadable_not_an_ffmpeg_error(content, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoUnreadable, match=r"^the video is corrupt \(no frame can be decoded\)$"):
        probe_video(path)
