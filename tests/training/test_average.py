"""Weight averaging (maskdet/training/average.py): every floating tensor mixed by alpha, BatchNorm statistics
included; the result a checkpoint Ultralytics loads; two different networks refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="averaging checkpoints needs torch (requirements-train.txt)")

from maskdet.errors import UserError  # noqa: E402
from maskdet.training.average import average_checkpoints, save_checkpoint  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "best.pt"


def shifted_copy(path: Path, out: Path, by: float) -> Path:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = (checkpoint.get("ema") or checkpoint["model"]).float()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor += by  # weights, biases and BatchNorm's running statistics alike
    checkpoint.update(model=model.half(), ema=None)
    torch.save(checkpoint, out)
    return out


def test_every_floating_tensor_is_mixed_by_alpha_and_ultralytics_loads_the_result(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip(f"no shipped model at {SHIPPED}")
    shifted = shifted_copy(SHIPPED, tmp_path / "shifted.pt", 1.0)
    out = save_checkpoint(average_checkpoints(SHIPPED, shifted, 0.25), tmp_path / "soup" / "averaged.pt")
    assert out.is_file() and not list(out.parent.glob(".*.tmp"))
    original = torch.load(SHIPPED, map_location="cpu", weights_only=False)["model"].float().state_dict()
    averaged = torch.load(out, map_location="cpu", weights_only=False)
    assert averaged["averaged"]["alpha"] == 0.25 and averaged["optimizer"] is None
    mixed = averaged["model"].float().state_dict()
    for name in ("model.0.conv.weight", "model.0.bn.running_mean", "model.23.cv3.2.2.bias"):
        assert torch.allclose(mixed[name], original[name] + 0.25, atol=1e-2), name  # stored in fp16 (steps of 4e-3 at 8)
    from ultralytics import YOLO

    assert YOLO(str(out)).names == {0: "with_mask", 1: "without_mask", 2: "mask_weared_incorrect"}


def test_different_networks_a_bad_alpha_and_a_missing_file_are_one_line_errors(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip(f"no shipped model at {SHIPPED}")
    checkpoint = torch.load(SHIPPED, map_location="cpu", weights_only=False)
    model = checkpoint["model"].float()
    model.model = model.model[:-1]  # the head gone: another network
    checkpoint.update(model=model, ema=None)
    torch.save(checkpoint, tmp_path / "headless.pt")
    with pytest.raises(UserError, match="not the same network"):
        average_checkpoints(SHIPPED, tmp_path / "headless.pt", 0.5)
    with pytest.raises(UserError, match="alpha must be between 0 and 1"):
        average_checkpoints(SHIPPED, SHIPPED, 1.5)
    with pytest.raises(UserError, match="no such checkpoint"):
        average_checkpoints(SHIPPED, tmp_path / "missing.pt", 0.5)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not an Ultralytics checkpoint"):
        average_checkpoints(SHIPPED, tmp_path / "junk.pt", 0.5)


def train_py(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SHIPPED.parents[1] / "train.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_train_py_average_numbers_its_run_folders_and_makes_none_for_bad_inputs(tmp_path, tools):
    if not SHIPPED.is_file():
        pytest.skip(f"no shipped model at {SHIPPED}")
    args = ("--average", SHIPPED, SHIPPED, "--alpha", "0.3", "--project", tmp_path, "--name", "soup")
    proc = train_py(*args)
    assert proc.returncode == 0, proc.stderr
    first = tmp_path / "soup" / "weights" / "best.pt"
    assert first.is_file() and "next: python val.py" in proc.stdout
    made = first.stat().st_mtime_ns
    again = train_py(*args)  # as every run folder: soup2, the first kept
    assert again.returncode == 0 and (tmp_path / "soup2" / "weights" / "best.pt").is_file(), again.stderr
    assert first.stat().st_mtime_ns == made
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not a checkpoint")
    tools.assert_one_line_error(train_py("--average", SHIPPED, tmp_path / "photo.jpg", "--project", tmp_path,
                                         "--name", "soup"), "not an Ultralytics checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["soup", "soup2"]
    tools.assert_one_line_error(train_py("--average", SHIPPED, SHIPPED, "--alpha", "2"), "--alpha")
