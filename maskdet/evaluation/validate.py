"""Evaluate any weights (.pt or .onnx) on any split of a data.yaml, on Ultralytics' validator.

What this adds to `yolo val`: paths that work from any folder, a data.yaml resolved into the run folder,
YOLO26's NMS-free head on request, and one metrics table people can read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from maskdet.config import INFERENCE_IMGSZ, PROJECT_ROOT, SPLITS, load_dataset_config
from maskdet.csvcells import safe_table
from maskdet.errors import UserError, one_line
from maskdet.evaluation.metrics import MAP_CONF, MAP_IOU, metrics_table, step_table
from maskdet.fileio import atomic_write_text, list_images, next_run_dir
from maskdet.training.export import has_nms_free_head
from maskdet.training.trainer import load_yolo, photos_left_out, refuse_other_classes, resolve_model, write_resolved_data_yaml

VALIDATOR_MAX_DET = 300  # boxes Ultralytics' validator keeps per photo


def check_exported_model(weights: str | Path, names: tuple[str, ...], imgsz: int | None) -> int:
    """The size to evaluate at: `imgsz`, or where None the model's own as detect.py runs it (an export's fixed
    input, or the size it was exported at; INFERENCE_IMGSZ for a .pt). An exported model (.onnx, OpenVINO folder,
    INT8 or not) goes through detect.py's own loader first, so one that does not fit (another task, a fixed size
    other than --imgsz, other classes) is refused in one line here too, before Ultralytics' validator would fail on
    it with a traceback."""
    from maskdet.inference.detectors import DetectSettings, load_detector

    if Path(weights).suffix == ".pt":
        return imgsz or INFERENCE_IMGSZ
    detector = load_detector(weights, DetectSettings(), imgsz, "cpu")
    refuse_other_classes(detector.names, names, weights)
    return detector.imgsz


@dataclass
class EvalResult:
    save_dir: Path
    table: pd.DataFrame
    speed_ms: dict[str, float]
    left_out: int = 0  # photos of the split the validator did not use (an image or a label line it could not use)
    left_out_photos: tuple[Path, ...] = ()  # which, where Ultralytics' dataset said so
    imgsz: int = INFERENCE_IMGSZ  # the size it was evaluated at


def evaluate(
    weights: str | Path, data: str | Path, split: str = "val", imgsz: int | None = None, batch: int = 16,
    device: str | None = None, conf: float = MAP_CONF, iou: float = MAP_IOU, project: Path | None = None,
    name: str = "exp", exist_ok: bool = False, plots: bool = True, end2end: bool = False,
) -> EvalResult:
    """Ultralytics validation of any weights on any split; writes confusion matrix and PR curves.

    An .onnx is evaluated as it was exported (Ultralytics reads `end2end` from its metadata);
    `end2end` makes a YOLO26 .pt use its NMS-free head too, the one an end-to-end export runs. `imgsz` None: the
    model's own (check_exported_model)."""
    config = checked_split(data, split)
    weights = resolve_model(weights)
    imgsz = check_exported_model(weights, config.names, imgsz)
    yolo = load_yolo(weights, task="detect")
    if Path(weights).suffix == ".pt":  # check_exported_model covers the other forms
        refuse_other_classes(tuple(yolo.names[i] for i in sorted(yolo.names)), config.names, weights)
    project = Path(project or PROJECT_ROOT / "runs" / "val")
    run_dir = next_run_dir(project, name, exist_ok)
    data_yaml = write_resolved_data_yaml(data, run_dir, stand_in=config.images_dir(split))
    args = dict(data=str(data_yaml), split=split, imgsz=imgsz, batch=batch, conf=conf, iou=iou, plots=plots,
                project=str(run_dir.parent.resolve()), name=run_dir.name, exist_ok=True, verbose=False)
    if end2end:
        if Path(weights).suffix != ".pt":
            raise UserError("--end2end is for a .pt; an .onnx is evaluated as it was exported (export.py --end2end)",
                            weights)
        if not has_nms_free_head(yolo):
            raise UserError("--end2end needs a model with an NMS-free head (YOLO26)", weights)
        args["nms"] = False
    if device:
        args["device"] = device
    seen: list[int] = []  # the photos the validator used: it drops one whose image or label line it cannot use
    used_files: list[list[str]] = []

    def note_what_was_used(validator) -> None:
        seen.append(int(validator.seen))
        files = getattr(getattr(getattr(validator, "dataloader", None), "dataset", None), "im_files", None)
        if files is not None:
            used_files.append(list(files))

    yolo.add_callback("on_val_end", note_what_was_used)
    try:
        with no_label_cache():
            metrics = yolo.val(**args)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # Ultralytics' own checks (dataset, model, device) raise many types
        raise UserError(f"validation stopped: {type(exc).__name__}: {one_line(exc, 300)}", weights) from None
    photos = list_images(config.images_dir(split))
    listed = len(photos)
    used = seen[-1] if seen else listed
    table = metrics_table(metrics, config.names, images=used)
    atomic_write_text(run_dir / "metrics.csv", safe_table(table).to_csv())  # class names come from data.yaml
    dropped = tuple(photos_left_out(photos, used_files[-1])) if used_files else ()
    return EvalResult(Path(metrics.save_dir), table, dict(metrics.speed), left_out=max(0, listed - used, len(dropped)),
                      left_out_photos=dropped, imgsz=imgsz)


def checked_split(data: str | Path, split: str):
    """The dataset config, once the split is known to exist and hold photos."""
    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    config = load_dataset_config(data)
    if split not in config.split_images:
        raise UserError(f"data.yaml names no '{split}' split", config.yaml_path)
    if not config.images_dir(split).is_dir() or not list_images(config.images_dir(split)):
        raise UserError(f"the {split} split has no images (build it with labeling/split.py)", config.images_dir(split))
    return config


def load_as_validator(weights: str | Path, config, imgsz: int | None = INFERENCE_IMGSZ, device: str | None = None,
                      conf: float = MAP_CONF, iou: float = MAP_IOU):
    """detect.py's detector set up as Ultralytics' validator runs a model: every class a box scores over conf, at
    most 300 boxes (imgsz None: the model's own size). An exported model only (.onnx, OpenVINO folder):
    Ultralytics' predictor, which runs a .pt, keeps one class per box."""
    from maskdet.inference.detectors import DetectSettings, load_detector

    detector = load_detector(resolve_model(weights), DetectSettings(conf=conf, iou=iou, max_det=VALIDATOR_MAX_DET,
                                                                    multi_label=True), imgsz, device)
    refuse_other_classes(detector.names, config.names, weights)
    return detector


def predict_as_validator(detector, config, split: str, augment: bool = False, label: str = ""):
    """Every photo of the split through a detector from load_as_validator (and its mirror view with `augment`), the
    photos loaded as the validator loads them. Returns (SplitPredictions, milliseconds spent per stage in all)."""
    import sys

    from tqdm import tqdm

    from maskdet.evaluation.pipeline_map import predict_split
    from maskdet.inference.augment import FlipAugmentedDetector
    from maskdet.inference.detections import add_timings

    run = FlipAugmentedDetector(detector, detector.settings.conf, VALIDATOR_MAX_DET) if augment else detector
    spent: dict[str, float] = {}

    def timed(image):
        det = run(image)
        add_timings(spent, det.timings_ms)
        return det

    photos = len(list_images(config.images_dir(split)))
    label = f"{label or 'model'} on {split}{' --augment' if augment else ''}"
    with tqdm(total=photos, desc=label, unit="photo", disable=not sys.stderr.isatty(), leave=False) as bar:
        predictions = predict_split(str(config.yaml_path), split, timed, bar.update, keep_images=False,
                                    validator_imgsz=detector.imgsz)
    return predictions, spent


def evaluate_augmented(
    weights: str | Path, data: str | Path, split: str = "val", imgsz: int | None = None, device: str | None = None,
    conf: float = MAP_CONF, iou: float = MAP_IOU, project: Path | None = None, name: str = "exp", exist_ok: bool = False,
) -> EvalResult:
    """val.py --augment: the detector as `detect.py --augment` runs it (each photo and its mirror image, the boxes
    fused; maskdet.inference.augment), scored the way Ultralytics' validator scores a model (its matching and AP:
    maskdet.evaluation.pipeline_map), every class a box scores over conf kept as the validator keeps it. An
    exported model only (see load_as_validator). Writes metrics.csv; Ultralytics' plots are not made."""
    from maskdet.evaluation.pipeline_map import score

    config = checked_split(data, split)
    detector = load_as_validator(weights, config, imgsz, device, conf, iou)
    predictions, spent = predict_as_validator(detector, config, split, augment=True, label=Path(weights).name)
    photos = len(predictions.detections)
    table = step_table(score(predictions, detector.names), photos)
    run_dir = next_run_dir(Path(project or PROJECT_ROOT / "runs" / "val"), name, exist_ok)
    atomic_write_text(run_dir / "metrics.csv", safe_table(table).to_csv())
    return EvalResult(run_dir, table, {stage: ms / photos for stage, ms in spent.items()}, imgsz=detector.imgsz)


@contextmanager
def no_label_cache() -> Iterator[None]:
    """Keep Ultralytics from writing labels.cache into the dataset folder (beside each labels/ folder): evaluating
    must not add files to someone's data. Without the cache the labels are scanned afresh, a second for thousands."""
    import ultralytics.data.dataset as dataset

    def version_only(prefix: str, path: Path, x: dict, version: str) -> None:
        x["version"] = version  # what the real one adds to the labels before it writes them; nothing is written

    saved = dataset.save_dataset_cache_file
    dataset.save_dataset_cache_file = version_only
    try:
        yield
    finally:
        dataset.save_dataset_cache_file = saved
