"""Bootstrap intervals over photos (maskdet/evaluation/bootstrap.py) and bench/compare_models.py: how sure a
figure on 128 photos is, and whether a difference between two models is one the split can tell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskdet.evaluation.bootstrap import bootstrap, resampled_photos
from maskdet.evaluation.pipeline_map import score_matches

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
from synthetic import NAMES, write_boxes_dataset, write_scripted_onnx  # noqa: E402

ROOT = TESTS.parent


def one_face(found: bool, confidence: float = 0.9):
    """A photo with one with_mask face, and the model's box on it (right at every IoU threshold) or none."""
    if found:
        return np.ones((1, 10), bool), np.array([confidence]), np.array([0]), np.array([0])
    return np.zeros((0, 10), bool), np.zeros(0), np.zeros(0, int), np.array([0])


def test_the_same_model_twice_differs_by_exactly_nothing_and_the_estimate_is_the_splits_own():
    photos = [one_face(i % 4 != 0, 0.5 + i / 100) for i in range(40)]
    result = bootstrap({"a": photos, "again": photos}, NAMES, rounds=200)
    assert result.map50["a"].estimate == score_matches(photos, NAMES).map50
    same = result.against_first["again"]
    assert (same.difference.low, same.difference.estimate, same.difference.high, same.b_better) == (0, 0, 0, 0)


def test_a_model_that_finds_every_face_beats_one_that_misses_a_quarter_in_every_round():
    misses = [one_face(i % 4 != 0) for i in range(40)]
    finds = [one_face(True) for _ in range(40)]
    result = bootstrap({"misses": misses, "finds": finds}, NAMES, rounds=300)
    a = result.map50["misses"]
    assert a.estimate == pytest.approx(0.75, abs=0.02) and a.low < a.estimate < a.high  # which photos were drawn
    perfect = result.map50["finds"]  # 0.995: the validator's AP interpolates the precision curve at 101 points
    assert perfect.low == perfect.estimate == perfect.high == pytest.approx(0.995)
    better = result.against_first["finds"]
    assert better.difference.low > 0.1 and better.b_better == 1.0


def test_rounds_draw_photos_with_replacement_reproducibly():
    draws = resampled_photos(50, 20, seed=3)
    assert draws.shape == (20, 50) and draws.min() >= 0 and draws.max() < 50
    assert (draws == resampled_photos(50, 20, seed=3)).all() and not (draws == resampled_photos(50, 20, seed=4)).all()
    assert any(len(set(row)) < 50 for row in draws)  # some photo drawn twice


def test_models_scored_on_different_photos_are_refused():
    with pytest.raises(ValueError, match="different numbers of photos"):
        bootstrap({"a": [one_face(True)] * 3, "b": [one_face(True)] * 4}, NAMES)


# --- bench/compare_models.py, end to end on scripted models -----------------------------------------

WITH_MASK = (70, 40, 90, 60, 0, 0.8)
WITHOUT_MASK = (10, 10, 30, 30, 1, 0.6)


def dataset(root: Path, photos: int = 6) -> Path:
    return write_boxes_dataset(root, (WITH_MASK, WITHOUT_MASK), photos)


def compare(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "compare_models.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_compare_models_prints_each_models_interval_and_its_difference_from_the_first(tmp_path):
    data = dataset(tmp_path / "data")
    half = write_scripted_onnx(tmp_path / "half" / "half.onnx", [WITH_MASK], 160)  # never finds the unmasked face
    both = write_scripted_onnx(tmp_path / "both" / "both.onnx", [WITH_MASK, WITHOUT_MASK], 160)
    out = tmp_path / "compare.json"
    proc = compare(half, both, "--data", data, "--rounds", 200, "--json", out)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    # every photo alike: no interval at all; half.onnx's unmasked AP is 0, both.onnx perfect (0.995 with 101-point AP)
    assert lines[1].startswith("half.onnx") and "0.497 [0.497, 0.497]" in lines[1]
    assert lines[2].startswith("both.onnx") and "+0.497 [+0.497, +0.497]" in lines[2] and "100% of rounds" in lines[2]
    assert "val split, 6 photos, 200 bootstrap rounds" in lines[3]
    figures = json.loads(out.read_text())
    assert figures["models"]["both.onnx"]["mAP50"]["estimate"] == pytest.approx(0.995)
    assert figures["against_first"]["both.onnx"]["better_in"] == 1.0


@pytest.mark.parametrize("args, message", [(["--rounds", "5"], "--rounds: must be at least 100"),
                                           (["--level", "2"], "--level: must be at least 0.5 and at most 0.999")])
def test_compare_models_range_checks_its_numbers(tmp_path, args, message):
    proc = compare(tmp_path / "m.onnx", "--data", tmp_path / "data.yaml", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_compare_models_refuses_a_pt_in_one_line(tmp_path):
    proc = compare(ROOT / "models" / "best.pt", "--data", dataset(tmp_path / "data"), "--rounds", 100)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr


def test_compare_models_refuses_one_model_given_twice_before_running_either(tmp_path):
    both = write_scripted_onnx(tmp_path / "both" / "both.onnx", [WITH_MASK, WITHOUT_MASK], 160)
    proc = compare(both, both, "--data", dataset(tmp_path / "data"), "--rounds", 100)
    assert proc.returncode == 2 and proc.stderr == "error: both.onnx is given twice\n"


def test_compare_models_with_augment_adds_each_models_mirror_view(tmp_path):
    """Each model is loaded once and run twice: as it is, and with its mirror view. The scripted model gives the
    same boxes whatever it sees, so its mirror view puts them on the wrong side and the fused boxes score lower."""
    both = write_scripted_onnx(tmp_path / "both" / "both.onnx", [WITH_MASK, WITHOUT_MASK], 160)
    proc = compare(both, "--with-augment", "--data", dataset(tmp_path / "data"), "--rounds", 100)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain, mirrored = proc.stdout.splitlines()[1:3]
    assert plain.split()[:2] == ["both.onnx", "0.995"]
    assert mirrored.split()[:2] == ["both.onnx", "--augment"] and float(mirrored.split()[2]) < 0.9
    assert "0% of rounds" in mirrored
