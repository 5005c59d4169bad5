"""Shared fixtures: tiny real images, data.yaml and VOC XML writers, and a runner for the labeling scripts.

The helpers are handed out as fixtures (not imported with `from conftest import ...`): another
conftest.py elsewhere under tests/ would shadow this module's name.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# A suite started in the background (`cmd &`, nohup) inherits an ignored SIGINT, and so would every program
# it starts: Python then never raises KeyboardInterrupt, and the Ctrl-C tests would test nothing. Take
# Python's own handler back, as in a terminal; the programs the tests start then get the default too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if str(REPO_ROOT) not in sys.path:  # import maskdet from this clone, however pytest was started
    sys.path.insert(0, str(REPO_ROOT))

OUR_NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
KAGGLE_DIR = REPO_ROOT.parent / "shared" / "datasets" / "kaggle-facemask"


# --- images ------------------------------------------------------------------------------------


def write_image(path: str | Path, width: int = 32, height: int = 24, seed: int = 0) -> Path:
    """Write a small real image (PNG, JPEG or BMP by suffix) that PIL and OpenCV can both read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels), f"cv2 could not write {path}"
    return path


# --- data.yaml ---------------------------------------------------------------------------------


def write_data_yaml(folder: str | Path, names: Iterable[str] = OUR_NAMES, path: str = "data",
                    name: str = "data.yaml", extra: str = "") -> Path:
    """A data.yaml in this project's layout (`path` relative to the yaml, train/val/test under it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"path: {path}", "train: train/images", "val: val/images", "test: test/images", "names:"]
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    target = folder / name
    target.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return target


# --- Pascal VOC --------------------------------------------------------------------------------


def voc_xml(filename: str, size: tuple[int, int] | None, objects: Iterable[tuple[str, float, float, float, float]]) -> str:
    """labelImg-style VOC XML; each object is (name, xmin, ymin, xmax, ymax)."""
    parts = ["<annotation>", "  <folder>images</folder>", f"  <filename>{filename}</filename>"]
    if size is not None:
        parts += ["  <size>", f"    <width>{size[0]}</width>", f"    <height>{size[1]}</height>", "    <depth>3</depth>", "  </size>"]
    for name, xmin, ymin, xmax, ymax in objects:
        parts += ["  <object>", f"    <name>{name}</name>", "    <difficult>0</difficult>", "    <bndbox>",
                  f"      <xmin>{xmin}</xmin>", f"      <ymin>{ymin}</ymin>",
                  f"      <xmax>{xmax}</xmax>", f"      <ymax>{ymax}</ymax>", "    </bndbox>", "  </object>"]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_voc(path: str | Path, objects: Iterable[tuple[str, float, float, float, float]] = (),
              filename: str | None = None, size: tuple[int, int] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(voc_xml(filename or f"{path.stem}.png", size, objects), encoding="utf-8")
    return path


def bndbox_line(xml_text: str, occurrence: int = 0) -> int:
    """1-based line number of the n-th <bndbox> in xml_text (what the converter reports)."""
    numbers = [i for i, line in enumerate(xml_text.splitlines(), start=1) if "<bndbox>" in line]
    return numbers[occurrence]


# --- YOLO labels -------------------------------------------------------------------------------


def write_labels(path: str | Path, lines: Iterable[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def sparse_file(path: str | Path, size: int) -> Path:
    """A file that says it holds `size` bytes and takes no disk (a hole): what a huge file looks like to a reader."""
    path = Path(path)
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def read_label_lines(path: str | Path) -> list[list[float]]:
    """The rows of a YOLO label file as numbers (class id first)."""
    return [[float(v) for v in line.split()] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


# --- folders -----------------------------------------------------------------------------------


def snapshot(folder: str | Path) -> dict[str, tuple[str, int, int]]:
    """Every file (and link) under folder: relative path -> (sha256 or link target, size, mtime_ns)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(folder))] = (f"-> {p.readlink()}", 0, st.st_mtime_ns)
        elif p.is_file():
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


def all_files(folder: str | Path) -> list[str]:
    """Relative paths of every entry under folder (files, links and folders), hidden ones included."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the scripts -------------------------------------------------------------------------------


def run_script(script: str, *args: str | Path, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run labeling/<script> as a user would, with this interpreter; output captured as text."""
    cmd = [sys.executable, str(REPO_ROOT / "labeling" / script), *(str(a) for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or REPO_ROOT, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str | Path) -> str:
    """The CLI contract for a user error: exit 2, one `error: ...` line on stderr, no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])
    return lines[0]


# --- fixtures ----------------------------------------------------------------------------------
# Session-scoped so module-scoped fixtures (the Kaggle build) can use them too.


@pytest.fixture(scope="session")
def make_image() -> Callable[..., Path]:
    """make_image(path, width=32, height=24, seed=0): a real PNG/JPEG/BMP file."""
    return write_image


@pytest.fixture(scope="session")
def make_data_yaml() -> Callable[..., Path]:
    """make_data_yaml(folder, names=OUR_NAMES, path="data", name="data.yaml", extra="")."""
    return write_data_yaml


@pytest.fixture
def data_yaml(tmp_path: Path) -> Path:
    """tmp_path/data.yaml with this project's three classes and `path: data`."""
    return write_data_yaml(tmp_path)


@pytest.fixture(scope="session")
def make_voc() -> Callable[..., Path]:
    """make_voc(path, objects=[(name, xmin, ymin, xmax, ymax)], filename=None, size=None)."""
    return write_voc


@pytest.fixture(scope="session")
def make_labels() -> Callable[..., Path]:
    """make_labels(path, lines): a YOLO label file."""
    return write_labels


@pytest.fixture(scope="session")
def tools():
    """The remaining helpers, for tests that need them."""
    return SimpleNamespace(
        repo_root=REPO_ROOT, kaggle_dir=KAGGLE_DIR, our_names=OUR_NAMES, voc_xml=voc_xml, bndbox_line=bndbox_line,
        read_label_lines=read_label_lines, snapshot=snapshot, all_files=all_files,
        run_script=run_script, assert_one_line_error=assert_one_line_error, sparse_file=sparse_file,
    )
