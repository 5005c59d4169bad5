"""Reading a video file or network stream with every frame bounded in pixels before it is decoded.

A small file can hold huge frames (a 198 KB H.264 file holds 8192 x 8192 frames that decode to 2 GB), and
a stream can change its frame size midway (OpenCV then rescales every frame to the first one's size, so a
check on what it returns never sees the big ones, while FFmpeg has already allocated them). So video files
are read with PyAV, whose decoder is given FFmpeg's own `max_pixels` option: it refuses a frame over the
limit before allocating it, first frame or any later one. The size in the container's header is checked
before the first frame is decoded.

The server checks each upload with `probe_video`; detect.py, the server's video jobs and the camera
workers read every video file through `VideoFile` (via maskdet.inference.sources.iter_video), and every
network stream too (via its StreamCapture). Webcams stay with OpenCV, which knows their drivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskdet.settings import MAX_VIDEO_PIXELS

OPEN_TIMEOUT_S = 10  # PyAV's timeout for opening and for each read (a file on a stalled network share)
# Damaged packets in a row before a video counts as ended (FFmpeg skips a bad one and goes on, as OpenCV does)
MAX_BAD_PACKETS = 64
CORRUPT = "the video is corrupt (no frame can be decoded)"


class VideoError(ValueError):
    """A video refused before decoding; the message says why (no file name: the caller adds it)."""


class VideoTooLarge(VideoError):
    """A frame has more pixels (its size in `size`), or the video more frames, than allowed."""

    def __init__(self, message: str, size: tuple[int, int] | None = None):
        super().__init__(message)
        self.size = size  # (width, height) of the frame refused


class VideoUnreadable(VideoError):
    """No video stream, or a first frame that does not decode (within the pixel limit)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int  # from the header (0: it does not say)
    fps: float  # from the header, 25 where it says nothing sensible


class VideoFile:
    """An open video file or stream: its header's facts (`info`), checked against `max_pixels` on opening, and
    its frames as BGR images, each refused by the decoder past `max_pixels`. A context manager (it holds the file)."""

    def __init__(self, path: str | Path, max_pixels: int = MAX_VIDEO_PIXELS, timeout: float | tuple[float, float] =
                 OPEN_TIMEOUT_S, live: bool = False):
        """`path`: a file, or a stream's URL (`live`: decoded a frame at a time, for the least delay)."""
        import av

        self.max_pixels = max_pixels
        self.live = live
        try:
            self._container = av.open(str(path), timeout=timeout)
        except (av.FFmpegError, OSError, ValueError):
            raise VideoUnreadable(CORRUPT) from None
        try:
            self.info = self._read_header()
        except BaseException:
            self._container.close()
            raise

    def _read_header(self) -> VideoInfo:
        if not self._container.streams.video:
            raise VideoUnreadable("the file holds no video stream")
        stream = self._stream = self._container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        self._check_size(width, height, "{w}x{h} pixels a frame, over the {limit} megapixel limit for videos")
        if width <= 0 or height <= 0:
            raise VideoUnreadable(CORRUPT)
        stream.codec_context.options = {"max_pixels": str(self.max_pixels)}  # the decoder's own bound
        stream.thread_type = "SLICE" if self.live else "AUTO"  # frame threads hold frames back: latency
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        fps = fps if 0 < fps < 240 else 25.0
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
            self._container.duration / 1e6 if self._container.duration else 0.0)
        return VideoInfo(width, height, stream.frames or round(seconds * fps), fps)

    def _check_size(self, width: int, height: int, message: str) -> None:
        if width * height > self.max_pixels:
            raise VideoTooLarge(message.format(w=width, h=height, limit=f"{self.max_pixels / 1e6:.3g}"), (width, height))

    def frames(self) -> Iterator[np.ndarray]:
        """Each frame as a BGR image, turned upright as the file's display matrix says (as OpenCV does).

        Raises VideoTooLarge at the first frame over `max_pixels` (the decoder refused it); damaged packets are
        skipped, and MAX_BAD_PACKETS of them in a row end the video, as the end of a truncated file does."""
        import av

        codec, bad, index = self._stream.codec_context, 0, 0
        too_large = "frame {index} is {w}x{h} pixels, over the {limit} megapixel limit"
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = codec.decode(packet)
                except av.FFmpegError:
                    self._check_size(codec.width, codec.height, too_large.replace("{index}", str(index)))
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        return
                    continue
                bad = 0
                for frame in decoded:
                    self._check_size(frame.width, frame.height, too_large.replace("{index}", str(index)))
                    image = to_bgr(frame)
                    turns = round(getattr(frame, "rotation", 0) / 90) % 4
                    yield np.ascontiguousarray(np.rot90(image, turns)) if turns else image
                    index += 1
        except (av.FFmpegError, OSError):  # a read that fails (timeout, I/O error) ends the video like a cut file
            return

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def even_sides(image: np.ndarray) -> np.ndarray:
    """The image with even sides, as H.264's yuv420p needs: an odd side gets one more row or column, a copy of
    the last, so no pixel of the frame (nor a box drawn along its edge) is lost."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return np.ascontiguousarray(image)
    import cv2

    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


def to_bgr(frame) -> np.ndarray:
    """A decoded frame as OpenCV's BGR image. The common yuv420p goes through OpenCV's SIMD conversion (the
    same BT.601 matrix FFmpeg's swscale uses; 3.5 ms a 1080p frame less on a 2-core laptop), others through
    swscale."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        import cv2

        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


def probe_video(path: str | Path, max_pixels: int = MAX_VIDEO_PIXELS, max_frames: int | None = None) -> VideoInfo:
    """Size, frame count and rate of a video file from its container; raises VideoTooLarge past max_pixels
    (or max_frames), VideoUnreadable when there is no video or its first frame does not decode."""
    with VideoFile(path, max_pixels) as video:
        if max_frames is not None and video.info.frames > max_frames:
            raise VideoTooLarge(f"{video.info.frames} frames, over the {max_frames} frame limit for videos")
        if next(video.frames(), None) is None:
            raise VideoUnreadable(CORRUPT)
        return video.info
