"""What the privacy specifications look at in a run's outputs: every file, every picture in them, the
frames of a video, the thumbnails inlined in a report; and the monitoring suite's fixtures module (its
video of Kaggle faces), loaded under its own name so there is one implementation. Imported by name
(`from privacy_outputs import ...`): a conftest module cannot be imported reliably."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("monitoring_fixtures", ROOT / "tests" / "monitoring" / "conftest.py")
monitoring = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = monitoring  # dataclasses look their module up there
    _spec.loader.exec_module(monitoring)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


def report_thumbnails(path: Path) -> list[np.ndarray]:
    """Every JPEG inlined in report.html (faces in the people and alerts tables)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for data in re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", text):
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        out.append(image)
    return out


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def written_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def looks_like_picture(data: bytes) -> bool:
    """JPEG, PNG, GIF, BMP, WebP, TIFF, MP4/MOV or AVI/WebM bytes, or a picture inlined in text."""
    magic = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*", b"\x1a\x45\xdf\xa3")
    return data.startswith(magic) or data[4:8] == b"ftyp" or b"data:image" in data or b"<img" in data
