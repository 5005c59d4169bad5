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

    path = local_weights(weights)
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


def local_weights(weights: str | Path) -> Path:
    """The checkpoint to export, which must be here: offline, a hub name (yolo11n.pt) says what to do instead, as
    train.py and val.py do."""
    from maskdet.training.trainer import resolve_model

    path = Path(weights)
    if path.exists():
        return path
    if len(path.parts) == 1:
        resolve_model(weights)  # offline and a hub name: what to do instead
    raise UserError("weights not found", path)


INT8_FORMATS = ("openvino", "onnx")


def int8_target(weights: Path, fmt: str) -> Path:
    """Where export_int8 writes: models/best.pt -> models/best_int8_openvino_model/ or models/best_int8.onnx."""
    return weights.with_name(f"{weights.stem}_int8_openvino_model" if fmt == "openvino" else f"{weights.stem}_int8.onnx")


def calibration_images(data: str | Path, split: str, fraction: float) -> list[Path]:
    """The first `fraction` of a split's images in name order: what Ultralytics' own INT8 calibration
    takes with the same fraction, so both runtimes calibrate on the same photos."""
    from maskdet.config import load_dataset_config
    from maskdet.fileio import list_images

    if not 0 < fraction <= 1:
        raise UserError(f"--fraction must be in (0, 1], got {fraction}")
    config = load_dataset_config(data)
    if split not in config.split_images:
        raise UserError(f"data.yaml names no '{split}' folder to calibrate on", config.yaml_path)
    if not config.images_dir(split).is_dir():
        raise UserError(f"the {split} folder data.yaml names is not there (build it with labeling/split.py, or give "
                        "--data the dataset the model was trained on)", config.images_dir(split))
    images = sorted(list_images(config.images_dir(split)))
    if not images:
        raise UserError(f"the {split} split has no images (build it with labeling/split.py)", config.images_dir(split))
    return images[:max(1, round(len(images) * fraction))]


def refuse_other_calibration_classes(weights: Path, data: str | Path) -> None:
    """Calibrating on a data.yaml of other classes than the model's went through without a word: Ultralytics took
    the photos whose labels fit as 'corrupt' and calibrated on the rest (val.py refuses such a pair too)."""
    from maskdet.config import load_dataset_config
    from maskdet.training.trainer import load_yolo, refuse_other_classes

    names = load_yolo(weights).names
    refuse_other_classes(tuple(names[i] for i in sorted(names)), load_dataset_config(data).names, weights,
                         ": calibrate on the data.yaml it was trained on (--data)")


def export_int8(weights: str | Path, data: str | Path, imgsz: int, fraction: float = 0.5, split: str = "train",
                fmt: str = "openvino", force: bool = False) -> tuple[Path, int]:
    """Post-training INT8 quantization, calibrated on `fraction` of a split's photos (ours, not COCO's).

    openvino: Ultralytics' export (format=openvino, quantize=8), i.e. NNCF's MIXED preset with the
    detection head's decoding (DFL, box arithmetic, sigmoids) left in float, as Ultralytics does.
    onnx: ONNX Runtime static quantization to QDQ, u8 activations and per-channel s8 weights (the
    pair x86 VNNI kernels run), MinMax calibration, the same head decoding left in float.
    Either is written in a scratch folder and moved into place, so an interrupted export leaves nothing."""
    from maskdet.training.trainer import write_resolved_data_yaml

    path = Path(weights)
    if fmt not in INT8_FORMATS:
        raise UserError(f"--format must be one of {', '.join(INT8_FORMATS)}, got {fmt!r}")
    path = local_weights(path)
    if path.suffix != ".pt":
        raise UserError("--int8 needs a PyTorch .pt checkpoint (it exports and quantizes it)", path)
    target = int8_target(path, fmt)
    if target.exists() and not force:
        raise UserError("already exists; add --force to replace it", target)
    images = calibration_images(data, split, fraction)
    refuse_other_calibration_classes(path, data)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        scratch = Path(scratch)
        staged = scratch / path.name
        shutil.copy2(path, staged)
        if fmt == "openvino":
            from ultralytics import YOLO

            data_yaml = write_resolved_data_yaml(data, scratch)
            exported = Path(YOLO(str(staged)).export(format="openvino", imgsz=imgsz, quantize=8, data=str(data_yaml),
                                                     split=split, fraction=fraction, batch=1))
        else:
            fp32 = export_onnx(staged, imgsz, simplify=True)
            exported = scratch / target.name
            calibrated = quantize_onnx(fp32, exported, images, imgsz)
        if target.is_dir() and force:
            shutil.rmtree(target)
        elif target.exists() and force:
            target.unlink()
        os.replace(exported, target)
    return target, len(images) if fmt == "openvino" else calibrated


def head_decode_nodes(model) -> list[str]:
    """The nodes of the Detect head after its convolutions (DFL, anchors, box arithmetic, sigmoid):
    8-bit there costs box precision for no speed, so they stay float (Ultralytics does the same)."""
    head = max((n.name.split("/")[1] for n in model.graph.node if n.name.startswith("/model.")),
               key=lambda s: int(s.split(".")[1]))
    return [n.name for n in model.graph.node
            if n.name.startswith(f"/{head}/") and "/cv2" not in n.name and "/cv3" not in n.name]


def quantize_onnx(fp32: Path, target: Path, images: list[Path], imgsz: int) -> int:
    """ONNX Runtime static QDQ quantization, calibrated on `images` letterboxed as detect.py does. Returns how many
    photos it calibrated on: one that cannot be read, or is over the pixel limit, is skipped."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from maskdet.inference.detectors import letterbox, to_blob
    from maskdet.inference.sources import SourceError, read_image
    from maskdet.progress import progress

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.images = iter(progress(images, desc="calibrating", unit="photo"))
            self.name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
            self.used = 0

        def get_next(self):
            for p in self.images:
                try:  # a dataset photo is outside input: detect.py's reader bounds it before decoding
                    image = read_image(p)
                except SourceError:
                    continue  # calibration needs many photos, not every one
                self.used += 1
                return {self.name: to_blob(letterbox(image, imgsz)[0])}
            return None

    pre = fp32.with_name(fp32.stem + ".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    model = onnx.load(str(pre))
    photos = Photos()
    try:
        quantize_static(str(pre), str(target), photos, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=head_decode_nodes(model), calibrate_method=CalibrationMethod.MinMax)
    except Exception:  # with no photo at all, ONNX Runtime fails on its own terms: the check below says why in ours
        if photos.used:
            raise
    if not photos.used:
        raise UserError(f"none of the {len(images)} calibration photos could be read (corrupt, or over the pixel "
                        f"limit)", images[0].parent)
    return photos.used


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
