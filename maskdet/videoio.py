"""Reading a video file or network stream with every frame bounded in pixels before it is decoded.

A small file can hold huge frames (a 198 KB H.264 file holds 8192 x 8192 frames that decode to 2 GB), and
a stream can change its frame size midway (OpenCV then rescales every frame to the first one's size, so a
check on what it returns never sees the big ones, while FFmpeg has already allocated them). So video files
are read with PyAV, whose decoder is given FFmpeg's own `max_pixels` option: it refuses a frame over the
limit before allocating it, first frame or any later one. The size in the container's header is checked
before the first frame is decoded.

Opening a video runs FFmpeg's stream probing (avformat_find_stream_info), which decodes frames to learn what a
header leaves out, at whatever size they are, before any check here: a 0.77 MB MPEG-TS of 16000 x 16000 frames
took 1.3 GB before it was refused. PyAV gives the probe's decoders no options for streams the header does not
announce (MPEG-TS's), so `max_pixels` cannot reach them there: the probe is given no decoder at all
(PROBE_OPTIONS). The size then comes from the container or the codec's parser, or where neither says (a PNG
renamed .mp4, FLV's H.263) from the first frame, decoded here under the bound.

The server checks each upload with `probe_video`; detect.py, the server's video jobs and the camera
workers read every video file through `VideoFile` (via maskdet.inference.sources.iter_video), and every
network stream too (via its StreamCapture). Webcams stay with OpenCV, which knows their drivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskdet.imageio import ImageError, image_size
from maskdet.settings import MAX_VIDEO_PIXELS

OPEN_TIMEOUT_S = 10  # PyAV's timeout for opening and for each read (a file on a stalled network share)
# Damaged packets in a row before a video counts as ended (FFmpeg skips a bad one and goes on, as OpenCV does)
MAX_BAD_PACKETS = 64
CORRUPT = "the video is corrupt (no frame can be decoded)"
# The probe's options: a codec whitelist naming no codec, so it opens no decoder and decodes no frame; probesize
# bounds the bytes it reads (FFmpeg's default, said here). A live stream's probe waits for at most 1 s of it
# (analyzeduration): a camera's MJPEG, whose size no parser gives, would otherwise hold every opening 5 s.
PROBE_OPTIONS = {"codec_whitelist": "none", "probesize": "5000000"}
LIVE_PROBE_OPTIONS = {**PROBE_OPTIONS, "analyzeduration": "1000000"}
MAX_FPS = 1000.0  # a header's rate above this is absurd (phones film slow motion at 240 fps, lab cameras at 1000)
DEFAULT_FPS = 25.0  # the rate taken where the header gives none, or an absurd one
IMAGE_CODECS = frozenset({"png", "apng", "mjpeg", "bmp", "webp", "tiff"})  # each packet is a whole image file
MPEG4_VOL_START = b"\x00\x00\x01\x20"  # a video object layer header (0x20-0x2F: the layer's number)


class VideoError(ValueError):
    """A video refused before decoding; the message says why (no file name: the caller adds it)."""


class VideoTooLarge(VideoError):
    """A frame has more pixels (its size in `size`, None where nothing says it), or the video more frames, than
    allowed."""

    def __init__(self, message: str, size: tuple[int, int] | None = None):
        super().__init__(message)
        self.size = size  # (width, height) of the frame refused


class VideoUnreadable(VideoError):
    """No video stream, or a first frame that does not decode (within the pixel limit)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int  # from the header; 0 with height where it does not say (the decoder bounds the first frame)
    height: int
    frames: int  # from the header (0: it does not say)
    fps: float  # from the header, DEFAULT_FPS where it says nothing sensible


class _Bits:
    """Reads big-endian bit fields; past the end every field is 0 (a cut header then fails its checks)."""

    def __init__(self, data: bytes):
        self.value, self.left = int.from_bytes(data, "big"), 8 * len(data)

    def take(self, n: int) -> int:
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1) if self.left >= 0 else 0


def mpeg4_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first video object layer header in MPEG-4 Part 2 bytes (a codec's extradata, or
    a packet that starts a sequence), None where there is none or it is not a plain rectangular layer.

    MP4 and MOV leave the frame size of this codec (OpenCV's 'mp4v') to the decoder, so without it the size is
    known only once a frame is decoded (ISO 14496-2, 6.2.3)."""
    start = next((i for i in range(len(data) - 4) if data[i:i + 3] == MPEG4_VOL_START[:3] and data[i + 3] & 0xF0 == 0x20),
                 None)
    if start is None:
        return None
    bits = _Bits(data[start + 4:start + 40])
    bits.take(9)  # random_accessible_vol, video_object_type_indication
    verid = 1
    if bits.take(1):  # is_object_layer_identifier: the layer's version, then its priority
        verid = bits.take(4)
        bits.take(3)
    if bits.take(4) == 15:  # aspect_ratio_info: extended, with its own width and height
        bits.take(16)
    if bits.take(1):  # vol_control_parameters: chroma format and low delay, then the vbv's, if any
        bits.take(3)
        if bits.take(1):
            bits.take(79)
    shape = bits.take(2)
    if shape == 3 and verid != 1:
        bits.take(4)
    if shape != 0 or not bits.take(1):  # not rectangular, or a marker bit missing: not a header to trust
        return None
    resolution = bits.take(16)
    if not bits.take(1) or resolution == 0:
        return None
    if bits.take(1):  # fixed_vop_rate: an increment as wide as the resolution needs
        bits.take(max(1, (resolution - 1).bit_length()))
    marker1, width, marker2, height, marker3 = bits.take(1), bits.take(13), bits.take(1), bits.take(13), bits.take(1)
    return (width, height) if marker1 and marker2 and marker3 and width and height and bits.left >= 0 else None


def sane_fps(fps: float | None) -> float | None:
    """A header's frame rate, or None where it is missing or absurd (0, negative, NaN, past MAX_FPS)."""
    return fps if fps is not None and 0 < fps <= MAX_FPS else None


class VideoFile:
    """An open video file or stream: its header's facts (`info`), checked against `max_pixels` on opening, and
    its frames as BGR images, each refused by the decoder past `max_pixels`. A context manager (it holds the file)."""

    def __init__(self, path: str | Path, max_pixels: int = MAX_VIDEO_PIXELS, timeout: float | tuple[float, float] =
                 OPEN_TIMEOUT_S, live: bool = False):
        """`path`: a file, or a stream's URL (`live`: decoded a frame at a time, for the least delay).

        Raises VideoTooLarge, VideoUnreadable, or for a stream that does not open the error PyAV raised (the
        caller says what it means: refused, not found, timed out, not video)."""
        import av

        self.max_pixels = max_pixels
        self.live = live
        try:
            self._container = av.open(str(path), timeout=timeout,
                                      container_options=LIVE_PROBE_OPTIONS if live else PROBE_OPTIONS)
        except (av.FFmpegError, OSError, ValueError):
            if live:
                raise
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
        if (width, height) == (0, 0) and stream.codec_context.name == "mpeg4" and stream.codec_context.extradata:
            width, height = mpeg4_size(stream.codec_context.extradata) or (0, 0)
        self._check_size(width, height, "{w}x{h} pixels a frame, over the {limit} megapixel limit for videos")
        if width < 0 or height < 0:
            raise VideoUnreadable(CORRUPT)
        stream.codec_context.options = {"max_pixels": str(self.max_pixels)}  # the decoder's own bound
        stream.thread_type = "SLICE" if self.live else "AUTO"  # frame threads hold frames back: latency
        fps = sane_fps(float(stream.average_rate or 0)) or sane_fps(float(stream.guessed_rate or 0)) or DEFAULT_FPS
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
            self._container.duration / 1e6 if self._container.duration else 0.0)
        return VideoInfo(width, height, stream.frames or round(seconds * fps), fps)

    def _check_size(self, width: int, height: int, message: str) -> None:
        if width * height > self.max_pixels:
            raise VideoTooLarge(message.format(w=width, h=height, limit=f"{self.max_pixels / 1e6:.3g}"), (width, height))

    def _frame_message(self, index: int) -> str:
        return ("{w}x{h} pixels a frame, over the {limit} megapixel limit for videos" if index == 0
                else f"frame {index} is {{w}}x{{h}} pixels, over the {{limit}} megapixel limit")

    def _check_packet_header(self, codec, packet, index: int) -> None:
        """The size a packet's own header gives, checked before the decoder sees it (which, refusing, would not
        say the size): a packet of an image codec (a PNG renamed .mp4, a camera's MJPEG) is a whole image file,
        and one of MPEG-4 Part 2 may start with its layer header (a raw .m4v)."""
        if not packet.size or (codec.name not in IMAGE_CODECS and (codec.name != "mpeg4" or self.info.width)):
            return
        head = memoryview(packet)[:1 << 17].tobytes()  # the header, well within
        if codec.name == "mpeg4":
            size = mpeg4_size(head[:256])
        else:
            try:
                size = image_size(head)
            except ImageError:
                size = None
        if size:  # else the decoder bounds what this cannot measure
            self._check_size(*size, self._frame_message(index))

    def _refused(self, codec, index: int, error: Exception) -> None:
        """Raise VideoTooLarge where a packet that did not decode held a frame over `max_pixels`; return where it
        is only damaged. The decoder, refusing, leaves the size it read (H.264 does); where nothing says the size,
        an EINVAL from the decoder is its refusal (damage gives INVALIDDATA)."""
        import av

        self._check_size(codec.width, codec.height, self._frame_message(index))
        if (self.info.width, codec.width) == (0, 0) and isinstance(error, av.ArgumentError):
            which = "its first frame is" if index == 0 else f"frame {index} is"
            raise VideoTooLarge(f"{which} over the {self.max_pixels / 1e6:.3g} megapixel limit for videos (the decoder "
                                "refused it; the file does not say its size)")

    def frames(self) -> Iterator[np.ndarray]:
        """Each frame as a BGR image, turned upright as the file's display matrix says (as OpenCV does).

        Raises VideoTooLarge at the first frame over `max_pixels` (the decoder refused it); damaged packets are
        skipped, and MAX_BAD_PACKETS of them in a row end the video, as the end of a truncated file does."""
        for image, _seconds in self.timed_frames():
            yield image

    def timed_frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """frames(), each with its presentation time in seconds from the first frame: the file's own timestamp
        (a variable-rate phone video's frames are not evenly spaced), or index / fps where it gives none. Never
        earlier than the frame before (a timestamp that goes back, in a damaged file, is taken as that one's)."""
        import av

        codec, bad, index = self._stream.codec_context, 0, 0
        origin: float | None = None
        last = 0.0
        try:
            for packet in self._container.demux(self._stream):
                self._check_packet_header(codec, packet, index)
                try:
                    decoded = codec.decode(packet)
                except av.FFmpegError as exc:
                    self._refused(codec, index, exc)
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        return
                    continue
                bad = 0
                for frame in decoded:
                    self._check_size(frame.width, frame.height, f"frame {index} is {{w}}x{{h}} pixels, over the "
                                     "{limit} megapixel limit")
                    image = to_bgr(frame)
                    turns = round(getattr(frame, "rotation", 0) / 90) % 4
                    if frame.time is not None and origin is None:
                        origin = frame.time - index / self.info.fps  # the first timestamp: where its index puts it
                    seconds = frame.time - origin if frame.time is not None and origin is not None else index / self.info.fps
                    last = max(last, seconds)
                    yield (np.ascontiguousarray(np.rot90(image, turns)) if turns else image), last
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
