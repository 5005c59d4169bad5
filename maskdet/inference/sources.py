"""Where frames come from: images, folders, globs, videos, webcams, network streams, .txt lists.

Files are read in order, every frame. Live sources (webcams, streams) are read on a thread
that keeps only the newest frame, so however slow the detector is, what it sees is at most
one frame old: the delay between capture and result never grows.
"""

from __future__ import annotations

import glob
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskdet.errors import UserError
from maskdet.fileio import IMAGE_SUFFIXES, TEXT_FILE_LIMIT, read_bytes_bounded
from maskdet.imageio import ImageTooLarge, ImageUnreadable, image_size, read_image_bounded
from maskdet.inference.detections import Frame
from maskdet.inference.threads import prefetch
from maskdet.settings import MAX_PIXELS, image_file_limit
from maskdet.videoio import VideoFile, VideoTooLarge, VideoUnreadable

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000

Log = Callable[[str], None]


class SourceError(Exception):
    """A source that cannot be read; the message says what to try."""


@dataclass(frozen=True)
class InputProblem:
    """An input that failed: unreadable, or a live source that stopped sending.

    It travels in the stream of frames, so the run reports it in its place among the frame lines (not
    early, from the decoding thread) and counts it in the summary and the exit status."""

    message: str  # the whole line, 'skipped: 2/3 a.png: cannot read this image (...)'


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "image", "video", "webcam" or "stream"
    target: str  # a path, a URL or a camera index
    name: str = ""  # base name of a file's outputs: its stem, numbered when another input has the same one

    @property
    def is_live(self) -> bool:
        return self.kind in ("webcam", "stream")


def quiet_opencv_logs() -> None:
    """Keep OpenCV's and FFmpeg's own diagnostics ("[ WARN:0@0.2] global cap_v4l.cpp ...", "[tcp @ 0x...]
    Connection refused") off stderr: every failure here is already reported once, in words, with what to
    do. Setting OPENCV_LOG_LEVEL or OPENCV_FFMPEG_LOGLEVEL brings them back."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if "OPENCV_LOG_LEVEL" not in os.environ and logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when OpenCV first opens a video


def classify(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def expand_source(source: str, log: Log) -> list[SourceSpec]:
    """Turn --source into a list of inputs. Problems with one entry are logged and skipped.

    A file reached twice (a glob through a symlink loop, a list that names a photo the folder
    beside it also holds) is read once: duplicates are dropped by resolved path, with a note."""
    specs = _expand(source, log, ())
    unique: list[SourceSpec] = []
    seen: set[str] = set()
    for spec in specs:
        key = os.path.realpath(spec.target) if spec.kind in ("image", "video") else f"{spec.kind}:{spec.target}"
        if key not in seen:
            seen.add(key)
            unique.append(spec)
    if len(unique) < len(specs):
        log(f"note: {len(specs) - len(unique)} inputs reached more than once (symlinks, repeated list entries) "
            "are read once")
    return _unique_names(unique, log)


def _unique_names(specs: list[SourceSpec], log: Log) -> list[SourceSpec]:
    """Give each file a base name for its outputs no other input of the run has: a/x.jpg and b/x.jpg would
    otherwise write the same x.jpg, x.txt and crops, the second over the first. Later ones are numbered."""
    taken: set[str] = set()
    named, renamed = [], []
    for spec in specs:
        if spec.kind not in ("image", "video"):
            named.append(spec)
            continue
        stem = name = Path(spec.target).stem
        n = 2
        while name.lower() in taken:  # case-insensitive: X.jpg and x.png would clash on some disks
            name, n = f"{stem}_{n}", n + 1
        taken.add(name.lower())
        if name != stem:
            renamed.append(f"{spec.target} as {name}")
        named.append(SourceSpec(spec.kind, spec.target, name))
    if renamed:
        log(f"note: {len(renamed)} inputs have the same file name as an earlier one; their results are saved under "
            f"a numbered name so nothing is overwritten: {', '.join(renamed[:3])}" + (", ..." if len(renamed) > 3 else ""))
    return named


def _expand(source: str, log: Log, lists: tuple[str, ...]) -> list[SourceSpec]:
    """expand_source's work; `lists` holds the resolved paths of the .txt lists being read (to stop a cycle)."""
    _depth = len(lists)
    source = source.strip()
    if not source and _depth == 0:  # Path('') is the current folder: never read it by accident
        raise UserError("--source is empty: give an image, a folder, a video, a webcam index or a stream URL")
    if source.isdigit():
        return [SourceSpec("webcam", source)]
    if source.lower().startswith(STREAM_SCHEMES):
        return [SourceSpec("stream", source)]
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and classify(p) and not p.name.startswith("."))
        if not files:
            log(f"skipped: {path}: no images or videos in this folder")
        return [SourceSpec(classify(p), str(p)) for p in files]
    if path.suffix.lower() == ".txt" and path.is_file():
        resolved = os.path.realpath(path)
        if resolved in lists:
            log(f"skipped: {path}: this list includes itself (directly or through another list); its entries are read once")
            return []
        if _depth > 3:
            log(f"skipped: {path}: lists nested too deep")
            return []
        try:
            text = read_bytes_bounded(path, TEXT_FILE_LIMIT).decode("utf-8", errors="replace")
        except OSError as exc:
            log(f"skipped: {path}: cannot read this list ({exc.strerror or exc})")
            return []
        specs = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            relative = not (line.isdigit() or line.lower().startswith(STREAM_SCHEMES) or Path(line).expanduser().is_absolute())
            entry = str(path.parent / line) if relative else line
            inner: list[str] = []
            found = _expand(entry, inner.append, (*lists, resolved))
            if found:
                for note in inner:
                    log(note)
            else:  # one line for one bad entry, with the reason
                why = "; ".join(note.removeprefix("skipped: ").removeprefix(f"{entry}: ") for note in inner)
                if relative:
                    why += f"; looked for {entry}: a relative path in a list is read from the list's folder"
                log(f"skipped: {path}:{number}: nothing to read at {line!r}" + (f" ({why.lstrip('; ')})" if why else ""))
            specs.extend(found)
        return specs
    if any(ch in source for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
        specs = [SourceSpec(classify(p), str(p)) for p in matches if p.is_file() and classify(p)]
        if not specs:
            log(f"skipped: {source}: the pattern matches no images or videos")
        return specs
    if path.is_file():
        kind = classify(path)
        if kind is None:
            log(f"skipped: {path}: not an image or video file (by its extension)")
            return []
        return [SourceSpec(kind, str(path))]
    log(f"skipped: {path}: no such file or folder")
    return []


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_is_intact(data: bytes) -> bool:
    """Every chunk of a PNG is whole and its CRC matches, up to IEND.

    libpng prints its own 'libpng error: ...' line on stderr before OpenCV gives up on a damaged PNG;
    checking the chunks first means a damaged file is reported once, in our words."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return False
        if zlib.crc32(data[pos + 4:pos + 8 + length]) != int.from_bytes(data[pos + 8 + length:end], "big"):
            return False
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos = end
    return False


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image with the one bounded reader (maskdet.imageio): its size is read from the header and
    checked against max_pixels before any decoding. Unreadable or oversized files raise SourceError: the
    caller skips them."""
    try:
        data = read_bytes_bounded(path, image_file_limit(max_pixels))
    except FileNotFoundError:
        raise SourceError(f"{path}: cannot read this image (it is gone)") from None
    except OSError as exc:  # permission denied, a folder named like an image, an I/O error
        raise SourceError(f"{path}: cannot read this file ({exc.strerror or exc})") from None
    if data[:8] == PNG_SIGNATURE and not png_is_intact(data):
        raise SourceError(f"{path}: cannot read this image (a damaged or truncated PNG)")
    try:
        return read_image_bounded(data, max_pixels)
    except ImageTooLarge:
        w, h = image_size(data)
        raise SourceError(f"{path}: {w}x{h} pixels is over the limit of {max_pixels / 1e6:g} megapixels (--max-pixels; "
                          f"this one has {w * h / 1e6:.3g} megapixels): downscale it or raise --max-pixels") from None
    except ImageUnreadable as exc:
        raise SourceError(f"{path}: cannot read this image ({exc})") from None
    except (cv2.error, MemoryError):  # OpenCV's own pixel ceiling, or no memory for the pixels
        raise SourceError(f"{path}: cannot read this image (too large to decode)") from None


class StreamCapture:
    """A network stream read as cv2.VideoCapture is (isOpened, read, get, release), but decoded by
    maskdet.videoio: the decoder refuses a frame over `max_pixels` before allocating it, where OpenCV would
    decode it and rescale it to the first frame's size. `refused` then holds the VideoTooLarge."""

    def __init__(self, url: str, max_pixels: int):
        self.refused: VideoTooLarge | None = None
        self._video: VideoFile | None = None
        try:
            self._video = VideoFile(url, max_pixels, (OPEN_TIMEOUT_MS / 1000, READ_TIMEOUT_MS / 1000), live=True)
        except VideoTooLarge as exc:
            self.refused = exc
        except VideoUnreadable:
            pass
        self._frames = self._video.frames() if self._video is not None else iter(())

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._video is not None or self.refused is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        try:
            return True, next(self._frames)
        except StopIteration:
            return False, None
        except VideoTooLarge as exc:
            self.refused = exc
            return False, None

    def get(self, prop: int) -> float:
        return self._video.info.fps if prop == cv2.CAP_PROP_FPS and self._video is not None else 0.0

    def release(self) -> None:
        if self._video is not None:
            self._video.close()


def iter_video(path: Path, vid_stride: int, log: Log, ended_early: Log | None = None,
               name: str | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[Frame]:
    """Every vid_stride-th frame of a video file; a truncated file ends early with a note (to `ended_early`
    when given: detect.py counts it as a problem, as it did not read the input to its end).

    Decoded by maskdet.videoio, whose decoder refuses a frame over `max_pixels` before allocating it: a
    video over the limit is refused from its header, and a frame past it later (a stream that changes
    size midway) ends the video with the reason."""
    try:
        video = VideoFile(path, max_pixels)
    except VideoTooLarge as exc:
        raise SourceError(f"{path}: {exc}") from None
    except VideoUnreadable:
        raise SourceError(f"{path}: cannot open this video (corrupt, or a codec FFmpeg lacks)") from None
    fps, total = video.info.fps, video.info.frames or None
    index = 0
    with video:
        try:
            for image in video.frames():
                if index % vid_stride == 0:
                    yield Frame(image, str(path), name or path.stem, "video", index, index / fps, time.perf_counter(),
                                fps / vid_stride, total)
                index += 1
        except VideoTooLarge as exc:
            raise SourceError(f"{path}: {exc}") from None
    if index == 0:
        raise SourceError(f"{path}: no frame could be decoded (empty or corrupt video)")
    if total and index < total - 1 and total - index > 2:
        (ended_early or log)(f"{path}: ended after {index} of {total} frames (truncated?); what was read is kept")


class LatestFrameReader:
    """Reads a webcam or stream on a thread and hands out only the newest frame.

    A dropped stream is reopened with exponential backoff; after `give_up_after` seconds
    without a frame it ends (0 = keep trying forever).
    """

    def __init__(self, spec: SourceSpec, log: Log, give_up_after: float = 30.0, max_pixels: int = MAX_PIXELS):
        self.spec = spec
        self.log = log
        self.give_up_after = give_up_after
        self.max_pixels = max_pixels
        self.refused: str | None = None  # why it stopped reading a source whose frames are over max_pixels
        self.target: str | int = int(spec.target) if spec.kind == "webcam" else spec.target
        self.name = f"webcam{spec.target}" if spec.kind == "webcam" else _stream_name(spec.target)
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, int, float] | None = None
        self._taken = -1
        self._stop = threading.Event()
        self._ended = False
        self.gave_up = False  # ended because no frame came for give_up_after seconds
        self.fps: float | None = None
        self.started = 0.0
        self._thread: threading.Thread | None = None

    def _capture(self) -> cv2.VideoCapture | StreamCapture:
        """A webcam through OpenCV (V4L2, DirectShow...), a stream through PyAV (bounded in pixels)."""
        return cv2.VideoCapture(self.target) if isinstance(self.target, int) else StreamCapture(self.target, self.max_pixels)

    def _refuse(self, width: int, height: int) -> None:
        """Stop reading a source whose frames are over max_pixels (never handed out, never reconnected to)."""
        self.refused = f"frames of {width}x{height} pixels, over the {self.max_pixels / 1e6:.3g} megapixel limit (--max-pixels)"

    def open(self) -> None:
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            if self.spec.kind == "webcam":
                raise SourceError(
                    f"cannot open webcam {self.target}: no camera there, or it is busy. Try another index "
                    f"(--source 1), close other programs using the camera, check that your user may read "
                    f"/dev/video{self.target} (the 'video' group); in Docker/WSL pass the device through")
            raise SourceError(f"cannot open stream {self.target}: check the URL, that the server is up, "
                              "and that it is reachable from here")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 240 else None
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(cap,), name=f"reader-{self.name}", daemon=True)
        self._thread.start()

    def _run(self, cap: cv2.VideoCapture) -> None:
        index = 0
        last_frame = time.perf_counter()
        backoff = 0.5
        while not self._stop.is_set():
            ok, image = cap.read() if cap is not None else (False, None)
            now = time.perf_counter()
            if getattr(cap, "refused", None) is not None:  # a stream: its decoder refused the frame
                self._refuse(*cap.refused.size)
                break
            if ok and image.shape[0] * image.shape[1] > self.max_pixels:  # a webcam: OpenCV decoded it
                self._refuse(image.shape[1], image.shape[0])
                break
            if ok:
                with self._cond:
                    self._latest = (image, index, now)
                    self._cond.notify_all()
                index += 1
                last_frame, backoff = now, 0.5
                continue
            if cap is not None:
                cap.release()
                cap = None
                self.log(f"warning: {self.spec.target}: no frames; reconnecting")
            left = self.give_up_after - (now - last_frame) if self.give_up_after else float("inf")
            if left <= 0:
                self.gave_up = True  # reported by the run, in its place and in the exit status
                break
            if self._stop.wait(min(backoff, left)):  # never sleeps past the give-up time; close() wakes it
                break
            backoff = min(backoff * 2, 8.0)
            cap = self._capture()
            if cap.isOpened():
                self.log(f"note: {self.spec.target}: reconnected")
                continue
            cap.release()
            cap = None
            left = self.give_up_after - (time.perf_counter() - last_frame) if self.give_up_after else float("inf")
            if left > 0:  # else the loop gives up next, and says only that
                self.log(f"warning: {self.spec.target}: still unavailable; trying again in {min(backoff, left):.0f} s")
        if cap is not None:
            cap.release()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def frames(self) -> Iterator[Frame]:
        """Yield each newest frame once; frames that arrived meanwhile are skipped, never queued."""
        while True:
            with self._cond:
                while not self._ended and (self._latest is None or self._latest[1] == self._taken):
                    self._cond.wait(timeout=0.5)
                if self._latest is None or self._latest[1] == self._taken:
                    return  # ended with nothing new
                image, index, captured = self._latest
                self._taken = index
            yield Frame(image, str(self.spec.target), self.name, "live", index, captured - self.started, captured, self.fps)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=READ_TIMEOUT_MS / 1000 + 2)


def _stream_name(url: str) -> str:
    stem = url.split("://", 1)[-1].split("?", 1)[0].strip("/").replace("/", "_").replace(":", "_")
    return f"stream_{stem}"[:80] or "stream"


def _file_frames(specs: list[SourceSpec], first: int, count: int, vid_stride: int,
                 log: Log, max_pixels: int = MAX_PIXELS) -> Iterator[Frame | InputProblem]:
    for n, spec in enumerate(specs, first):
        position = f"{n}/{count}"
        try:
            if spec.kind == "image":
                path = Path(spec.target)
                yield Frame(read_image(path, max_pixels), str(path), spec.name or path.stem, "image", 0, 0.0, time.perf_counter(),
                            position=position)
            else:
                early: list[str] = []
                read = 0
                try:
                    for frame in iter_video(Path(spec.target), vid_stride, log, early.append, spec.name or None, max_pixels):
                        frame.position = position
                        read += 1
                        yield frame
                except SourceError as exc:
                    if not read:
                        raise
                    early.append(str(exc))  # a video refused midway (a frame over --max-pixels): its start is kept
                for message in early:
                    yield InputProblem(f"stopped early: {position} {message}")
        except SourceError as exc:
            if count == 1:
                raise UserError(str(exc)) from None
            yield InputProblem(f"skipped: {position} {exc}")


def _live_frames(spec: SourceSpec, position: str, count: int, log: Log,
                 stream_timeout: float, max_pixels: int = MAX_PIXELS) -> Iterator[Frame | InputProblem]:
    reader = LatestFrameReader(spec, log, stream_timeout, max_pixels)
    try:
        reader.open()
    except SourceError as exc:
        if count == 1:
            raise UserError(str(exc)) from None
        yield InputProblem(f"skipped: {position} {exc}")
        return
    try:
        for frame in reader.frames():
            frame.position = position
            yield frame
    finally:
        reader.close()
    if reader.refused:
        yield InputProblem(f"stopped: {spec.target}: {reader.refused}")
    elif reader.gave_up:
        yield InputProblem(f"stopped: {spec.target}: gave up after {stream_timeout:.0f} s without frames")


def iter_frames(specs: list[SourceSpec], vid_stride: int, log: Log,
                stream_timeout: float, max_pixels: int = MAX_PIXELS) -> Iterator[Frame | InputProblem]:
    """All frames of all inputs in order, with an InputProblem in place of an input that failed.

    Runs of files are decoded on a prefetch thread while the detector works; live sources are
    not (a queue would show old frames).
    """
    i = 0
    while i < len(specs):
        if specs[i].is_live:
            yield from _live_frames(specs[i], f"{i + 1}/{len(specs)}", len(specs), log, stream_timeout, max_pixels)
            i += 1
            continue
        j = i
        while j < len(specs) and not specs[j].is_live:
            j += 1
        yield from prefetch(_file_frames(specs[i:j], i + 1, len(specs), vid_stride, log, max_pixels))
        i = j
