"""notebooks/train_colab.ipynb is valid and every code cell runs, in a CPU smoke mode."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from synthetic import write_voc_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "train_colab.ipynb"


def test_the_notebook_is_valid_and_set_up_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"


def code_cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]


def test_training_starts_from_the_coco_checkpoint_by_default(monkeypatch):
    monkeypatch.delenv("MASKDET_MODEL", raising=False)
    namespace: dict = {}
    exec(compile(code_cells()[0], f"{NOTEBOOK.name}[cell 0]", "exec"), namespace)  # settings only: runs nothing
    assert namespace["MODEL"] == "yolo11n.pt"  # downloaded on Colab


def test_every_code_cell_runs_in_cpu_smoke_mode(tmp_path, monkeypatch):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout: the notebook clones the repository")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("the checkout has no commit to clone yet")
    drive, work = tmp_path / "drive", tmp_path / "work"
    work.mkdir()
    write_voc_dataset(drive / "kaggle-facemask")
    # Offline the COCO checkpoint cannot be downloaded: its local copy where there is one, else from scratch.
    local_coco = ROOT.parent / "shared" / "weights" / "yolo11n-coco.pt"
    start = str(local_coco) if local_coco.is_file() else "yolo11n.yaml"
    for key, value in {"MASKDET_SMOKE": "1", "MASKDET_REPO": str(ROOT), "MASKDET_WORKDIR": str(work),
                       "MASKDET_DRIVE": str(drive), "MASKDET_MODEL": start}.items():
        monkeypatch.setenv(key, value)

    namespace: dict = {}
    cells = code_cells()
    for i, cell in enumerate(cells):
        exec(compile(cell, f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)

    saved = drive / "maskdet-runs"
    assert (saved / "best.pt").stat().st_size > 1_000_000
    assert (saved / "best.onnx").exists()
    assert (saved / "train-colab" / "results.csv").exists()

    # Run all again (Colab users do): evaluating, exporting over the first .onnx and saving still work.
    first_export = saved / "best.onnx"
    first_export.unlink()
    again = next(i for i, cell in enumerate(cells) if "export.py" in cell)
    for i, cell in enumerate(cells[again:], again):
        exec(compile(cell, f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)
    assert first_export.exists()
