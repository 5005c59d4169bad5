"""A stride-4 (P2) output added to a trained detector keeps everything it detected and starts silent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic import write_yolo_dataset

from maskdet.errors import UserError
from maskdet.training.stride4 import add_stride4_output, write_stride4_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "best.pt"


def shipped_model():
    from maskdet.training.trainer import load_yolo

    return load_yolo(SHIPPED).model.float().eval()


def face_photo(height: int, width: int) -> torch.Tensor:
    """The Quickstart's sample photo (one unmasked face) as the model's input tensor."""
    import cv2

    image = cv2.resize(cv2.imread(str(ROOT / "samples" / "images" / "astronaut.jpg")), (width, height))
    return torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255


def outputs(model, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(image)[0]  # (1, 4 boxes + classes, anchors), the finest grid first


@pytest.fixture(scope="module")
def pair():
    old = shipped_model()
    return old, add_stride4_output(old)


def test_the_new_model_has_a_stride_4_grid_before_the_old_three(pair):
    old, new = pair
    assert old.model[-1].stride.tolist() == [8, 16, 32]
    assert new.model[-1].stride.tolist() == [4, 8, 16, 32]
    assert new.names == old.names


def test_the_old_outputs_are_unchanged_and_the_new_one_starts_silent(pair):
    old, new = pair
    image = face_photo(224, 320)
    before, after = outputs(old, image), outputs(new, image)
    stride4_cells = (224 // 4) * (320 // 4)
    assert after.shape[-1] == before.shape[-1] + stride4_cells
    assert torch.equal(after[..., stride4_cells:], before)  # P3-P5: the same numbers, bit for bit
    assert after[:, 4:, :stride4_cells].max() < 1e-3  # no class score on the new grid yet
    assert before[:, 4:].max() > 0.5  # the old grids find the face: the comparison above is not of zeros


def test_ultralytics_loads_every_tensor_when_it_rebuilds_the_model_to_train(pair, tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    start = write_stride4_checkpoint(SHIPPED, tmp_path / "start_p2.pt")
    saved = torch.load(start, map_location="cpu", weights_only=False)["model"].float()
    rebuilt = DetectionModel(saved.yaml, nc=3, verbose=False)  # what the trainer does with a checkpoint
    rebuilt.names = dict(saved.names)
    rebuilt.load(saved)
    ours, theirs = rebuilt.state_dict(), saved.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)  # the head's width for 80 COCO classes included
    # so training starts from what the shipped model finds (to fp16's rounding: checkpoints are saved in fp16)
    image = face_photo(224, 320)
    before, after = outputs(pair[0], image), outputs(rebuilt, image)[..., (224 // 4) * (320 // 4):]
    assert (after[:, :4] - before[:, :4]).abs().max() < 1.0  # box coordinates, in pixels
    assert (after[:, 4:] - before[:, 4:]).abs().max() < 0.02  # class scores


def test_a_model_that_already_has_a_stride_4_output_is_refused(pair):
    with pytest.raises(UserError, match="already at stride 4"):
        add_stride4_output(pair[1])


def test_yolo26_takes_it_too_both_heads_kept():
    from ultralytics.nn.tasks import DetectionModel

    old = DetectionModel("yolo26n.yaml", nc=3, verbose=False).eval()
    new = add_stride4_output(old)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    old.model[-1].end2end = new.model[-1].end2end = False  # compare the one-to-many head (its raw grid)
    before, after = outputs(old, image), outputs(new, image)
    assert torch.equal(after[..., 32 * 32:], before)
    assert len(new.model[-1].one2one_cv3) == 4


def test_train_py_p2_trains_from_the_extended_model_and_says_what_it_costs(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", {"train": 4, "val": 2})
    project = tmp_path / "runs"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data_yaml), "--epochs", "1",
                           "--imgsz", "64", "--batch", "4", "--workers", "0", "--project", str(project), "--p2"],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    said = [line for line in proc.stdout.splitlines() if line.startswith("added a stride-4 (P2) output")]
    assert len(said) == 1 and re.search(r"best\.pt, every weight kept: [\d.]+ -> [\d.]+ GFLOPs a 64-px image", said[0])
    assert (project / "exp" / "start_p2.pt").is_file()
    from ultralytics import YOLO

    assert YOLO(str(project / "exp" / "weights" / "best.pt")).model.model[-1].stride.tolist() == [4, 8, 16, 32]


def test_train_py_p2_from_an_architecture_is_one_line_before_a_run_folder(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", {"train": 2, "val": 1})
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data_yaml), "--model", "yolo11n.yaml",
                           "--project", str(tmp_path / "runs"), "--p2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--p2 adds an output to a trained checkpoint (.pt)" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_train_py_p2_on_a_model_that_has_one_is_one_line_before_a_run_folder(tmp_path):
    data_yaml = write_yolo_dataset(tmp_path / "data", {"train": 2, "val": 1})
    extended = write_stride4_checkpoint(SHIPPED, tmp_path / "p2.pt")
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data_yaml), "--model", str(extended),
                           "--project", str(tmp_path / "runs"), "--p2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{extended}: --p2: this model's finest output is already at stride 4: it needs no P2 output" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
