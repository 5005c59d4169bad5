"""notebooks/train_colab.ipynb: valid, one Colab form for its settings, and every code cell runs in a CPU smoke
mode on what labeling/label.py leaves (photos with YOLO .txt labels and classes.txt), merged with Kaggle data."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import cv2
import nbformat
import pytest
from synthetic import NAMES, make_sample, write_voc_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "train_colab.ipynb"


def test_the_notebook_is_valid_set_up_for_a_gpu_and_linked_from_the_readme():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"
    settings = next(c for c in nb.cells if c.cell_type == "code")
    assert settings.metadata.get("cellView") == "form" and settings.source.startswith("#@title Settings")
    params = [line.split("=")[0].strip() for line in settings.source.splitlines() if "#@param" in line]
    assert params == ["REPO_URL", "PHOTOS", "KAGGLE", "START_FROM", "EPOCHS", "IMGSZ", "BATCH", "OUT_FOLDER"]
    assert sum("#@param" in c.source for c in nb.cells if c.cell_type == "code") == 1  # one form: every setting in one place
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "https://colab.research.google.com/github/" in readme and "notebooks/train_colab.ipynb" in readme


def code_cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]


def settings(monkeypatch, replace: dict[str, str] | None = None) -> dict:
    for key in ("MASKDET_MODEL", "MASKDET_SMOKE", "MASKDET_REPO", "MASKDET_PHOTOS", "MASKDET_KAGGLE"):
        monkeypatch.delenv(key, raising=False)
    source = code_cells()[0]
    for old, new in (replace or {}).items():
        assert old in source
        source = source.replace(old, new)
    namespace: dict = {}
    exec(compile(source, f"{NOTEBOOK.name}[cell 0]", "exec"), namespace)  # settings and helpers only: runs nothing
    return namespace


def test_training_fine_tunes_the_shipped_model_by_default_or_starts_from_coco(monkeypatch):
    assert settings(monkeypatch)["MODEL"] == "models/best.pt"
    assert settings(monkeypatch, {'START_FROM = "shipped model"': 'START_FROM = "COCO"'})["MODEL"] == "yolo11n.pt"
    with pytest.raises(ValueError, match="EPOCHS must be between 1 and 1000, not 0"):
        settings(monkeypatch, {"EPOCHS = 30": "EPOCHS = 0"})
    with pytest.raises(ValueError, match="IMGSZ must be a multiple of 32"):
        settings(monkeypatch, {"IMGSZ = 640": "IMGSZ = 650"})


def write_labelled_photos(folder: Path, n: int = 8, seed: int = 100) -> Path:
    """What labeling/label.py leaves: photos, a YOLO .txt beside each, and classes.txt."""
    folder.mkdir(parents=True)
    for i in range(n):
        image, boxes = make_sample.make_image(seed + i)
        cv2.imwrite(str(folder / f"mine{i}.jpg"), image)
        (folder / f"mine{i}.txt").write_text("".join(f"{b.to_line()}\n" for b in boxes))
    (folder / "classes.txt").write_text("".join(f"{n}\n" for n in NAMES))
    return folder


def test_the_photos_are_found_in_each_layout_label_py_leaves_and_in_a_zip(monkeypatch, tmp_path):
    ns = settings(monkeypatch)
    flat = write_labelled_photos(tmp_path / "flat", n=1)
    assert ns["photo_folders"](flat) == (flat, flat)
    split = tmp_path / "split"
    (split / "images").mkdir(parents=True)
    (split / "labels").mkdir()
    shutil.copy(flat / "mine0.jpg", split / "images")
    assert ns["photo_folders"](split) == (split / "images", split / "labels")
    assert ns["photo_folders"](split / "images") == (split / "images", split / "labels")
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as z:
        for f in flat.iterdir():
            z.write(f, f"my-photos/{f.name}")
    unpacked = ns["unpack"](tmp_path / "photos.zip", tmp_path / "unzipped")
    assert unpacked == tmp_path / "unzipped" / "my-photos" and ns["photo_folders"](unpacked)[0] == unpacked
    with pytest.raises(FileNotFoundError, match="no photos in"):
        ns["photo_folders"](tmp_path / "unzipped" / "nothing")


def test_every_code_cell_runs_in_cpu_smoke_mode_on_labelimg_photos_merged_with_kaggle(tmp_path, monkeypatch):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout: the notebook clones the repository")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("the checkout has no commit to clone yet")
    drive, work = tmp_path / "drive", tmp_path / "work"
    work.mkdir()
    write_labelled_photos(drive / "my-photos")
    write_voc_dataset(drive / "kaggle-facemask")
    for key, value in {"MASKDET_SMOKE": "1", "MASKDET_REPO": str(ROOT), "MASKDET_WORKDIR": str(work),
                       "MASKDET_DRIVE": str(drive), "MASKDET_PHOTOS": "my-photos", "MASKDET_KAGGLE": "kaggle-facemask"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASKDET_MODEL", raising=False)  # the default: the shipped model, fine-tuned (in the clone: offline)

    namespace: dict = {}
    cells = code_cells()
    for i, cell in enumerate(cells):
        exec(compile(cell, f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)

    dataset = work / "face-mask-detector" / "data"
    trained_on = {p.stem for split in ("train", "val", "test") for p in (dataset / split / "images").iterdir()}
    assert {f"mine{i}" for i in range(8)} <= trained_on and {f"face{i}" for i in range(12)} <= trained_on  # both, merged
    saved = drive / "maskdet-runs"
    assert (saved / "best.pt").stat().st_size > 1_000_000
    assert (saved / "best.onnx").exists()
    assert (saved / "train-colab" / "results.csv").exists() and (saved / "test-colab").is_dir()

    # Run all again (Colab users do): evaluating, exporting over the first .onnx and saving still work.
    first_export = saved / "best.onnx"
    first_export.unlink()
    again = next(i for i, cell in enumerate(cells) if "export.py" in cell)
    for i, cell in enumerate(cells[again:], again):
        exec(compile(cell, f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)
    assert first_export.exists()
