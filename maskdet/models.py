"""Where the shipped model lives, and which file a command uses when --weights is left out.

Kept apart from the pipeline (no numpy, no OpenCV, no ONNX Runtime) so that every entry point (detect.py,
serve.py, prelabel.py, camera workers) can name the default model without importing the detector.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError

MODELS_DIR = PROJECT_ROOT / "models"
OPENVINO_SUFFIX = "_openvino_model"
# The fastest first: the INT8 model on OpenVINO (when installed), then ONNX Runtime (no torch), then PyTorch.
DEFAULT_WEIGHTS_ORDER = (MODELS_DIR / f"best_int8{OPENVINO_SUFFIX}", MODELS_DIR / "best.onnx", MODELS_DIR / "best.pt")


SECOND_STAGE = MODELS_DIR / "second_stage.onnx"  # the crop classifier's default place (with second_stage.json)


def is_shipped(weights: str | Path | None) -> bool:
    """The detector is one of the shipped models (left out, or named by its place under models/)."""
    if weights is None:
        return True
    return Path(weights).resolve() in {p.resolve() for p in DEFAULT_WEIGHTS_ORDER}


def second_stage_model(choice: str | Path | None, weights: str | Path | None = None) -> Path | None:
    """--second-stage: None is the shipped classifier with a shipped detector (its weight was chosen for them,
    on val), when there is one; "off" none; anything else a path."""
    if choice is None:
        return SECOND_STAGE if SECOND_STAGE.is_file() and is_shipped(weights) else None
    if str(choice).lower() == "off":
        return None
    return Path(choice)


def is_openvino(path: Path) -> bool:
    """An OpenVINO model: a *_openvino_model/ folder (Ultralytics' export) or its .xml."""
    path = Path(path)
    return path.suffix == ".xml" or (path.is_dir() and path.name.endswith(OPENVINO_SUFFIX))


def runtime_installed(path: Path) -> bool:
    """Whether the runtime a model needs is importable: the default order skips an OpenVINO model on an
    install without openvino rather than failing on it."""
    return not is_openvino(path) or importlib.util.find_spec("openvino") is not None


def on_gpu(device: str | None) -> bool:
    """--device names a GPU ('0', '0,1', 'cuda:0', 'mps'), not the CPU or nothing."""
    return device not in (None, "", "cpu")


def default_weights(device: str | None = None) -> Path:
    """models/best_int8_openvino_model (with openvino), else best.onnx, else best.pt; one line when none.
    With a GPU --device (Colab), the PyTorch model first, then the ONNX one: OpenVINO runs here on the CPU only."""
    order = DEFAULT_WEIGHTS_ORDER
    if on_gpu(device):
        order = tuple(sorted((p for p in order if not is_openvino(p)), key=lambda p: p.suffix != ".pt"))
    for path in order:
        if path.exists() and runtime_installed(path) and (path.suffix != ".pt" or not on_gpu(device)
                                                          or importlib.util.find_spec("torch") is not None):
            return path
    raise UserError(f"no model in {MODELS_DIR}: pass --weights, or train one with python train.py")
