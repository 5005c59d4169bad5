"""Fixtures for the detect.py specifications: real models, real videos, real processes.

* `model`: a YOLO checkpoint trained for one epoch on a tiny synthetic dataset and exported to ONNX
  (imgsz 64). It detects garbage, so tests that need boxes pass `--conf 0.0001`.
* `yolo26_model`: the same with YOLO26n, exported both classic and end-to-end (NMS-free head).
* `slow_model`: the same checkpoint exported at imgsz 640, slow next to a 25 fps stream.
* `scripted_model`: a real ONNX file whose output is a fixed set of boxes, for exact expectations
  (NMS, pixel coordinates, class filters, colours on screen); `kit.write_scripted_end2end_onnx`
  writes the same in YOLO26's end-to-end layout.
* `detect`: runs `python detect.py ...` as a user would; `background`: the same, left running.

The helpers are handed out as fixtures, as in tests/conftest.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
for _p in (str(ROOT), str(TESTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from synthetic import (  # noqa: E402
    NAMES,
    make_sample,
    to_model_pixels,
    write_scripted_end2end_onnx,
    write_scripted_onnx,
    write_yolo_dataset,
)

RECORD_FIELDS = ["source", "frame", "timestamp", "class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"]
LOW_CONF = "0.0001"  # the one-epoch model's scores are tiny; this makes sure there are boxes


# --- models ------------------------------------------------------------------------------------


def _run_script(script: str, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (script, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def train_tiny_model(root: Path, arch: str, *export_flags: str) -> SimpleNamespace:
    """Train `arch` from scratch for 1 epoch at imgsz 64 on a tiny synthetic set and export it to ONNX.

    Each export_flags entry (a string of export.py flags, "" for none) gives one .onnx; they are
    listed in `exports` in that order, and `onnx` is the first."""
    data_yaml = write_yolo_dataset(root / "data", counts={"train": 4, "val": 2})
    _run_script("train.py", "--data", data_yaml, "--model", arch, "--epochs", "1", "--imgsz", "64", "--batch", "4",
                "--workers", "0", "--project", root / "runs")
    pt = root / "runs" / "exp" / "weights" / "best.pt"
    exports = []
    for i, flags in enumerate(export_flags or ("",)):
        copy = pt if i == 0 else pt.with_name(f"best{i}.pt")
        if copy != pt:
            shutil.copy(pt, copy)
        _run_script("export.py", "--weights", copy, "--imgsz", "64", *flags.split())
        exports.append(copy.with_suffix(".onnx"))
        assert exports[-1].exists()
    return SimpleNamespace(pt=pt, onnx=exports[0], exports=exports, imgsz=64, data=data_yaml)


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> SimpleNamespace:
    """best.pt (YOLO11n) trained 1 epoch at imgsz 64, and best.onnx exported from it (imgsz 64)."""
    return train_tiny_model(tmp_path_factory.mktemp("detect_model"), "yolo11n.yaml")


@pytest.fixture(scope="session")
def yolo26_model(tmp_path_factory) -> SimpleNamespace:
    """A YOLO26n trained the same way, exported twice: `onnx` the classic output (NMS outside),
    `end2end` its NMS-free head (export.py --end2end: one (1, k, 6) output)."""
    made = train_tiny_model(tmp_path_factory.mktemp("detect_model_26"), "yolo26n.yaml", "", "--end2end")
    made.end2end = made.exports[1]
    return made


@pytest.fixture(scope="session")
def slow_model(model, tmp_path_factory) -> Path:
    """The same weights exported at imgsz 640: ~100x the work per frame of the 64 px model."""
    folder = tmp_path_factory.mktemp("detect_model_640")
    pt = folder / "best.pt"
    shutil.copy(model.pt, pt)
    _run_script("export.py", "--weights", pt, "--imgsz", "640")
    return pt.with_suffix(".onnx")


@pytest.fixture
def scripted_model(tmp_path) -> Callable[..., Path]:
    """scripted_model(boxes, image_wh=(160, 120), imgsz=160): boxes are (x1, y1, x2, y2, class_id, score)
    in pixels of an image_wh image; the model reports exactly those boxes on such an image."""
    count = 0

    def make(boxes, image_wh: tuple[int, int] = (160, 120), imgsz: int = 160) -> Path:
        nonlocal count
        count += 1
        model_boxes = [(*to_model_pixels(b[:4], image_wh, imgsz), b[4], b[5]) for b in boxes]
        return write_scripted_onnx(tmp_path / "models" / f"scripted{count}.onnx", model_boxes, imgsz)

    return make


# --- inputs ------------------------------------------------------------------------------------


def synthetic_frame(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A cartoon scene with faces (samples/make_sample.py), resized to size=(w, h)."""
    image, _ = make_sample.make_image(seed, size=(480, 320))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_images(folder: Path, n: int = 3, size: tuple[int, int] = (160, 120), suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"scene{i}{suffix}"
        assert cv2.imwrite(str(path), synthetic_frame(i, size))
        paths.append(path)
    return paths


def write_video(path: Path, frames: int = 30, size: tuple[int, int] = (160, 120), fps: float = 25.0,
                fourcc: str | None = None) -> Path:
    """A real video file of synthetic scenes (mp4v for .mp4, MJPG for .avi)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = fourcc or {".avi": "MJPG"}.get(path.suffix.lower(), "mp4v")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {path}"
    scenes = [synthetic_frame(i, size) for i in range(min(frames, 10))]
    for i in range(frames):
        image = scenes[i % len(scenes)].copy()
        cv2.putText(image, str(i), (4, size[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        writer.write(image)
    writer.release()
    return path


def count_video_frames(path: Path) -> int:
    """Frames a player can actually decode (not the container's claim)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.isOpened() and cap.read()[0]:
            n += 1
    finally:
        cap.release()
    return n


@pytest.fixture(scope="session")
def make_video() -> Callable[..., Path]:
    """make_video(path, frames=30, size=(160, 120), fps=25.0, fourcc=None)."""
    return write_video


@pytest.fixture(scope="session")
def make_images() -> Callable[..., list[Path]]:
    """make_images(folder, n=3, size=(160, 120), suffix='.png')."""
    return write_images


# --- outputs -----------------------------------------------------------------------------------


def read_csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --- running detect.py -------------------------------------------------------------------------


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr[-4000:]


@dataclass
class Detect:
    """`python detect.py` as a user runs it, with run folders under a per-test project folder."""

    project: Path
    cwd: Path

    def argv(self, *args) -> list[str]:
        args = [str(a) for a in args]
        if "--project" not in args:
            args += ["--project", str(self.project)]
        return [sys.executable, str(ROOT / "detect.py"), *args]

    def __call__(self, *args, timeout: float = 180, merge_output: bool = False) -> subprocess.CompletedProcess:
        """merge_output: stderr into stdout, as a terminal shows them (to check the order of lines)."""
        proc = subprocess.run(self.argv(*args), stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=self.cwd,
                              stderr=subprocess.STDOUT if merge_output else subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert_clean_stderr(proc.stderr or proc.stdout)
        return proc


@pytest.fixture
def detect(tmp_path) -> Detect:
    """detect(*args, timeout=180) -> CompletedProcess; --project defaults to tmp_path/runs."""
    return Detect(tmp_path / "runs", tmp_path)


class Background:
    """A process in its own session (so signals reach it like Ctrl-C from a terminal); output to files."""

    def __init__(self, argv: list[str], folder: Path, name: str, env: dict | None = None, cwd: Path | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / f"{name}.stdout"
        self.stderr_path = folder / f"{name}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                                         start_new_session=True, env={**os.environ, **(env or {})})

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send sig to the whole process group, as a terminal does for Ctrl-C."""
        if self.running():
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Make sure it is gone (SIGTERM, then SIGKILL); only this process's own group is signalled."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.1, message: str = "") -> object:
    """Poll until condition() is truthy; its value, or a test failure after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message or condition}")
        time.sleep(interval)


@pytest.fixture
def background(tmp_path) -> Iterator[Callable[..., Background]]:
    """background(argv, name, env=None) -> Background; everything started is stopped at teardown."""
    started: list[Background] = []

    def start(argv: list[str], name: str = "proc", env: dict | None = None) -> Background:
        bg = Background(argv, tmp_path / "logs", name, env, cwd=tmp_path)
        started.append(bg)
        return bg

    yield start
    for bg in reversed(started):
        bg.stop()


# --- network -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port, checked without connecting (a connection
    would use up the single client an `ffmpeg -listen 1` server accepts)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":  # 0A = LISTEN
                return True
    return False


class StreamServer:
    """`ffmpeg -re` serving a looped video as MPEG-TS over HTTP on 127.0.0.1, at its real frame rate."""

    def __init__(self, video: Path, folder: Path, port: int | None = None, as_is: bool = False):
        self.video = video
        self.folder = folder
        self.as_is = as_is  # the video's own packets, once (no re-encoding, which would give every frame one size)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self.process: Background | None = None
        self.starts = 0

    def start(self, timeout: float = 20) -> None:
        self.starts += 1
        looped = ["-c:v", "copy"] if self.as_is else ["-c:v", "mpeg1video", "-q:v", "5"]
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                *([] if self.as_is else ["-stream_loop", "-1"]), "-i", str(self.video),
                "-an", *looped, "-f", "mpegts", "-listen", "1", self.url]
        self.process = Background(argv, self.folder, f"ffmpeg{self.starts}")
        wait_for(lambda: is_listening(self.port) or not self.process.running(), timeout, message="ffmpeg to listen")
        assert self.process.running(), f"ffmpeg could not serve {self.url}: {self.process.stderr[-2000:]}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        wait_for(lambda: not is_listening(self.port), 10, message="the port to close")


@pytest.fixture
def stream_server(tmp_path) -> Iterator[Callable[[Path], StreamServer]]:
    """stream_server(video, as_is=False) -> a started StreamServer; stopped at teardown whatever happens."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    servers: list[StreamServer] = []

    def start(video: Path, as_is: bool = False) -> StreamServer:
        server = StreamServer(video, tmp_path / "logs", as_is=as_is)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        if server.process is not None:
            server.process.stop()


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """Plain helpers for the detect tests."""
    return SimpleNamespace(
        root=ROOT, names=NAMES, record_fields=RECORD_FIELDS, low_conf=LOW_CONF, read_csv_rows=read_csv_rows,
        read_json=read_json, count_video_frames=count_video_frames, synthetic_frame=synthetic_frame,
        wait_for=wait_for, free_port=free_port, assert_clean_stderr=assert_clean_stderr,
        to_model_pixels=to_model_pixels, write_scripted_onnx=write_scripted_onnx,
        write_scripted_end2end_onnx=write_scripted_end2end_onnx,
    )
