"""Upload checks: what a file is is decided by its bytes, never by its name or declared type."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskdet.imageio import ImageError, ImageTooLarge, read_image_bounded
from maskdet.settings import MAX_PIXELS, MAX_VIDEO_FRAMES, MAX_VIDEO_PIXELS
from maskdet.videoio import VideoTooLarge, VideoUnreadable, probe_video

# (magic bytes at offset, offset, kind, suffix the server stores it under)
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image", ".png"),
    (b"BM", 0, "image", ".bmp"),
    (b"II*\x00", 0, "image", ".tif"),
    (b"MM\x00*", 0, "image", ".tif"),
    (b"ftyp", 4, "video", ".mp4"),  # MP4, MOV, M4V, 3GP
    (b"\x1a\x45\xdf\xa3", 0, "video", ".mkv"),  # Matroska and WebM
    (b"\x00\x00\x01\xba", 0, "video", ".mpg"),
)


class UploadError(Exception):
    """A refused upload: the HTTP status and a message naming the problem (returned as JSON)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, suffix) from the first bytes of a file, or None when it is neither an image nor a video."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", ".avi"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # MPEG-TS: a sync byte every 188 bytes
        return "video", ".ts"
    for magic, offset, kind, suffix in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return kind, suffix
    return None


def display_name(client_name: str | None) -> str:
    """The client's file name for showing only (last path part, printable, short); never used on disk."""
    name = (client_name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:120]
    return name if name not in ("", ".", "..") else "upload"


def check_kind(head: bytes, wanted: str, name: str) -> str:
    """The suffix to store the upload under; 415 unless its bytes are an image/video as `wanted`."""
    found = sniff(head)
    if found is None:
        raise UploadError(415, f"{name}: not an image or a video (JPEG, PNG, BMP, WebP, TIFF; MP4, MOV, MKV, WebM, AVI, MPEG)")
    kind, suffix = found
    if kind != wanted:
        where = "POST /api/videos" if kind == "video" else "POST /api/detect"
        raise UploadError(415, f"{name}: this is {'a video' if kind == 'video' else 'an image'}: send it to {where}")
    return suffix


def decode_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR pixels of an uploaded image, through the one bounded reader (maskdet.imageio): 413 when its header
    says it has more than `max_pixels` (a small PNG can hold a huge blank image), 400 when its size cannot
    be read from its header or its pixels do not decode. Nothing is decoded before the size is known."""
    try:
        return read_image_bounded(data, max_pixels)
    except ImageTooLarge as exc:
        raise UploadError(413, f"{name}: {exc}") from None
    except ImageError as exc:
        raise UploadError(400, f"{name}: {exc}") from None


def check_video(path: Path, name: str, max_pixels: int = MAX_VIDEO_PIXELS,
                max_frames: int = MAX_VIDEO_FRAMES) -> tuple[int, float]:
    """(frames, fps) of a stored upload, from its container's header (maskdet.videoio, before any frame is
    decoded at full size): 413 when a frame would have more than `max_pixels` or the video more than
    `max_frames` frames, 400 when it has no video stream or its first frame does not decode."""
    try:
        info = probe_video(path, max_pixels, max_frames)
    except VideoTooLarge as exc:
        raise UploadError(413, f"{name}: {exc}") from None
    except VideoUnreadable as exc:
        raise UploadError(400, f"{name}: {exc}") from None
    return info.frames, info.fps
