"""The INT8 model (models/best_int8_openvino_model/, OpenVINO + NNCF) in detect.py: it finds the sample's
face with the right class, its boxes land on exact pixels whatever the photo's shape and size, and a model
that does not fit is refused in one line."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.detectors import DetectSettings, OpenVinoDetector, load_detector

openvino = pytest.importorskip("openvino", reason="the INT8 model needs pip install openvino")

ROOT = Path(__file__).resolve().parents[2]
INT8 = ROOT / "models" / "best_int8_openvino_model"
ASTRONAUT = ROOT / "samples" / "images" / "astronaut.jpg"
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def test_detect_py_finds_the_astronauts_bare_face_with_the_int8_model(detect, tmp_path):
    proc = detect("--source", ASTRONAUT, "--weights", INT8, "--save-txt")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    (label,) = (tmp_path / "runs").rglob("astronaut.txt")
    rows = [line.split() for line in label.read_text().splitlines()]
    assert [r[0] for r in rows] == ["1"], rows  # one face, without_mask
    x, y = float(rows[0][1]), float(rows[0][2])
    assert 0.35 < x < 0.55 and 0.15 < y < 0.4, rows  # the face, top middle of the photo


def test_the_int8_model_agrees_with_the_fp32_onnx_on_the_sample():
    image = cv2.imread(str(ASTRONAUT))
    int8 = load_detector(INT8, DetectSettings(conf=0.25))(image)
    fp32 = load_detector(ROOT / "models" / "best.onnx", DetectSettings(conf=0.25))(image)
    assert int8.class_id.tolist() == fp32.class_id.tolist() == [1]
    assert np.abs(int8.xyxy - fp32.xyxy).max() < 0.03 * image.shape[1]


def scripted_openvino(folder: Path, boxes, imgsz: int, kit, **metadata) -> Path:
    """The tests' scripted ONNX model (fixed boxes) converted to an OpenVINO folder as Ultralytics writes one."""
    import yaml

    onnx = kit.write_scripted_onnx(folder / "scripted.onnx", boxes, imgsz)
    model = folder / "scripted_openvino_model"
    model.mkdir()
    openvino.save_model(openvino.convert_model(str(onnx)), str(model / "scripted.xml"))
    meta = {"task": "detect", "imgsz": [imgsz, imgsz], "names": dict(enumerate(NAMES)), **metadata}
    (model / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return model


@pytest.mark.parametrize("image_wh", [(120, 200), (200, 120), (150, 150), (37, 411), (960, 540), (64, 64)])
def test_openvino_boxes_land_on_exact_photo_pixels_for_any_shape_and_scale(tmp_path, kit, image_wh):
    w, h = image_wh
    faces = [(0.1 * w, 0.2 * h, 0.4 * w, 0.6 * h, 1, 0.9), (0.5 * w, 0.1 * h, 0.95 * w, 0.5 * h, 2, 0.7)]
    boxes = [(*kit.to_model_pixels(f[:4], image_wh, 160), f[4], f[5]) for f in faces]
    detector = OpenVinoDetector(scripted_openvino(tmp_path, boxes, 160, kit), DetectSettings(conf=0.25))
    found = detector(np.zeros((h, w, 3), np.uint8))
    assert found.class_id.tolist() == [1, 2]
    np.testing.assert_allclose(found.confidence, [0.9, 0.7], atol=1e-3)
    np.testing.assert_allclose(found.xyxy, np.array([f[:4] for f in faces]), atol=0.1)  # OpenVINO runs float parts in bf16 on AMX CPUs


def test_a_model_for_another_task_is_refused_in_one_line(detect, tmp_path, kit, tools):
    model = scripted_openvino(tmp_path, [], 160, kit, task="classify")
    tools.assert_one_line_error(detect("--source", ASTRONAUT, "--weights", model), "'classify' model, not a detector")


def test_a_model_whose_output_does_not_match_its_classes_is_refused_in_one_line(detect, tmp_path, kit, tools):
    model = scripted_openvino(tmp_path, [], 160, kit, names={0: "face", 1: "mask"})
    tools.assert_one_line_error(detect("--source", ASTRONAUT, "--weights", model), "3 class scores", "2 classes")


def test_an_openvino_folder_without_its_metadata_is_refused_in_one_line(detect, tmp_path, tools):
    broken = tmp_path / "copy_openvino_model"
    shutil.copytree(INT8, broken)
    (broken / "metadata.yaml").unlink()
    tools.assert_one_line_error(detect("--source", ASTRONAUT, "--weights", broken), "no metadata.yaml")


def test_an_openvino_folder_whose_metadata_is_broken_yaml_is_one_line_naming_the_line(detect, tmp_path, tools):
    broken = tmp_path / "typo_openvino_model"
    shutil.copytree(INT8, broken)
    (broken / "metadata.yaml").write_text("names:\n  0: with_mask\n  1: [without_mask\nimgsz: [704, 704]\n")
    tools.assert_one_line_error(detect("--source", ASTRONAUT, "--weights", broken),
                                f"{broken / 'metadata.yaml'}:4: metadata.yaml is not valid YAML")


def test_an_openvino_folder_whose_metadata_nests_aliases_is_refused_in_one_line_not_expanded(detect, tmp_path, tools):
    """A few hundred bytes of nested YAML aliases name 3 x 9**9 classes: walked, they take minutes and gigabytes.
    A model folder comes from outside, so its metadata.yaml is read without anchors or aliases."""
    hostile = tmp_path / "bomb_openvino_model"
    shutil.copytree(INT8, hostile)
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    meta = (hostile / "metadata.yaml").read_text()
    start, end = meta.index("names:"), meta.index("args:")
    (hostile / "metadata.yaml").write_text("\n".join(levels) + "\n" + meta[:start] + "names: [*a8, *a8, *a8]\n"
                                           + meta[end:])
    proc = detect("--source", ASTRONAUT, "--weights", hostile, timeout=60)
    tools.assert_one_line_error(proc, hostile / "metadata.yaml", "anchors and aliases")


@pytest.mark.parametrize("metadata", ["oversized", "a device"])
def test_an_openvino_folder_whose_metadata_never_ends_is_refused_unread(metadata, detect, tmp_path, tools):
    """A link to /dev/zero has no size to check beforehand: read whole, it took 15 GB before the OOM killer came."""
    hostile = tmp_path / "endless_openvino_model"
    shutil.copytree(INT8, hostile)
    (hostile / "metadata.yaml").unlink()
    if metadata == "oversized":
        tools.sparse_file(hostile / "metadata.yaml", 1 << 40)
    elif Path("/dev/zero").exists():
        (hostile / "metadata.yaml").symlink_to("/dev/zero")
    else:
        pytest.skip("needs /dev/zero")
    proc = detect("--source", ASTRONAUT, "--weights", hostile, timeout=60)
    tools.assert_one_line_error(proc, hostile / "metadata.yaml", "over 1,048,576 bytes")


def test_the_int8_model_is_the_default_when_openvino_is_installed():
    from maskdet.inference.detect import default_weights

    assert default_weights() == INT8 and default_weights("cpu") == INT8


def test_on_a_gpu_device_the_default_is_a_model_that_runs_there_not_the_cpu_only_openvino_one():
    """Colab: `detect.py --device 0` ran the OpenVINO model on the CPU without a word."""
    from maskdet.models import MODELS_DIR, default_weights

    expected = MODELS_DIR / ("best.pt" if importlib.util.find_spec("torch") else "best.onnx")
    assert default_weights("0") == expected and default_weights("mps") == expected


@pytest.mark.parametrize("flags, why", [(["--device", "0"], "an OpenVINO model runs on the CPU here"),
                                         (["--half"], "runs at the precision it was exported with")])
def test_a_gpu_or_half_flag_the_openvino_model_cannot_honour_is_one_line_not_ignored(detect, tools, flags, why):
    tools.assert_one_line_error(detect("--source", ASTRONAUT, "--weights", INT8, *flags), why)


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_export_py_int8_quantizes_a_checkpoint_that_detect_py_then_runs(model, tmp_path, detect, fmt):
    pytest.importorskip("nncf", reason="export.py --int8 needs pip install nncf")
    pt = tmp_path / "tiny.pt"
    shutil.copy(model.pt, pt)
    argv = [sys.executable, str(ROOT / "export.py"), "--weights", str(pt), "--imgsz", "64", "--int8", "--format", fmt,
            "--data", str(model.data), "--fraction", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    made = tmp_path / ("tiny_int8_openvino_model" if fmt == "openvino" else "tiny_int8.onnx")
    assert "calibrated on 4 train photos" in proc.stdout and made.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tiny.pt", made.name])  # no scratch left behind
    image = kit_image(tmp_path)
    ran = detect("--source", image, "--weights", made, "--conf", "0.0001")
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 2 and "add --force" in again.stderr  # never silently replaced


def export_onnx_int8(model, folder: Path, data: Path) -> subprocess.CompletedProcess:
    """export.py --int8 --format onnx on a copy of the tiny model (folder/tiny.pt), calibrated on data's train photos."""
    pt = folder / "tiny.pt"
    shutil.copy(model.pt, pt)
    return subprocess.run([sys.executable, str(ROOT / "export.py"), "--weights", str(pt), "--imgsz", "64", "--int8",
                           "--format", "onnx", "--data", str(data / "data.yaml"), "--fraction", "1"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_onnx_int8_calibration_skips_a_corrupt_and_an_oversized_photo_without_decoding_it(model, tmp_path):
    """The train photos are outside input: one that cannot be decoded, or whose header says it is over the pixel
    limit, is left out of calibration (and counted out of the figure export.py prints), never decoded."""
    pytest.importorskip("onnxruntime.quantization", reason="needs onnxruntime")
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(model.data.parent, data)
    train = data / "train" / "images"
    (train / "a_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.new("1", (16000, 12000)).save(train / "b_huge.png")  # 192 megapixels, a few kB on disk
    proc = export_onnx_int8(model, tmp_path, data)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "calibrated on 4 train photos" in proc.stdout, proc.stdout[-2000:]  # 6 listed, 2 left out
    assert (tmp_path / "tiny_int8.onnx").exists()


def test_onnx_int8_with_no_readable_calibration_photo_is_one_line_error_and_leaves_nothing(model, tmp_path):
    """With every train photo corrupt, ONNX Runtime would fail on its own terms; export.py says why in ours,
    exits 2, and leaves neither the INT8 file nor its scratch folder behind."""
    pytest.importorskip("onnxruntime.quantization", reason="needs onnxruntime")
    data = tmp_path / "data"
    shutil.copytree(model.data.parent, data)
    photos = sorted((data / "train" / "images").iterdir())
    for photo in photos:
        photo.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    proc = export_onnx_int8(model, tmp_path, data)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {photos[0].parent}: none of the {len(photos)} calibration photos could be read"), \
        last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tiny.pt"]


def kit_image(folder: Path) -> Path:
    path = folder / "in" / "frame.png"
    path.parent.mkdir()
    cv2.imwrite(str(path), np.full((120, 160, 3), 90, np.uint8))
    return path
