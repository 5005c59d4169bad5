"""ONNX export for ONNX Runtime (detect.py's fast CPU path), classic or end-to-end."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maskdet.errors import UserError, one_line


def has_nms_free_head(yolo) -> bool:
    """Whether a loaded model has YOLO26's one-to-one (NMS-free) head besides the classic one."""
    head = yolo.model.model[-1]
    return getattr(head, "one2one_cv2", None) is not None


def export_onnx(weights: str | Path, imgsz: int, opset: int | None = None, dynamic: bool = False,
                simplify: bool = True, half: bool = False, force: bool = False, end2end: bool = False) -> Path:
    """Export to ONNX for ONNX Runtime (detect.py --weights model.onnx), written beside the .pt.

    Ultralytics writes straight to the final name; exporting a copy in a scratch folder and moving
    the result into place means an interrupted export never leaves a half-written .onnx, and an
    existing one is replaced only when asked. `end2end` exports YOLO26's NMS-free head (Ultralytics'
    nms=False): one (1, 300, 6) output of finished boxes; otherwise the classic output that needs NMS."""
    from maskdet.training.trainer import load_yolo

    path = Path(weights)
    if not path.exists():
        raise UserError("weights not found", path)
    if path.suffix != ".pt":
        raise UserError("export needs a PyTorch .pt checkpoint", path)
    target = path.with_suffix(".onnx")
    if target.exists() and not force:
        raise UserError("already exists; add --force to replace it", target)
    args = dict(format="onnx", imgsz=imgsz, dynamic=dynamic, simplify=simplify)
    if half:
        args["quantize"] = "fp16"  # Ultralytics 8.4's name; passing half= at all prints a deprecation warning
    if opset:
        args["opset"] = opset
    if end2end:
        args["nms"] = False  # Ultralytics: False = the NMS-free head; None (default) = raw output, NMS outside
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        shutil.copy2(path, staged)
        try:
            yolo = load_yolo(staged)
        except UserError as exc:  # name the user's file, not the scratch copy
            raise UserError(str(exc).replace(str(staged), str(path))) from None
        if end2end and not has_nms_free_head(yolo):
            raise UserError("--end2end needs a model with an NMS-free head (YOLO26); this one has only the classic "
                            "head: export it without --end2end", path)
        try:
            with quiet_ultralytics():  # its lines name the scratch copy, gone once this returns
                exported = Path(yolo.export(**args))
        except (UserError, KeyboardInterrupt):
            raise
        except Exception as exc:  # torch.onnx, onnx and Ultralytics raise many types
            raise UserError(f"export failed: {type(exc).__name__}: {one_line(exc, 300)}", path) from None
        os.replace(exported, target)
    return target


@contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """Ultralytics' INFO lines off while exporting: they end with 'Results saved to <scratch folder>' and a
    'yolo predict model=<scratch copy>' hint, paths that no longer exist once the export is moved into place.
    Its warnings and errors still show; export.py then prints where the file really is."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
