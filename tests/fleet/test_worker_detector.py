"""A camera worker's detector: one inference thread, and the cameras file's `tile` and `augment` reach it.

A station camera is 1080p and its faces are small: `tile:` in the cameras file must do for every camera what
detect.py --tile does (tests/inference/test_tiles.py), on the worker's one core. The scene is the one the
tiles test builds: 12 faces about 22 px high in a 1920x1080 frame, which the whole frame misses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from maskdet.fleet.cameras import read_fleet
from maskdet.fleet.worker import CameraPipeline, load_model
from maskdet.inference.augment import FlipAugmentedDetector
from maskdet.inference.detections import Frame
from maskdet.inference.tiles import TiledDetector

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from synthetic import boxes_on_each_face, small_face_scene  # noqa: E402

ONNX = ROOT / "models" / "best.onnx"
INT8 = ROOT / "models" / "best_int8_openvino_model"


def cameras_file(tmp_path: Path, model: Path, extra: str = "") -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(f"defaults:\n  model: {model}\n{extra}cameras:\n  - {{name: platform-2, source: 'rtsp://10.0.0.5/s'}}\n",
                    encoding="utf-8")
    return path


def inference_threads(detector) -> int:
    """The threads the runtime under any wrappers was given."""
    while hasattr(detector, "detector"):
        detector = detector.detector
    if hasattr(detector, "session"):
        return detector.session.get_session_options().intra_op_num_threads
    return int(detector.compiled.get_property("INFERENCE_NUM_THREADS"))


def faces_found(pipeline: CameraPipeline, frame: np.ndarray, truth: np.ndarray) -> list[int]:
    """For each true face, how many boxes the camera's step reported on it."""
    det = pipeline.process(Frame(frame.copy(), "rtsp://10.0.0.5/s", "platform-2", "live", 1, 0.0, 0.0, 2.0))
    return boxes_on_each_face(det.xyxy, truth)


@pytest.mark.parametrize("model", [ONNX, INT8], ids=["onnx", "int8"])
def test_a_worker_runs_its_model_on_one_thread(tmp_path, model):
    if model == INT8:
        pytest.importorskip("openvino", reason="the INT8 model needs pip install openvino")
    fleet = read_fleet(cameras_file(tmp_path, model))
    assert inference_threads(load_model(fleet.defaults)) == 1
    assert inference_threads(load_model(fleet.defaults, threads=2)) == 2


def test_tiles_from_the_cameras_file_find_the_small_faces_of_a_1080p_camera_each_once(tmp_path):
    frame, truth = small_face_scene()
    plain = read_fleet(cameras_file(tmp_path, ONNX))
    assert (plain.defaults.tile, plain.defaults.augment) == (0, False)
    whole = load_model(plain.defaults)
    assert not isinstance(whole, (TiledDetector, FlipAugmentedDetector))
    assert sum(n > 0 for n in faces_found(CameraPipeline(whole, plain.cameras[0], plain.defaults), frame, truth)) <= 2

    tiled = read_fleet(cameras_file(tmp_path, ONNX, "  tile: 480\n"))
    detector = load_model(tiled.defaults)
    assert isinstance(detector, TiledDetector) and detector.settings.size == 480
    assert faces_found(CameraPipeline(detector, tiled.cameras[0], tiled.defaults), frame, truth) == [1] * len(truth)


def test_augment_from_the_cameras_file_wraps_the_tiled_detector_and_keeps_every_face_once(tmp_path):
    frame, truth = small_face_scene()
    fleet = read_fleet(cameras_file(tmp_path, ONNX, "  tile: 480\n  augment: yes\n"))
    detector = load_model(fleet.defaults)
    assert isinstance(detector, FlipAugmentedDetector) and isinstance(detector.detector, TiledDetector)
    assert inference_threads(detector) == 1
    assert faces_found(CameraPipeline(detector, fleet.cameras[0], fleet.defaults), frame, truth) == [1] * len(truth)
