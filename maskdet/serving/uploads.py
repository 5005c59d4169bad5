"""Upload checks: what a file is is decided by its bytes, never by its name or declared type."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MAX_PIXELS = 100_000_000  # 10,000 x 10,000: decoded, 300 MB

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


def decode_image(data: bytes, name: str) -> np.ndarray:
    """BGR pixels of an uploaded image; 400 when its bytes look like an image but do not decode,
    413 when it would decode to more than MAX_PIXELS (a small PNG can hold a huge blank image)."""
    limit = f"over the {MAX_PIXELS // 10**6} megapixel limit"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we say it ourselves, as a 413
            with Image.open(io.BytesIO(data)) as header:  # reads the size only, not the pixels
                width, height = header.size
    except Image.DecompressionBombError:
        raise UploadError(413, f"{name}: {limit}") from None
    except Exception:  # Pillow raises many types for bytes it cannot parse; OpenCV gets its chance below
        width = height = 0
    if width * height > MAX_PIXELS:
        raise UploadError(413, f"{name}: {width}x{height} pixels, {limit}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise UploadError(400, f"{name}: the image is corrupt (it cannot be decoded)")
    return image


def check_video(path: Path, name: str) -> tuple[int, float]:
    """(frames, fps) of a stored upload; 400 when not even its first frame decodes."""
    cap = cv2.VideoCapture(str(path))
    try:
        ok = cap.isOpened() and cap.read()[0]
        if not ok:
            raise UploadError(400, f"{name}: the video is corrupt (no frame can be decoded)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), fps if 0 < fps < 240 else 25.0
    finally:
        cap.release()
