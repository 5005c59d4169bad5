"""Where frames come from: images, folders, globs, videos, webcams, network streams, .txt lists.

Files are read in order, every frame. An http(s) URL whose path ends in an image or video suffix is a file
too (read once, bounded in bytes and time as a file from disk is); any other URL is a live stream. Live
sources (webcams, streams) are read on a thread that keeps only the newest frame, so however slow the
detector is, what it sees is at most one frame old: the delay between capture and result never grows.
"""

from __future__ import annotations

import glob
import http.client
import os
import re
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import urlsplit

import cv2
import numpy as np

from maskdet.errors import UserError
from maskdet.fileio import IMAGE_SUFFIXES, TEXT_FILE_LIMIT, read_bytes_bounded
from maskdet.imageio import ImageTooLarge, ImageUnreadable, image_size, read_image_bounded
from maskdet.inference.detections import Frame
from maskdet.inference.threads import prefetch
from maskdet.interrupts import strand
from maskdet.settings import MAX_PIXELS, image_file_limit
from maskdet.videoio import CORRUPT, OPEN_TIMEOUT_S, VideoFile, VideoTooLarge, VideoUnreadable, sane_fps

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# An http(s) URL to a file of these suffixes is still a live stream: MPEG-TS over HTTP is how cameras and
# `ffmpeg -listen` serve live video (an .m3u8 playlist, or a URL with no suffix, is a stream too).
URL_STREAM_SUFFIXES = frozenset({".ts"})
OPEN_TIMEOUT_MS = 5000  # opening a stream when --stream-timeout is 0 (reconnect forever), and monitor.py's cameras
MAX_OPEN_TIMEOUT_S = 60.0  # opening a stream otherwise waits --stream-timeout seconds, at most this
READ_TIMEOUT_MS = 5000
URL_TIMEOUT_S = 10.0  # an image or video file behind a URL: the server sends nothing for this long, it is given up
URL_TOTAL_S = 60.0  # an image behind a URL must have arrived whole within this
MAX_WEBCAM_INDEX = 9999
MAX_LIST_LINE = 4096  # characters of a line in a list: PATH_MAX on Linux; a longer one is no path or URL

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
    origin: str = ""  # 'list.txt:3' for an entry of a list: named when the input fails

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


def is_url(source: str) -> bool:
    return source.lower().startswith(STREAM_SCHEMES)


def url_kind(url: str) -> str:
    """"image" or "video" for an http(s) URL whose path ends in such a suffix (a file: read once, to its end),
    else "stream" (live: read on a thread and reopened when it drops)."""
    if not url.lower().startswith(("http://", "https://")):
        return "stream"
    try:
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    except ValueError:  # not a URL urllib can split (a bad [IPv6] host): FFmpeg says what is wrong with it
        return "stream"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return "video" if suffix in VIDEO_SUFFIXES - URL_STREAM_SUFFIXES else "stream"


def _stem(target: str) -> str:
    """The base name of a file's outputs: a path's stem, or the stem of a URL's path."""
    if is_url(target):
        return PurePosixPath(urlsplit(target).path).stem or "url"
    return Path(target).stem


def _is_webcam_index(source: str) -> bool:
    return source.isascii() and source.isdigit()  # '²'.isdigit() is True too; int() refuses it


def _not_regular(path: Path) -> str:
    """Why a path that exists is not a file to read: a broken link, a named pipe, a device, a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        try:
            to = os.readlink(path)
        except OSError:
            return "a broken symbolic link"
        return f"a broken symbolic link: it points to {to}, which does not exist"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    what = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "something else")
    return f"not a regular file but {what}: give an image, a video, a folder or a .txt list"


NEWLINE = b"\n"


def _not_text(data: bytes) -> str | None:
    """Why a list file's bytes are not a text list (None when they are): not UTF-8, or NUL bytes."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "it is UTF-16 text: save it as UTF-8"
    try:
        data.decode("utf-8-sig")
        bad = None
    except UnicodeDecodeError as exc:
        bad = exc.start
    nul = data.find(b"\0")
    if nul >= 0 and (bad is None or nul < bad):
        return f"line {data.count(NEWLINE, 0, nul) + 1} holds a NUL byte"
    if bad is not None:
        return f"line {data.count(NEWLINE, 0, bad) + 1} is not UTF-8 text"
    return None


def expand_source(source: str, log: Log, outputs_named: bool = True) -> list[SourceSpec]:
    """Turn --source into a list of inputs. Problems with one entry are logged and skipped.

    outputs_named: whether the run writes files named after its inputs (annotated images, labels, crops);
    only then does a numbered name given to a second x.jpg deserve a note.

    A file reached twice (a glob through a symlink loop, a list that names a photo the folder
    beside it also holds) is read once: duplicates are dropped by resolved path, with a note."""
    specs = _expand(source, log, ())
    unique: list[SourceSpec] = []
    seen: set[str] = set()
    for spec in specs:
        local = spec.kind in ("image", "video") and not is_url(spec.target)
        key = os.path.realpath(spec.target) if local else f"{spec.kind}:{spec.target}"
        if key not in seen:
            seen.add(key)
            unique.append(spec)
    if len(unique) < len(specs):
        log(f"note: {len(specs) - len(unique)} inputs reached more than once (symlinks, repeated list entries) "
            "are read once")
    return _unique_names(unique, log if outputs_named else lambda _note: None)


def _unique_names(specs: list[SourceSpec], log: Log) -> list[SourceSpec]:
    """Give each file a base name for its outputs no other input of the run has: a/x.jpg and b/x.jpg would
    otherwise write the same x.jpg, x.txt and crops, the second over the first. Later ones are numbered."""
    taken: set[str] = set()
    named, renamed = [], []
    for spec in specs:
        if spec.kind not in ("image", "video"):
            named.append(spec)
            continue
        stem = name = _stem(spec.target)
        n = 2
        while name.lower() in taken:  # case-insensitive: X.jpg and x.png would clash on some disks
            name, n = f"{stem}_{n}", n + 1
        taken.add(name.lower())
        if name != stem:
            renamed.append(f"{spec.target} as {name}")
        named.append(replace(spec, name=name))
    if renamed:
        log(f"note: {len(renamed)} inputs have the same file name as an earlier one; their results are saved under "
            f"a numbered name so nothing is overwritten: {', '.join(renamed[:3])}" + (", ..." if len(renamed) > 3 else ""))
    return named


def _expand(source: str, log: Log, lists: tuple[str, ...]) -> list[SourceSpec]:
    """expand_source's work; `lists` holds the resolved paths of the .txt lists being read (to stop a cycle)."""
    source = source.strip()
    if not source and not lists:  # Path('') is the current folder: never read it by accident
        raise UserError("--source is empty: give an image, a folder, a video, a webcam index or a stream URL")
    if _is_webcam_index(source):
        if len(source.lstrip("0")) > len(str(MAX_WEBCAM_INDEX)):
            log(f"skipped: {source}: out of range for a webcam index, which is 0 to {MAX_WEBCAM_INDEX}")
            return []
        return [SourceSpec("webcam", str(int(source)))]
    if is_url(source):
        return [SourceSpec(url_kind(source), source)]
    try:
        return _expand_path(source, Path(source).expanduser(), log, lists)
    except (OSError, RuntimeError) as exc:  # a name too long for the file system; '~nobody' (no such home)
        log(f"skipped: {source}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
        return []


def _expand_path(source: str, path: Path, log: Log, lists: tuple[str, ...]) -> list[SourceSpec]:
    if path.is_dir():
        return _expand_folder(path, log)
    if path.suffix.lower() == ".txt" and path.is_file():
        return _expand_list(path, log, lists)
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
    if os.path.lexists(path):
        log(f"skipped: {path}: {_not_regular(path)}")
        return []
    log(f"skipped: {path}: no such file or folder")
    return []


def _expand_folder(path: Path, log: Log) -> list[SourceSpec]:
    """The images and videos directly in a folder. One with an image or video name that is not a file (a
    broken link, a named pipe) is skipped with the reason, and counted; subfolders are named in one note."""
    specs: list[SourceSpec] = []
    skipped: list[str] = []
    subfolders = 0
    for p in sorted(path.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            subfolders += 1
            continue
        kind = classify(p)
        if kind is None:
            continue
        if p.is_file():
            specs.append(SourceSpec(kind, str(p)))
        else:
            skipped.append(f"skipped: {p}: {_not_regular(p)}")
    for line in skipped:
        log(line)
    below = (f"its {subfolders} subfolder{'s are' if subfolders > 1 else ' is'} not read (only the files directly in a "
             f"folder are): --source '{path / '**' / '*'}' reads every file below it, or give a subfolder as --source")
    if not specs and not skipped:
        log(f"skipped: {path}: no images or videos in this folder" + (f"; {below}" if subfolders else ""))
    elif subfolders:
        log(f"note: {path}: {below}")
    return specs


def _list_entry(listing: Path, line: str) -> tuple[str, str, bool]:
    """(the line without a trailing comment, the source it names, whether it was relative to the list's folder).

    A '#' inside a line is part of it ('photo #1.jpg', a URL's #fragment); after a blank it starts a comment
    ('clip.avi  # the door') only where the whole line names no file: a file named 'photo #1.jpg' is read."""
    def entry_of(text: str) -> tuple[str, bool]:
        try:
            absolute = _is_webcam_index(text) or is_url(text) or Path(text).expanduser().is_absolute()
        except RuntimeError:  # '~nobody/x.jpg': no such home; _expand says so
            absolute = True
        return (text, False) if absolute else (str(listing.parent / text), True)

    entry, relative = entry_of(line)
    comment = re.search(r"\s#", line)
    if comment and not os.path.lexists(os.path.expanduser(entry)):
        bare = line[:comment.start()].rstrip()
        bare_entry, bare_relative = entry_of(bare)
        # a URL or webcam index holds no blank; else what is left must name something (a file, a folder, a glob)
        if bare and (is_url(bare) or _is_webcam_index(bare) or any(ch in bare for ch in "*?[")
                     or os.path.lexists(os.path.expanduser(bare_entry))):
            return bare, bare_entry, bare_relative
    return line, entry, relative


def _expand_list(path: Path, log: Log, lists: tuple[str, ...]) -> list[SourceSpec]:
    """A .txt list of sources, one a line (UTF-8, with or without a byte order mark). A line whose first non-blank
    character is '#' is a comment, and so is the rest of a line after a blank and '#' where the whole line names no
    file (_list_entry)."""
    resolved = os.path.realpath(path)
    if resolved in lists:
        log(f"skipped: {path}: this list includes itself, directly or through another list: its entries are read once")
        return []
    if len(lists) > 3:
        log(f"skipped: {path}: lists nested too deep")
        return []
    try:
        data = read_bytes_bounded(path, TEXT_FILE_LIMIT)
    except OSError as exc:
        log(f"skipped: {path}: cannot read this list ({exc.strerror or exc})")
        return []
    why_not = _not_text(data)
    if why_not:
        log(f"skipped: {path}: not a text list of sources: {why_not}")
        return []
    specs = []
    for number, line in enumerate(data.decode("utf-8-sig").splitlines(), 1):  # -sig: Notepad's byte order mark
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LIST_LINE:
            log(f"skipped: {path}:{number}: a line of {len(line):,} characters is not a path or URL")
            continue
        line, entry, relative = _list_entry(path, line)
        inner: list[str] = []
        found = _expand(entry, inner.append, (*lists, resolved))
        if found:
            for note in inner:
                log(note)
        else:  # one line for one bad entry, with the reason
            why = "; ".join(note.removeprefix("skipped: ").removeprefix(f"{entry}: ") for note in inner)
            if relative and not os.path.lexists(entry):
                why += f"; looked for {entry}: a relative path in a list is read from the list's folder"
            log(f"skipped: {path}:{number}: nothing to read at {line!r}" + (f" ({why.lstrip('; ')})" if why else ""))
        specs.extend(spec if spec.origin else replace(spec, origin=f"{path}:{number}") for spec in found)
    return specs


def read_image(path: Path, max_pixels: int = MAX_PIXELS, limit_flag: str | None = None) -> np.ndarray:
    """Decode an image with the one bounded reader (maskdet.imageio): its size is read from the header and
    checked against max_pixels before any decoding. Unreadable or oversized files raise SourceError: the
    caller skips them. `limit_flag`: the caller's flag that sets max_pixels (detect.py's --max-pixels), named
    in the message of an image over it; a caller with none (prelabel.py, export.py) gets only 'downscale it'."""
    try:
        data = read_bytes_bounded(path, image_file_limit(max_pixels))
    except FileNotFoundError:
        raise SourceError(f"{path}: cannot read this image (it is gone)") from None
    except OSError as exc:  # permission denied, a folder named like an image, an I/O error
        raise SourceError(f"{path}: cannot read this file ({exc.strerror or exc})") from None
    return _decode_image(data, str(path), max_pixels, limit_flag)


def _decode_image(data: bytes, name: str, max_pixels: int, limit_flag: str | None = None) -> np.ndarray:
    """read_image's decoding of a file's bytes (or a URL's), errors named after `name`."""
    try:
        return read_image_bounded(data, max_pixels)
    except ImageTooLarge:
        w, h = image_size(data)
        flag, fix = (f"{limit_flag}; ", f"downscale it or raise {limit_flag}") if limit_flag else ("", "downscale it")
        megapixels = f"{w * h / 1e6:,.0f}" if w * h >= 1e8 else f"{w * h / 1e6:.3g}"  # 2,500, not 2.5e+03
        raise SourceError(f"{name}: {w}x{h} pixels is over the limit of {max_pixels / 1e6:g} megapixels ({flag}"
                          f"this one has {megapixels} megapixels): {fix}") from None
    except ImageUnreadable as exc:  # its reason may hold parentheses of its own: none around it
        raise SourceError(f"{name}: cannot read this image: {exc}") from None
    except (cv2.error, MemoryError):  # OpenCV's own pixel ceiling, or no memory for the pixels
        raise SourceError(f"{name}: cannot read this image: too large to decode") from None


def read_url_bytes(url: str, limit: int, timeout: float = URL_TIMEOUT_S, total: float = URL_TOTAL_S) -> bytes:
    """The body of an http(s) URL, refused past `limit` bytes (from Content-Length before reading, else as
    it comes), past `timeout` seconds without a byte, or `total` seconds in all. Raises SourceError
    (without the URL: the caller adds it)."""
    deadline = time.monotonic() + total
    request = urllib.request.Request(url, headers={"User-Agent": "maskdet"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only: url_kind)
            length = response.headers.get("Content-Length", "")
            if length.isascii() and length.isdigit() and int(length) > limit:
                raise SourceError(f"{int(length):,} bytes, over the {limit:,}-byte limit for an image (--max-pixels)")
            chunks, size = [], 0
            while chunk := response.read1(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise SourceError(f"it goes on past the {limit:,}-byte limit for an image (--max-pixels)")
                if time.monotonic() > deadline:
                    raise SourceError(f"it did not arrive whole within {total:g} s ({size:,} bytes came)")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise SourceError(f"the server did not answer within {timeout:g} s") from None
        raise SourceError(f"cannot reach the server: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:
        raise SourceError(f"the server sent nothing for {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # a reset connection, a cut body, a bad URL
        raise SourceError(f"the download failed: {getattr(exc, 'strerror', None) or str(exc) or type(exc).__name__}") from None


def read_url_image(url: str, max_pixels: int = MAX_PIXELS, limit_flag: str | None = None) -> np.ndarray:
    """An image behind an http(s) URL: read once, bounded in bytes (as a file is, image_file_limit) and in
    time, then decoded as a file is (its size checked against max_pixels from its header first)."""
    try:
        data = read_url_bytes(url, image_file_limit(max_pixels))
    except SourceError as exc:
        raise SourceError(f"{url}: cannot read this image: {exc}") from None
    return _decode_image(data, url, max_pixels, limit_flag)


class StreamCapture:
    """A network stream read as cv2.VideoCapture is (isOpened, read, get, release), but decoded by
    maskdet.videoio: the decoder refuses a frame over `max_pixels` before allocating it, where OpenCV would
    decode it and rescale it to the first frame's size. `refused` then holds the VideoTooLarge."""

    def __init__(self, url: str, max_pixels: int, open_timeout: float = OPEN_TIMEOUT_MS / 1000):
        self.refused: VideoTooLarge | None = None
        self.timed_out = False  # no video came within open_timeout (the server may not have answered, or sent nothing)
        self.failure: str | None = None  # what went wrong, where FFmpeg says it (refused, 404, not a video)
        self._video: VideoFile | None = None
        try:
            self._video = VideoFile(url, max_pixels, (open_timeout, READ_TIMEOUT_MS / 1000), live=True)
        except VideoTooLarge as exc:
            self.refused = exc
        except Exception as exc:  # noqa: BLE001 (every way an open fails is said in words, none is raised)
            self.timed_out, self.failure = _open_failure(exc)
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


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:  # gone, or not readable: the open says so
        return False


def _open_failure(exc: Exception) -> tuple[bool, str | None]:
    """(whether it timed out, what happened where FFmpeg's error says it) for a stream that did not open.

    A timeout cannot tell a server that never answered from one that answered and then sent nothing that
    decodes (FFmpeg's open is one call): _why_no_video tells them apart afterwards."""
    import av

    if isinstance(exc, (av.ExitError, TimeoutError)):  # PyAV's open timeout interrupts FFmpeg (EXIT), or a socket's
        return True, None
    if isinstance(exc, (av.HTTPClientError, av.HTTPServerError, av.HTTPError)):  # 4xx, 5xx, and others: no common base
        return False, f"the server answered {str(exc.strerror).removeprefix('Server returned ')}: check the URL"
    if isinstance(exc, ConnectionRefusedError):
        return False, "the connection was refused: check the URL (its port) and that the server is up"
    if isinstance(exc, VideoUnreadable):
        return False, ("the server answered, but with no video stream" if str(exc) != CORRUPT
                       else "the server answered, but not with a video that can be decoded")
    if isinstance(exc, av.InvalidDataError):
        return False, "the server answered, but what it sent is not a video that can be decoded"
    return False, None


# Where a stream URL names no port: the scheme's own. UDP-based schemes (udp, srt) have no connection to try.
TCP_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443, "tcp": None}
REACH_PROBE_S = 3.0  # a camera on a LAN, or a server across the world, answers a TCP handshake well within this
NAME_LOOKUP_S = 1.0  # what the probe allows a name lookup beside that (it has no timeout of its own)


def _why_no_video(url: str) -> str:
    """Why a stream's opening timed out, told apart by one TCP connection to its host and port (made after the
    failure, closed at once): nothing answered there at all (a wrong address, a camera that is off or firewalled),
    or something took the connection and then sent no video (a wrong path, a camera not streaming). FFmpeg's open is
    one call and its timeout cannot say which."""
    target = _probe_target(url)
    try:  # on a thread: Ctrl-C must not wait for a name lookup
        reach = _on_a_thread(lambda: tcp_reach(url, REACH_PROBE_S), "reach-probe",
                             REACH_PROBE_S + NAME_LOOKUP_S) if target else None
    except _GaveUp:
        reach = None
    if reach == "connected":
        return ("the server took the connection but sent nothing that can be decoded. Check the URL's path and "
                "that the camera is streaming")
    if reach == "refused":
        return "the connection was refused: check the URL (its port) and that the server is up"
    if reach == "silent" and target:
        return (f"nothing answered at {_host_and_port(*target)} within {REACH_PROBE_S:g} s. Check the address, and that the "
                "camera is on and reachable from here")
    return ("the server did not answer, or answered but sent nothing that can be decoded. Check the URL and that the "
            "server is up and streaming")


def _probe_target(url: str) -> tuple[str, int] | None:
    """(host, port) a TCP connection to the stream's server goes to; None where there is none to try, or where FFmpeg
    goes through a proxy (http_proxy and the like: the server may be reachable only that way)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = (parts.port if parts.port is not None else TCP_PORTS[scheme]) if scheme in TCP_PORTS else None
    except ValueError:  # a port out of range or not a number
        return None
    host = parts.hostname
    if not host or not port:
        return None
    if scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return None
    return host, port


def _host_and_port(host: str, port: int) -> str:
    """host:port as a URL writes it: an IPv6 address in brackets ([::1]:554, not ::1:554)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tcp_reach(url: str, timeout: float) -> str | None:
    """"connected", "refused" or "silent" (no answer to the handshake within `timeout`) from the first address of the
    stream's host and port; None where it cannot be told (no TCP port to try, a name that does not resolve, no
    route)."""
    target = _probe_target(url)
    if target is None:
        return None
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(*target, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "silent"
    except OSError:  # socket.gaierror (no such name) among them
        return None


def iter_video(path: Path | str, vid_stride: int, log: Log, ended_early: Log | None = None,
               name: str | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[Frame]:
    """Every vid_stride-th frame of a video file; a truncated file ends early with a note (to `ended_early`
    when given: detect.py counts it as a problem, as it did not read the input to its end).

    Decoded by maskdet.videoio, whose decoder refuses a frame over `max_pixels` before allocating it: a
    video over the limit is refused from its header, and a frame past it later (a stream that changes
    size midway) ends the video with the reason. `path` may be an http(s) URL to a video file: read once, to
    its end (a connection that drops ends it early, as a truncated file does; each read waits URL_TIMEOUT_S)."""
    if isinstance(path, Path) and _is_empty(path):
        raise SourceError(f"{path}: cannot read this video: the file is empty")
    try:
        video = VideoFile(path, max_pixels, URL_TIMEOUT_S if isinstance(path, str) and is_url(path) else OPEN_TIMEOUT_S)
    except VideoTooLarge as exc:
        raise SourceError(f"{path}: {exc}") from None
    except VideoUnreadable as exc:
        if str(exc) != CORRUPT:  # the file holds no video stream (audio only)
            raise SourceError(f"{path}: cannot read this video: {exc}") from None
        if isinstance(path, str) and is_url(path):
            raise SourceError(f"{path}: cannot open this video: corrupt, a codec FFmpeg lacks, or an MP4 with its index "
                              "at the end from a server that cannot seek (no Range requests): download it first") from None
        raise SourceError(f"{path}: cannot open this video (corrupt, or a codec FFmpeg lacks)") from None
    fps, total = video.info.fps, video.info.frames or None
    index = 0
    with video:
        try:
            for image, seconds in video.timed_frames():  # the file's own times: a phone's variable rate is uneven
                if index % vid_stride == 0:
                    yield Frame(image, str(path), name or _stem(str(path)), "video", index, seconds, time.perf_counter(),
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

    def open_timeout(self) -> float:
        """Seconds a stream's server has to answer: --stream-timeout (at least 1, at most MAX_OPEN_TIMEOUT_S),
        or OPEN_TIMEOUT_MS when it is 0 (reconnect forever: each try waits that long)."""
        if not self.give_up_after:
            return OPEN_TIMEOUT_MS / 1000
        return min(max(self.give_up_after, 1.0), MAX_OPEN_TIMEOUT_S)

    def _capture(self, open_timeout: float | None = None) -> cv2.VideoCapture | StreamCapture:
        """A webcam through OpenCV (V4L2, DirectShow...), a stream through PyAV (bounded in pixels)."""
        if isinstance(self.target, int):
            return cv2.VideoCapture(self.target)
        return StreamCapture(self.target, self.max_pixels, open_timeout or self.open_timeout())

    def _refuse(self, size: tuple[int, int] | None) -> None:
        """Stop reading a source whose frames are over max_pixels (never handed out, never reconnected to); `size`
        None where neither the stream nor the decoder refusing its frame says it."""
        frames = f"frames of {size[0]}x{size[1]} pixels" if size else "frames"
        self.refused = f"{frames}, over the {self.max_pixels / 1e6:.3g} megapixel limit (--max-pixels)"

    def _open_stream(self, timeout: float) -> StreamCapture | None:
        """The stream opened within `timeout` seconds, or None: the opening is waited for on a thread and given up
        at the timeout (PyAV's own timeout runs once to connect and again to probe: alone it may take twice as long)."""
        try:
            return _on_a_thread(lambda: self._capture(timeout), f"open-{self.name}", timeout)
        except _GaveUp:
            return None

    def open(self) -> None:
        # A stream is opened on a thread: PyAV's open, in C, holds Ctrl-C back until its timeout and then drops
        # it; waiting here instead, the main thread gets it at once (the abandoned open ends at its timeout).
        cap = self._capture() if self.spec.kind == "webcam" else self._open_stream(self.open_timeout())
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            if self.spec.kind == "webcam":
                raise SourceError(
                    f"cannot open webcam {self.target}: no camera there, or it is busy. Try another index "
                    f"(--source 1), close other programs using the camera, check that your user may read "
                    f"/dev/video{self.target} (the 'video' group); in Docker/WSL pass the device through")
            if cap is None or cap.timed_out:
                raise SourceError(f"cannot open stream {self.target}: no video came within {self.open_timeout():g} s "
                                  f"(--stream-timeout): {_why_no_video(self.target)}")
            if cap.failure:
                raise SourceError(f"cannot open stream {self.target}: {cap.failure}")
            raise SourceError(f"cannot open stream {self.target}: check the URL, that the server is up, "
                              "and that it is reachable from here")
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
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
                self._refuse(cap.refused.size)
                break
            if ok and image.shape[0] * image.shape[1] > self.max_pixels:  # a webcam: OpenCV decoded it
                self._refuse((image.shape[1], image.shape[0]))
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
            left = self.give_up_after - (time.perf_counter() - last_frame) if self.give_up_after else self.open_timeout()
            timeout = max(1.0, min(left, self.open_timeout()))  # a try never runs past the give-up time
            cap = self._capture(timeout) if isinstance(self.target, int) else self._open_stream(timeout)
            if cap is not None and cap.isOpened():
                self.log(f"note: {self.spec.target}: reconnected")
                continue
            if cap is not None:
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


T = TypeVar("T")


class _GaveUp(Exception):
    """_on_a_thread's opener did not finish within its timeout."""


def _on_a_thread(opener: Callable[[], T], name: str, timeout: float | None = None) -> T:
    """opener() run on a daemon thread while this one waits, so Ctrl-C stops the wait at once, and so does
    `timeout` (raising _GaveUp). A capture opened after the wait was given up is released by the thread itself."""
    result: list = []
    done = threading.Event()
    lock = threading.Lock()
    given_up = False

    def work() -> None:
        try:
            value = opener()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            value = exc
        with lock:
            if given_up:
                if hasattr(value, "release"):  # a capture: closed here, as no one will take it
                    value.release()
                return
            result.append(value)
        done.set()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    try:
        while not done.wait(max(0.0, min(0.25, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise _GaveUp(name)
    except BaseException:
        strand(thread)  # maybe still inside FFmpeg: the process must not run Python's shutdown under it
        with lock:
            given_up = True
            if result and hasattr(result[0], "release"):  # a capture no one will take
                result[0].release()
        raise
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _stream_name(url: str) -> str:
    stem = url.split("://", 1)[-1].split("?", 1)[0].strip("/").replace("/", "_").replace(":", "_")
    return f"stream_{stem}"[:80] or "stream"


def _file_frames(specs: list[SourceSpec], first: int, count: int, vid_stride: int,
                 log: Log, max_pixels: int = MAX_PIXELS) -> Iterator[Frame | InputProblem]:
    for n, spec in enumerate(specs, first):
        position = f"{n}/{count}"
        url = is_url(spec.target)  # an http(s) URL to an image or video file
        try:
            if spec.kind == "image":
                source = spec.target if url else str(Path(spec.target))
                reader = read_url_image if url else read_image
                image = reader(source if url else Path(source), max_pixels, "--max-pixels")
                yield Frame(image, source, spec.name or _stem(source), "image", 0, 0.0, time.perf_counter(), position=position)
            else:
                early: list[str] = []
                read = 0
                try:
                    for frame in iter_video(spec.target if url else Path(spec.target), vid_stride, log, early.append,
                                            spec.name or None, max_pixels):
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
    origin = f"{spec.origin}: " if spec.origin else ""  # the list line it came from
    try:
        reader.open()
    except SourceError as exc:
        if count == 1:
            raise UserError(f"{origin}{exc}") from None
        yield InputProblem(f"skipped: {position} {origin}{exc}")
        return
    try:
        for frame in reader.frames():
            frame.position = position
            yield frame
    finally:
        reader.close()
    if reader.refused:
        yield InputProblem(f"stopped: {origin}{spec.target}: {reader.refused}")
    elif reader.gave_up:
        yield InputProblem(f"stopped: {origin}{spec.target}: gave up after {stream_timeout:.0f} s without frames")


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
