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


def is_openvino(path: Path) -> bool:
    """An OpenVINO model: a *_openvino_model/ folder (Ultralytics' export) or its .xml."""
    path = Path(path)
    return path.suffix == ".xml" or (path.is_dir() and path.name.endswith(OPENVINO_SUFFIX))


def runtime_installed(path: Path) -> bool:
    """Whether the runtime a model needs is importable: the default order skips an OpenVINO model on an
    install without openvino rather than failing on it."""
    return not is_openvino(path) or importlib.util.find_spec("openvino") is not None


def default_weights() -> Path:
    """models/best_int8_openvino_model (with openvino), else best.onnx, else best.pt; one line when none."""
    for path in DEFAULT_WEIGHTS_ORDER:
        if path.exists() and runtime_installed(path):
            return path
    raise UserError(f"no model in {MODELS_DIR}: pass --weights, or train one with python train.py")
