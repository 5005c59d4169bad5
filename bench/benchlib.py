"""What the bench scripts share (each runs as `python bench/<name>.py`, which puts this folder on the path).

A library, not a command: `python bench/benchlib.py` says so and exits 2.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# maskdet is imported inside the functions that use it, so importing this module needs nothing but the
# standard library, whichever folder the bench was started from.


def cpu_name() -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores': the CPU a figure came from, quoted beside the numbers."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> str:
    """The instruction sets that decide INT8 and bf16 speed (VNNI, AMX), as /proc/cpuinfo lists them."""
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    return " ".join(f for f in SIMD_FLAGS if f in flags) or "none of " + " ".join(SIMD_FLAGS)


def timed(fn, *args):
    """fn(*args), and the wall and CPU milliseconds it took: (result, wall_ms, cpu_ms). CPU time counts every
    thread of this process, so a runtime that spins its threads shows it."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3


def read_photo(path: str | Path) -> np.ndarray:
    """A photo a bench runs on, through detect.py's bounded reader (maskdet.inference.sources.read_image): a
    missing, corrupt, truncated or oversized one stops the bench with one line naming it, as a figure measured
    on fewer photos than asked is not the figure."""
    from maskdet.errors import UserError
    from maskdet.inference.sources import SourceError, read_image

    try:
        return read_image(Path(path))
    except SourceError as exc:
        raise UserError(str(exc)) from None


def read_photos(folder: str | Path) -> list[np.ndarray]:
    """Every photo directly in folder (read_photo each), at least one."""
    from maskdet.errors import UserError
    from maskdet.fileio import list_images

    if not Path(folder).is_dir():
        raise UserError("no such folder", folder)
    paths = list_images(folder)
    if not paths:
        raise UserError("the folder holds no images", folder)
    return [read_photo(p) for p in paths]


def write_json(path: str | Path, figures: object, indent: int = 2) -> None:
    """The figures as indented JSON, written atomically (a bench stopped mid-write leaves the old file whole), and
    a line saying where they went, and which folders were made for them."""
    import json

    from maskdet.fileio import atomic_write_text

    path = Path(path)
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    made = missing[-1] if missing else None  # the topmost folder the writer makes
    atomic_write_text(path, json.dumps(figures, indent=indent) + "\n")
    print(f"wrote the figures to {path}" + (f" (made the folder {made})" if made else ""))


def find_yolo() -> str:
    """Ultralytics' `yolo` command: the one beside this interpreter first (a venv's python run by its path leaves
    the venv's bin/ off PATH), else the first on PATH; a one-line error when there is none."""
    from maskdet.errors import UserError

    yolo = shutil.which("yolo", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if yolo is None:
        raise UserError(f"needs Ultralytics' 'yolo' command, found neither beside {sys.executable} nor on PATH "
                        "(pip install -r requirements-train.txt)")
    return yolo


STRIDE = 32  # YOLO's largest stride: an image size is a multiple of it


def stride_imgsz(text: str) -> int:
    """An argparse type: --imgsz in maskdet.cli.IMGSZ's range and a multiple of the stride. Ultralytics would round
    a .pt's size up to the stride (33 -> 64) while an export keeps its own, and the bench would compare two sizes."""
    import argparse

    from maskdet.cli import IMGSZ

    value = IMGSZ(text)
    if value % STRIDE:
        up = -(-value // STRIDE) * STRIDE
        raise argparse.ArgumentTypeError(f"must be a multiple of {STRIDE} (the model's stride), got {text}: "
                                         f"try {up}")
    return value


stride_imgsz.__name__ = "int"  # argparse names the type in its own messages


def fixed_size(model: str | Path) -> int | None:
    """The input size an exported model is fixed at (an .onnx or OpenVINO export without dynamic axes), read
    without loading it for inference; None for a .pt or a dynamic export, which take any size, and for a path that
    is not there (the loader says what is wrong with it)."""
    from maskdet.errors import UserError
    from maskdet.models import is_openvino

    path = Path(model)
    if not path.exists():
        return None
    try:
        if path.suffix == ".onnx":
            import onnxruntime as ort

            shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
            return shape[2] if len(shape) == 4 and isinstance(shape[2], int) else None
        if is_openvino(path):
            import openvino as ov

            from maskdet.inference.detectors import openvino_xml

            shape = ov.Core().read_model(str(openvino_xml(path))).inputs[0].get_partial_shape()
            return shape[2].get_length() if shape[2].is_static else None
    except UserError:
        raise
    except Exception as exc:  # onnx, protobuf and OpenVINO raise their own types
        raise UserError(f"cannot read this model's input size ({type(exc).__name__}: {exc})", path) from None
    return None


def same_size(models: list[Path], imgsz: int | None, flag: str = "--imgsz") -> int | None:
    """The one size every model runs at: `imgsz`, or the exports' fixed size when it is None; a one-line error
    when a fixed-size export takes another size (a side-by-side figure would compare two sizes). None when no
    model is fixed and no size was given."""
    from maskdet.errors import UserError

    sizes = {m: s for m in models if (s := fixed_size(m)) is not None}
    for model, size in sizes.items():
        if imgsz is not None and size != imgsz:
            raise UserError(f"exported at a fixed {size}x{size} px, so it cannot run at {flag} {imgsz} beside the "
                            f"others: leave {flag} out (or give {size}), or export it at {imgsz} "
                            f"(python export.py --imgsz {imgsz})", model)
    first, *_ = sizes.items() or [(None, None)]
    for model, size in sizes.items():
        if size != first[1]:
            raise UserError(f"exported at {size} px, and {first[0]} at {first[1]} px: a side-by-side figure needs "
                            "models of one size (python export.py --imgsz)", model)
    return imgsz if imgsz is not None else first[1]


# The Kaggle face-mask dataset as the project keeps it beside the clone: the conventional default of the
# benches that run on its fixed split. Each takes the folder by a flag; nothing falls back quietly.
KAGGLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kaggle-facemask"


def add_kaggle_arg(parser, use: str) -> None:
    """--kaggle: the Kaggle face-mask folder a bench reads; `use` says what of it (read through kaggle_split)."""
    parser.add_argument("--kaggle", default=str(KAGGLE),
                        help=f"Kaggle face-mask folder: {use} (default: the copy beside the clone, "
                             "../shared/datasets/kaggle-facemask)")


def kaggle_split(folder: str | Path, split: str, flag: str, otherwise: str = "") -> list[str]:
    """The photo stems of `split` in a Kaggle face-mask folder (images/, annotations/, splits/<split>.txt), or a
    one-line error naming the folder and the flag that gives it (`otherwise`: what else the bench can do)."""
    from maskdet.data.split import read_stem_list
    from maskdet.errors import UserError

    folder = Path(folder)
    give = f"give the folder with {flag}" + (f", {otherwise}" if otherwise else "")
    if not folder.is_dir():
        raise UserError(f"no such folder, so no Kaggle face-mask dataset (images/, annotations/, splits/): {give}",
                        folder)
    for part in ("images", "annotations"):
        if not (folder / part).is_dir():
            raise UserError(f"no {part}/ folder: not the Kaggle face-mask dataset (images/, annotations/, splits/); "
                            f"{give}", folder)
    if not (folder / "splits" / f"{split}.txt").is_file():
        raise UserError(f"no splits/{split}.txt: this bench runs on the project's fixed split of the Kaggle photos, "
                        "which a Kaggle download does not have (README, 'Try it on a public dataset'); "
                        f"{give}", folder)
    return read_stem_list(folder / "splits" / f"{split}.txt")


if __name__ == "__main__":
    print(f"error: {Path(__file__).name} is a library for the bench scripts, not a command: run one of them, "
          "e.g. python bench/model_speed.py --help", file=sys.stderr)
    sys.exit(2)
