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


def test_every_code_cell_runs_in_cpu_smoke_mode(tmp_path, monkeypatch):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout: the notebook clones the repository")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("the checkout has no commit to clone yet")
    drive, work = tmp_path / "drive", tmp_path / "work"
    work.mkdir()
    write_voc_dataset(drive / "kaggle-facemask")
    for key, value in {"MASKDET_SMOKE": "1", "MASKDET_REPO": str(ROOT), "MASKDET_WORKDIR": str(work),
                       "MASKDET_DRIVE": str(drive)}.items():
        monkeypatch.setenv(key, value)

    namespace: dict = {}
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)

    saved = drive / "maskdet-runs"
    assert (saved / "best.pt").stat().st_size > 1_000_000
    assert (saved / "best.onnx").exists()
    assert (saved / "train-colab" / "results.csv").exists()

    # Run all again (Colab users do): evaluating, exporting over the first .onnx and saving still work.
    first_export = saved / "best.onnx"
    first_export.unlink()
    again = next(i for i, cell in enumerate(cells) if "export.py" in "".join(cell["source"]))
    for i, cell in enumerate(cells[again:], again):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)
    assert first_export.exists()
