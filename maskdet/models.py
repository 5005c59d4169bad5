"""Where the shipped model lives, and which file a command uses when --weights is left out.

Kept apart from the pipeline (no numpy, no OpenCV, no ONNX Runtime) so that every entry point (detect.py,
serve.py, prelabel.py, camera workers) can name the default model without importing the detector.
"""

from __future__ import annotations

from pathlib import Path

from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError

MODELS_DIR = PROJECT_ROOT / "models"
# The fast path first: ONNX Runtime needs no torch and is quicker on a CPU.
DEFAULT_WEIGHTS_ORDER = (MODELS_DIR / "best.onnx", MODELS_DIR / "best.pt")


def default_weights() -> Path:
    """models/best.onnx, else models/best.pt; a one-line error when neither is there."""
    for path in DEFAULT_WEIGHTS_ORDER:
        if path.exists():
            return path
    raise UserError(f"no model in {MODELS_DIR}: pass --weights, or train one with python train.py")
