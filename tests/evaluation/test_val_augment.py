"""val.py --augment scores the boxes detect.py --augment gives (maskdet/evaluation/validate.py:evaluate_augmented),
the way Ultralytics' validator scores a model. A scripted ONNX model reports the same boxes whatever it is shown:
its box in the middle of the photo is its own mirror image and stays perfect; its off-centre box is seen once in
each place at half confidence, so the mirrored copy ties with the true face and that class's AP falls, while
plain val.py (Ultralytics' validator) scores both boxes perfect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from synthetic import write_boxes_dataset, write_scripted_onnx  # noqa: E402

ROOT = TESTS.parent
CENTRED = (70, 40, 90, 60, 0, 0.8)  # with_mask, in the middle of a 160x160 photo: its own mirror image
OFF_CENTRE = (10, 10, 30, 30, 1, 0.6)  # without_mask


def dataset(root: Path, photos: int = 2) -> Path:
    return write_boxes_dataset(root, (CENTRED, OFF_CENTRE), photos)


def val(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "val.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_val_py_augment_scores_the_fused_views_and_plain_val_py_the_model_alone(tmp_path):
    data = dataset(tmp_path / "data")
    model = write_scripted_onnx(tmp_path / "scripted.onnx", [CENTRED, OFF_CENTRE], 160)
    tables = {}
    for name, flags in (("plain", ("--no-plots",)), ("augmented", ("--augment",))):
        proc = val("--weights", model, "--data", data, "--imgsz", 160, "--project", tmp_path / "runs", "--name", name, *flags)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
        tables[name] = pd.read_csv(tmp_path / "runs" / name / "metrics.csv", index_col="class")
    plain, augmented = tables["plain"], tables["augmented"]
    assert plain.loc["with_mask", "mAP50"] > 0.99 and plain.loc["without_mask", "mAP50"] > 0.99
    assert augmented.loc["with_mask", "mAP50"] > 0.99  # the centred box fused with itself
    assert augmented.loc["without_mask", "mAP50"] < 0.9  # the mirrored copy ranks level with the face
    assert augmented.loc["without_mask", "R"] > 0.99 and augmented.loc["without_mask", "P"] == 0.5  # 2 faces, 4 boxes
    assert augmented.loc["all", "instances"] == 4 and augmented.loc["without_mask", "images"] == 2
    assert "--augment on the val split" in proc.stdout


def test_val_py_augment_refuses_end2end_in_one_line(tmp_path):
    proc = val("--augment", "--end2end", "--data", dataset(tmp_path / "data"), "--project", tmp_path / "runs")
    assert proc.returncode == 2 and "choose one" in proc.stderr and "Traceback" not in proc.stderr
