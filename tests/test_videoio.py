"""Video files are decoded with every frame bounded in pixels by the decoder itself, and come out as OpenCV
would give them: the same pixels, turned upright as the file says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


# --- nothing is decoded past the limit, not even by FFmpeg's own probing when the file is opened ----------------

# The peak resident memory of this process image (VmHWM; ru_maxrss would start at the forking pytest's own peak).
PEAK_GROWTH = """
import re, sys
import av  # its libraries loaded before the first measure
from maskdet.videoio import VideoError, probe_video
def peak_kb():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
before = peak_kb()
try:
    probe_video(sys.argv[1], max_pixels=10_000)
    print("accepted")
except VideoError as exc:
    print(exc)
print((peak_kb() - before) // 1024)
"""


def flv_h263(path: Path, size: tuple[int, int]) -> Path:
    """FLV's own H.263 (old webcams, Flash): neither the container nor a parser says its frame size."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("flv", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), "bgr24")))
        container.mux(stream.encode())
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from Linux's /proc")
@pytest.mark.parametrize("kind", ["h264 in mpeg-ts", "png named .mp4", "flv h263"])
def test_a_video_of_huge_frames_is_refused_without_one_being_decoded(kind, tmp_path):
    """Opening a video runs FFmpeg's stream probing, which decoded several frames at full size before the size
    was checked (a 0.77 MB MPEG-TS of 16000x16000 frames took 1.3 GB; this 4000x4000 one took 74 MB). Refused
    now with less memory than half of one such frame (24 MB), whatever says the size: the container or the codec's
    parser (H.264 in MPEG-TS, whose streams the probe finds), the packet's own image header (a PNG), or only
    the decoder, refusing (FLV's H.263)."""
    size = (4000, 4000)
    if kind == "h264 in mpeg-ts":
        path = h264_video(tmp_path / "big.ts", 3, size=size)
    elif kind == "png named .mp4":
        path = tmp_path / "big.mp4"
        ok, png = cv2.imencode(".png", np.zeros((size[1], size[0], 3), np.uint8))
        path.write_bytes(png.tobytes())
    else:
        path = flv_h263(tmp_path / "big.flv", size)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", PEAK_GROWTH, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    message, growth_mb = proc.stdout.splitlines()
    said_size = "4000x4000 pixels a frame, " if kind != "flv h263" else "its first frame is "
    assert message.startswith(said_size + "over the 0.01 megapixel limit for videos"), message
    assert int(growth_mb) < 12, f"{growth_mb} MB more at the peak: frames were decoded"


def test_mp4v_in_an_mp4_gives_its_size_from_its_layer_header_without_decoding(tmp_path):
    """MP4 leaves the frame size of MPEG-4 Part 2 (OpenCV's 'mp4v') to the decoder; with FFmpeg's probe no
    longer decoding, it is read from the codec's own layer header, so a refusal still says it."""
    writer = cv2.VideoWriter(str(tmp_path / "v.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (161, 120))
    for i in range(3):
        writer.write(np.full((120, 161, 3), 40 * i, np.uint8))
    writer.release()
    with VideoFile(tmp_path / "v.mp4") as video:
        assert (video.info.width, video.info.height) == (160, 120)  # OpenCV's writer keeps even sides
        assert len(list(video.frames())) == 3
    with pytest.raises(VideoTooLarge, match="^160x120 pixels a frame, over the 0.01 megapixel limit for videos$"):
        VideoFile(tmp_path / "v.mp4", max_pixels=10_000)


# --- frame rates and times -----------------------------------------------------------------------------------


def ffmpeg_video(path: Path, *args: str) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (the command) not installed")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=s=64x48:r=30",
                    *args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=60)
    return path


@pytest.mark.parametrize("fps", [240, 960])
def test_a_slow_motion_video_keeps_its_high_frame_rate(fps, tmp_path):
    """A phone films slow motion at 240 fps (some at 960): taken as 25, a 1 s clip lasted 9.6 s."""
    path = ffmpeg_video(tmp_path / "slowmo.mp4", "-vf", f"fps={fps}", "-frames:v", str(fps // 4))
    with VideoFile(path) as video:
        assert video.info.fps == fps
        times = [seconds for _image, seconds in video.timed_frames()]
    assert len(times) == fps // 4 and times[-1] == pytest.approx((fps // 4 - 1) / fps, abs=1e-3)


def test_a_variable_rate_video_gives_each_frame_its_own_time(tmp_path):
    """A phone's variable frame rate: 30 frames at 30 fps, then one every half second. The average rate
    (35 frames in 3.5 s) would put every frame at the wrong time."""
    path = ffmpeg_video(tmp_path / "vfr.mp4", "-frames:v", "35", "-vf", "setpts='if(lt(N,30),N/30,1+(N-29)/2)/TB'",
                        "-fps_mode", "passthrough")
    with VideoFile(path) as video:
        times = [seconds for _image, seconds in video.timed_frames()]
    assert times == pytest.approx([i / 30 for i in range(30)] + [1.5, 2.0, 2.5, 3.0, 3.5], abs=1e-3)
