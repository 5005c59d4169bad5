"""Fixtures for the monitoring specifications: a real video of Kaggle faces moving along known paths.

`face_video` cuts faces out of the Kaggle photos (shared dataset; skipped when absent), keeps those
the shipped model recognises on a still (the test is about people, not about the model's accuracy),
and moves them over a plain background with cv2.VideoWriter:

* A (with_mask) walks left to right and B (without_mask) right to left: they cross mid-frame.
* C (without_mask) walks down across the counting line ('in'), D (with_mask) walks up across it ('out').
"""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KAGGLE_DIR = ROOT.parent / "shared" / "datasets" / "kaggle-facemask"
MODEL = ROOT / "models" / "best.onnx"
SIZE = (320, 240)
FPS = 10.0
FRAMES = 64  # few frames, fast moves: the shipped model runs at 768 px on every one
FACE_PX = 64
LINE = "0,0.6,1,0.6"  # horizontal, drawn left to right: walking down the image is 'in'


@dataclass(frozen=True)
class Walk:
    """A face moving in a straight line between two centres over a range of frames."""

    name: str
    label: str
    frames: tuple[int, int]  # first, last (inclusive)
    start: tuple[float, float]
    end: tuple[float, float]

    def centre(self, frame: int) -> tuple[float, float] | None:
        first, last = self.frames
        if not first <= frame <= last:
            return None
        t = (frame - first) / (last - first)
        return (self.start[0] + t * (self.end[0] - self.start[0]), self.start[1] + t * (self.end[1] - self.start[1]))


WALKS = (
    Walk("A", "with_mask", (0, 29), (-28, 80), (348, 80)),
    Walk("B", "without_mask", (0, 29), (348, 118), (-28, 118)),
    Walk("C", "without_mask", (30, 59), (100, -28), (100, 268)),
    Walk("D", "with_mask", (34, 63), (230, 268), (230, -28)),
)


def background() -> np.ndarray:
    w, h = SIZE
    ramp = np.linspace(150, 200, w, dtype=np.float32)[None, :, None]
    return np.broadcast_to(ramp + np.array([0, 8, 16], np.float32), (h, w, 3)).astype(np.uint8).copy()


def paste(canvas: np.ndarray, face: np.ndarray, centre: tuple[float, float]) -> None:
    h, w = face.shape[:2]
    x0, y0 = int(round(centre[0] - w / 2)), int(round(centre[1] - h / 2))
    H, W = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = face[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def kaggle_faces(label: str, min_px: int = 90):
    """(image stem, face crop with a little context) for large faces of one class, in file order."""
    for xml in sorted((KAGGLE_DIR / "annotations").glob("*.xml"), key=lambda p: int("".join(filter(str.isdigit, p.stem)) or 0)):
        root = ET.parse(xml).getroot()
        boxes = [o for o in root.iter("object") if o.findtext("name") == label]
        for obj in boxes:
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (int(float(b.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            if min(x2 - x1, y2 - y1) < min_px:
                continue
            image = cv2.imread(str(KAGGLE_DIR / "images" / f"{xml.stem}.png"))
            if image is None:
                continue
            m = int(0.1 * (x2 - x1))
            crop = image[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m]
            yield xml.stem, cv2.resize(crop, (FACE_PX, FACE_PX), interpolation=cv2.INTER_AREA)


def recognised(detector, face: np.ndarray, label: str) -> bool:
    """The model finds exactly this one face, with this class, on a still of the test background."""
    canvas = background()
    paste(canvas, face, (SIZE[0] / 2, SIZE[1] / 2))
    det = detector(canvas)
    return len(det) == 1 and det.class_name(0) == label and float(det.confidence[0]) >= 0.6


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> SimpleNamespace:
    if not (KAGGLE_DIR / "annotations").is_dir():
        pytest.skip(f"the Kaggle dataset is not at {KAGGLE_DIR}")
    if not MODEL.exists():
        pytest.skip(f"no shipped model at {MODEL}")
    from maskdet.inference.detectors import DetectSettings, load_detector

    detector = load_detector(MODEL, DetectSettings())
    faces: dict[str, list[np.ndarray]] = {}
    for label in {w.label for w in WALKS}:
        wanted = sum(w.label == label for w in WALKS)
        faces[label] = []
        for _, face in kaggle_faces(label):
            if recognised(detector, face, label):
                faces[label].append(face)
            if len(faces[label]) == wanted:
                break
        if len(faces[label]) < wanted:
            pytest.skip(f"the model recognises too few {label} faces from the Kaggle photos on a still")
    crops = {w.name: faces[w.label].pop(0) for w in WALKS}

    def write(path: Path, fps: float = FPS) -> Path:
        """The walks, frame by frame, into an MP4 at `fps` (the same frames at another rate span another time)."""
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
        assert writer.isOpened()
        for i in range(FRAMES):
            canvas = background()
            for walk in WALKS:
                centre = walk.centre(i)
                if centre is not None:
                    paste(canvas, crops[walk.name], centre)
            writer.write(canvas)
        writer.release()
        return path

    path = write(tmp_path_factory.mktemp("monitoring_video") / "door.mp4")
    return SimpleNamespace(path=path, walks=WALKS, fps=FPS, frames=FRAMES, size=SIZE, line=LINE, model=MODEL, crops=crops,
                           background=background, paste=paste, write=write)


# --- a webhook receiver -------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the JSON POSTed to it.

    refuse: answer this many requests with 503 first; hold: an Event each request waits on before
    answering (a server that hangs). stop() closes the port: later requests are refused."""

    def __init__(self, refuse: int = 0, port: int = 0):
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict] = []
        self.authorization: list[str | None] = []  # each request's Authorization header
        self.delay_s = 0.0  # a slow server: each answer comes this long after the request
        self.attempts = 0
        self.refuse = refuse
        self.hold: threading.Event | None = None
        self.waiting = threading.Semaphore(0)  # released each time a request starts waiting on hold
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                receiver.authorization.append(self.headers.get("Authorization"))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # the slow server itself, not a wait for readiness
                if receiver.hold is not None:
                    receiver.waiting.release()
                    receiver.hold.wait(30)
                if receiver.refuse > 0:
                    receiver.refuse -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """receiver(refuse=0, port=0) -> a started Receiver; all are stopped at teardown."""
    started: list[Receiver] = []

    def start(refuse: int = 0, port: int = 0) -> Receiver:
        r = Receiver(refuse, port)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture(scope="session")
def helpers():
    """tests/inference/conftest.py as a module (scripted ONNX models, videos, background processes), loaded
    under its own name: one implementation of each, shared with the detect specifications."""
    spec = importlib.util.spec_from_file_location("detect_fixtures", ROOT / "tests" / "inference" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
