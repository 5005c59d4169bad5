"""--tile: sliced inference finds faces too small for the whole frame, and never reports one face twice.

The scene is a 1920x1080 frame with 12 copies of the sample photo's face, each about 22 px high: at the
whole frame's scale (letterboxed to 704 px) they shrink to 8 px and the shipped model misses them;
in 480-px tiles (upscaled 1.5x to the model's 704 px) they are big enough again. Some faces sit right on the seams between tiles.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.detectors import DetectSettings, load_detector
from maskdet.inference.tiles import TiledDetector, TileSettings, merge_boxes, tile_grid, tile_starts

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "images" / "astronaut.jpg"
sys.path.insert(0, str(ROOT / "tests"))
from synthetic import SAMPLE_FACE, boxes_on_each_face, small_face_scene  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


@pytest.fixture(scope="module")
def shipped():
    return load_detector(ROOT / "models" / "best.onnx", DetectSettings(conf=0.25))


def test_tiles_cover_the_frame_with_the_overlap_asked_for():
    assert tile_starts(1920, 640, 0.25) == [0, 427, 853, 1280]
    assert tile_starts(500, 640, 0.25) == [0]
    grid = tile_grid(1920, 1080, 640, 0.25)
    covered = np.zeros((1080, 1920), bool)
    for x1, y1, x2, y2 in grid:
        assert x2 - x1 <= 640 and y2 - y1 <= 640
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    starts = tile_starts(1920, 640, 0.25)
    assert all(b - a <= 640 * 0.75 for a, b in zip(starts, starts[1:]))


def test_a_box_mostly_inside_a_better_one_is_the_same_face():
    xyxy = np.array([[0, 0, 20, 20], [1, 1, 19, 12], [100, 100, 120, 120]], np.float32)
    assert merge_boxes(xyxy, np.array([0.9, 0.95, 0.5], np.float32), 0.6).tolist() == [1, 2]
    kept = merge_boxes(xyxy, np.array([0.9, 0.8, 0.5], np.float32), 0.6)
    assert kept.tolist() == [0, 2]


def test_settings_are_range_checked():
    with pytest.raises(ValueError, match="tile must be"):
        TileSettings(size=10)
    with pytest.raises(ValueError, match="tile-overlap"):
        TileSettings(size=640, overlap=0.95)


def test_tiles_find_the_small_faces_the_whole_frame_misses(shipped):
    frame, truth = small_face_scene()
    whole = boxes_on_each_face(shipped(frame).xyxy, truth)
    tiled = boxes_on_each_face(TiledDetector(shipped, TileSettings(size=480))(frame).xyxy, truth)
    assert sum(n > 0 for n in whole) <= 2, f"the whole frame already finds them: {whole}"
    assert sum(n > 0 for n in tiled) >= 10, f"tiles found only {tiled}"


def test_tiles_never_report_one_face_twice(shipped):
    frame, truth = small_face_scene()
    found = TiledDetector(shipped, TileSettings(size=480))(frame)
    assert max(boxes_on_each_face(found.xyxy, truth)) == 1
    for i in range(len(found)):
        for j in range(i + 1, len(found)):
            assert iou(found.xyxy[i], found.xyxy[j]) < 0.3


def test_a_frame_no_larger_than_a_tile_is_run_once(shipped):
    calls = []

    def counting(image):
        calls.append(image.shape)
        return shipped(image)

    counting.names, counting.imgsz = shipped.names, shipped.imgsz
    TiledDetector(counting, TileSettings(size=640))(np.full((480, 640, 3), 128, np.uint8))
    assert calls == [(480, 640, 3)]


def test_a_large_face_seen_whole_and_in_a_tile_is_reported_once(shipped):
    photo = cv2.imread(str(SAMPLE))
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    frame[300:812, 700:1212] = photo  # the 88-px face lies whole in a tile and is found in the whole frame too
    found = TiledDetector(shipped, TileSettings(size=480))(frame)
    truth = np.array([[x + 700 if i % 2 == 0 else x + 300 for i, x in enumerate(SAMPLE_FACE)]], np.float32)
    assert boxes_on_each_face(found.xyxy, truth) == [1]


def run_detect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "detect.py"), *args], capture_output=True, text=True, timeout=600)


def test_detect_py_tile_finds_the_small_faces_and_saves_each_once(tmp_path):
    frame, truth = small_face_scene()
    scene = tmp_path / "scene.png"
    cv2.imwrite(str(scene), frame)
    counts = {}
    for tile in ("0", "480"):
        proc = run_detect("--source", str(scene), "--tile", tile, "--save-txt", "--nosave", "--quiet",
                          "--project", str(tmp_path / "runs"), "--name", f"tile{tile}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        label = tmp_path / "runs" / f"tile{tile}" / "labels" / "scene.txt"
        counts[tile] = len(label.read_text().splitlines()) if label.exists() else 0
    assert counts["0"] <= 2 and counts["480"] == len(truth), counts


@pytest.mark.parametrize("flag, value, message", [("--tile", "10", "--tile must be 0 (off) or 64..8192 px"),
                                                  ("--tile-overlap", "0.95", "--tile-overlap must be in [0, 0.9)")])
def test_detect_py_refuses_a_tile_setting_out_of_range_in_one_line(tmp_path, flag, value, message):
    proc = run_detect("--source", str(SAMPLE), "--tile", "480", flag, value, "--project", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr
