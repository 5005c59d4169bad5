"""A camera worker's model: one inference thread, shared by its cameras, each with the tiles and mirror view
the cameras file gives it (fleet-wide under `defaults:`, or its own).

A station camera far from the faces is 1080p and its faces are small: `tile:` must do for that camera what
detect.py --tile does (tests/inference/test_tiles.py), on the worker's one core, while a near camera on the same
worker pays for no tiles. The scene is the tiles test's: 12 faces about 22 px high in a 1920x1080 frame, which
the whole frame misses.
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


def cameras_file(tmp_path: Path, model: Path, defaults: str = "", cameras: str = "  - {name: platform-2, source: 'rtsp://10.0.0.5/s'}\n") -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(f"defaults:\n  model: {model}\n{defaults}cameras:\n{cameras}", encoding="utf-8")
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


def test_tiles_from_the_defaults_find_the_small_faces_of_a_1080p_camera_each_once(tmp_path):
    frame, truth = small_face_scene()
    plain = read_fleet(cameras_file(tmp_path, ONNX))
    assert (plain.cameras[0].tile, plain.cameras[0].augment) == (0, False)
    model = load_model(plain.defaults)
    whole = CameraPipeline(model, plain.cameras[0], plain.defaults)
    assert whole.step.detector is model
    assert sum(n > 0 for n in faces_found(whole, frame, truth)) <= 2

    tiled = read_fleet(cameras_file(tmp_path, ONNX, "  tile: 480\n"))
    pipeline = CameraPipeline(load_model(tiled.defaults), tiled.cameras[0], tiled.defaults)
    assert isinstance(pipeline.step.detector, TiledDetector) and pipeline.step.detector.settings.size == 480
    assert faces_found(pipeline, frame, truth) == [1] * len(truth)


def test_each_camera_gets_its_own_tiles_and_mirror_view_around_the_workers_one_model(tmp_path):
    frame, truth = small_face_scene()
    fleet = read_fleet(cameras_file(tmp_path, ONNX, "  augment: yes\n", "  - {name: near, source: 'rtsp://10.0.0.5/s', augment: no}\n"
                                    "  - {name: far, source: 'rtsp://10.0.0.6/s', tile: 480}\n"))
    near, far = fleet.cameras
    assert (near.tile, near.augment, far.tile, far.augment) == (0, False, 480, True)
    model = load_model(fleet.defaults)
    near_step, far_step = (CameraPipeline(model, camera, fleet.defaults) for camera in (near, far))
    assert near_step.step.detector is model
    wrapped = far_step.step.detector
    assert isinstance(wrapped, FlipAugmentedDetector) and isinstance(wrapped.detector, TiledDetector)
    assert wrapped.detector.detector is model and inference_threads(wrapped) == 1
    assert sum(n > 0 for n in faces_found(near_step, frame, truth)) <= 2
    assert faces_found(far_step, frame, truth) == [1] * len(truth)


def test_a_cameras_line_in_pixels_outside_its_frames_is_a_note_once(tmp_path):
    import cv2

    from maskdet.fleet.worker import CameraWorker

    video = tmp_path / "door.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 120))
    for _ in range(6):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    cameras = (f"  - {{name: door, source: '{video}', line: '0,500,1000,500'}}\n"
               f"  - {{name: hall, source: '{video}', line: '0,60,160,60'}}\n")
    fleet = read_fleet(cameras_file(tmp_path, ONNX, cameras=cameras))
    worker = CameraWorker(fleet.defaults)
    door, hall = fleet.cameras
    notes = worker.run_video(door)["notes"] + worker.run_video(door)["notes"]
    assert [n for n in notes if "line" in n] == [
        "warning: door: its line 0,500,1000,500 lies outside the 160x120 frame: no crossing can be counted "
        "(give pixels of this frame, or fractions 0-1 of it)"]
    assert not [n for n in worker.run_video(hall)["notes"] if "line" in n]
