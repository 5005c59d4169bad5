"""Fixtures for the server's specifications: a scripted model with known boxes, tiny photos and
videos the tests write, the app in FastAPI's test client, and serve.py as a real process.

The model, process and polling helpers are the detect tests' own (tests/inference/conftest.py),
loaded from that file rather than copied.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from maskdet.cli.serve import SERVER_MODULES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MISSING = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]  # serve.py's own list


def pytest_collection_modifyitems(config, items) -> None:
    """Without the server's packages, its tests are skipped with what to install (not errors)."""
    if MISSING:
        skip = pytest.mark.skip(reason=f"needs {', '.join(MISSING)}: pip install -r requirements-serve.txt")
        for item in items:
            if HERE in Path(item.path).resolve().parents:
                item.add_marker(skip)

_spec = importlib.util.spec_from_file_location("detect_kit", ROOT / "tests" / "inference" / "conftest.py")
detect_kit = sys.modules.setdefault("detect_kit", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(detect_kit)


PHOTO_WH = (320, 240)
# Two faces in photo pixels: (x1, y1, x2, y2, class id, score). The scripted model finds exactly these.
FACES = [(40, 50, 120, 150, 0, 0.9), (180, 60, 260, 170, 1, 0.8)]
GREEN_BGR = (80, 175, 76)  # with_mask, as maskdet.inference.visualize draws it
RED_BGR = (54, 67, 244)  # without_mask


@pytest.fixture
def weights(tmp_path) -> Path:
    """An ONNX model that reports FACES on any PNG_WH photo (a real ONNX Runtime session)."""
    boxes = [(*detect_kit.to_model_pixels(b[:4], PHOTO_WH, 320), b[4], b[5]) for b in FACES]
    return detect_kit.write_scripted_onnx(tmp_path / "model" / "scripted.onnx", boxes, 320)


def write_photo(path: Path, seed: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), detect_kit.synthetic_frame(seed, PHOTO_WH))
    return path


def write_video(path: Path, frames: int = 6, fps: float = 10.0) -> Path:
    """A small real MP4 (OpenCV's mp4v: what a phone or detect.py might hand over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, PHOTO_WH)
    for i in range(frames):
        writer.write(detect_kit.synthetic_frame(i, PHOTO_WH))
    writer.release()
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    return write_photo(tmp_path / "inputs" / "people.png")


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "inputs" / "clip.mp4")


@pytest.fixture
def make_client(tmp_path, weights) -> Iterator[Callable]:
    """make_client(**settings) -> a started TestClient on the app with the scripted model (or weights=...)."""
    from fastapi.testclient import TestClient

    from maskdet.serving.app import create_app
    from maskdet.serving.service import ServeSettings

    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        settings = ServeSettings(**{"weights": weights, "results_dir": tmp_path / "results", **overrides})
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def count_color(image: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels within `tolerance` of a colour (JPEG and scaling blur colours a little)."""
    return int((np.abs(image.astype(int) - np.array(bgr)).max(axis=2) <= tolerance).sum())


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) if crc is None else crc)


def blank_png(width: int, height: int, bad_crc: bool = False, rows_per_block: int = 500) -> bytes:
    """A valid grayscale PNG of blank pixels, small however big the image: the zlib stream repeats one fully
    flushed block, so 20000 x 20000 is built in a fraction of a second (about 400 KB). With bad_crc its
    tEXt chunk has a wrong CRC: libpng (OpenCV) only warns and decodes it, Pillow refuses to open it."""
    assert height % rows_per_block == 0
    block = b"\x00" * ((width + 1) * rows_per_block)  # each row: filter byte 0, then the pixels
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)  # independent of what came before
    adler = 1
    for _ in range(height // rows_per_block):
        adler = zlib.adler32(block, adler)
    stream = b"\x78\xda" + segment * (height // rows_per_block) + deflate.flush() + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"tEXt", b"Comment\x00hello", crc=0 if bad_crc else None)
            + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def serve_kit() -> SimpleNamespace:
    return SimpleNamespace(root=ROOT, faces=FACES, photo_wh=PHOTO_WH, green=GREEN_BGR, red=RED_BGR, write_photo=write_photo,
                           write_video=write_video, blank_png=blank_png, count_color=count_color, wait_for=detect_kit.wait_for,
                           free_port=detect_kit.free_port, Background=detect_kit.Background)


class Server:
    """`python serve.py` as a user starts it, on a free port of 127.0.0.1 (or --host), output to files."""

    def __init__(self, args: list[str], folder: Path, name: str):
        self.port = detect_kit.free_port()
        argv = [sys.executable, str(ROOT / "serve.py"), "--port", str(self.port), "--project", str(folder / "runs"), *args]
        self.process = detect_kit.Background(argv, folder / "logs", name, cwd=folder)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> Server:
        detect_kit.wait_for(lambda: "open http://" in self.process.stdout or not self.process.running(), timeout,
                            message="serve.py to start")
        assert self.process.running(), self.process.stderr[-3000:]
        detect_kit.wait_for(lambda: detect_kit.is_listening(self.port), 30, message="serve.py to listen")
        return self


@pytest.fixture
def start_server(tmp_path, weights) -> Iterator[Callable[..., Server]]:
    """start_server(*args) -> a ready serve.py on the scripted model; stopped at teardown."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(["--weights", str(weights), *map(str, args)], tmp_path, f"serve{len(servers)}")
        servers.append(server)
        return server.wait_ready()

    yield start
    for server in servers:
        server.process.stop()
