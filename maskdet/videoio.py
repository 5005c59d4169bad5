"""Measuring a video before any of its frames is decoded at full size.

A small file can hold huge frames (a 198 KB H.264 file holds 8192 x 8192 frames that decode to 2 GB, and
OpenCV decodes whatever the container says). So a video file is opened once with PyAV and FFmpeg's own
`max_pixels` option, which makes its decoder refuse a bigger frame instead of allocating it; the size
comes from the stream's header, and only the first frame is decoded, within the limit. The server checks
every upload with this (maskdet.serving.uploads) and detect.py and the camera workers every video file
(maskdet.inference.sources), before OpenCV reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskdet.settings import MAX_VIDEO_PIXELS

OPEN_TIMEOUT_S = 10  # PyAV's timeout for opening and for each read (a file on a stalled network share)


class VideoError(ValueError):
    """A video refused before decoding; the message says why (no file name: the caller adds it)."""


class VideoTooLarge(VideoError):
    """The header says a frame has more pixels, or the video more frames, than allowed."""


class VideoUnreadable(VideoError):
    """No video stream, or a first frame that does not decode (within the pixel limit)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int  # from the header (0: it does not say)
    fps: float  # from the header, 25 where it says nothing sensible


def probe_video(path: str | Path, max_pixels: int = MAX_VIDEO_PIXELS, max_frames: int | None = None) -> VideoInfo:
    """Size, frame count and rate of a video file from its container; raises VideoTooLarge past max_pixels
    (or max_frames), VideoUnreadable when there is no video or its first frame does not decode."""
    import av

    corrupt = VideoUnreadable("the video is corrupt (no frame can be decoded)")
    try:
        with av.open(str(path), options={"max_pixels": str(max_pixels)}, timeout=OPEN_TIMEOUT_S) as container:
            if not container.streams.video:
                raise corrupt
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise VideoTooLarge(f"{width}x{height} pixels a frame, over the {max_pixels / 1e6:.3g} megapixel limit "
                                    "for videos")
            if width <= 0 or height <= 0:
                raise corrupt
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            fps = fps if 0 < fps < 240 else 25.0
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
                container.duration / 1e6 if container.duration else 0.0)
            frames = stream.frames or round(seconds * fps)
            if max_frames is not None and frames > max_frames:
                raise VideoTooLarge(f"{frames} frames, over the {max_frames} frame limit for videos")
            first = next(container.decode(stream), None)  # decoded under max_pixels: a bigger frame is an error
            if first is None or first.width * first.height > max_pixels:
                raise corrupt
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError, StopIteration):
        raise corrupt from None
    return VideoInfo(width, height, frames, fps)
