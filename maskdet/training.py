"""Training, evaluation and export, on Ultralytics' engine.

Ultralytics does the real work (training loop, augmentation, NMS, mAP, ONNX export). What this
module adds: paths that work from any folder, a clear offline message instead of a download
failure, run folders that resume, and one metrics table people can read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from maskdet.config import INFERENCE_IMGSZ, PROJECT_ROOT, SPLITS, load_dataset_config
from maskdet.errors import UserError
from maskdet.fileio import atomic_write_text, list_images, next_run_dir
from maskdet.oversample import write_oversampled_list

MAP_CONF, MAP_IOU = 0.001, 0.7  # the usual mAP settings: a low threshold, as mAP integrates over all confidences
DEFAULT_MODEL_YAML = "yolo11n.yaml"  # nano, from scratch: builds offline


def ultralytics_online() -> bool:
    from ultralytics.utils import ONLINE

    return bool(ONLINE) and not os.environ.get("YOLO_OFFLINE")


TRAIN_OFFLINE_HINT = "Start from scratch with --model {stem}.yaml, or give the path of a local .pt (the project ships models/best.pt)"


def resolve_model(model: str | Path, offline_hint: str = TRAIN_OFFLINE_HINT) -> str:
    """A local file, an architecture name (*.yaml, built from scratch), or a hub checkpoint name.

    A hub checkpoint (yolo11n.pt) needs a download: online Ultralytics fetches it as usual;
    offline we stop at once with what to do instead of a failed download.
    """
    model = str(model)
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    if path.suffix in {".yaml", ".yml"}:
        return model  # Ultralytics builds known architectures (yolo11n.yaml) from its own configs
    if path.suffix not in {".pt", ".onnx"}:
        raise UserError(f"unknown model '{model}': give a .pt/.onnx file or an architecture .yaml such as yolo11n.yaml")
    if len(path.parts) > 1:
        raise UserError("no such file", model)
    if not ultralytics_online():
        raise UserError(f"'{model}' is not on this machine and it is offline, so it cannot be downloaded. "
                        + offline_hint.format(stem=path.stem))
    return model


def write_resolved_data_yaml(data: str | Path, run_dir: Path, oversample: float = 0.0) -> Path:
    """Copy data.yaml into the run folder with absolute paths.

    Ultralytics resolves a relative `path:` against the working directory, not the yaml; a copy
    with absolute paths makes training work from any folder and lets --resume find the data again.
    With `oversample` > 0 the train split becomes a list in the run folder that repeats the images
    holding rare classes (maskdet.oversample); the dataset itself is not touched.
    """
    if oversample < 0:
        raise UserError(f"--oversample must be 0 (off) or a positive threshold, got {oversample}")
    config = load_dataset_config(data)
    resolved = {"path": str(config.root), "names": dict(enumerate(config.names))}
    for split, folder in config.split_images.items():
        resolved[split] = str(folder)
    if oversample > 0:
        if "train" not in config.split_images or not config.images_dir("train").is_dir():
            raise UserError("data.yaml has no train folder to oversample", config.yaml_path)
        train_list = run_dir / "train_oversampled.txt"
        summary = write_oversampled_list(config.images_dir("train"), oversample, train_list)
        print(summary.describe(config.names))
        resolved["train"] = str(train_list)
    target = run_dir / "data.yaml"
    atomic_write_text(target, f"# resolved copy of {config.yaml_path}\n" + yaml.safe_dump(resolved, sort_keys=False))
    return target


def find_last_checkpoint(project: Path) -> Path:
    """The most recent runs/train/*/weights/last.pt, as YOLOv5's --resume without a path."""
    candidates = sorted(project.glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise UserError(f"no run to resume: no */weights/last.pt under {project}")
    return candidates[-1]


def trim_results_to_checkpoint(checkpoint: Path) -> None:
    """Drop results.csv rows of epochs the checkpoint does not hold.

    Ultralytics logs an epoch's row before it saves last.pt, so a Ctrl-C between the two leaves a
    row for an epoch that --resume will train again: without this the log lists it twice.
    """
    import torch

    results = checkpoint.parent.parent / "results.csv"
    if not results.exists():
        return
    completed = int(torch.load(checkpoint, map_location="cpu", weights_only=False).get("epoch", -1)) + 1
    table = pd.read_csv(results)
    kept = table[table["epoch"] <= completed]
    if len(kept) < len(table):
        atomic_write_text(results, kept.to_csv(index=False))


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """`key=value` pass-through arguments, typed as Ultralytics' own CLI types them (YAML scalars)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"extra arguments must be key=value (Ultralytics train settings), got {pair!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value else None
    return out


def use_every_core_on_cpu(trainer) -> None:
    """Ultralytics callback: train on every CPU core.

    Ultralytics caps PyTorch at os.cpu_count() - 1 threads (`NUM_THREADS`) to leave a core for its
    dataloader workers, but on a CPU it trains with no workers (the loading runs in the main
    process), so on a 2-core laptop it computes on one core and leaves the other idle.
    """
    import torch

    if trainer.device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
        print(f"training on {torch.get_num_threads()} CPU threads")


@dataclass
class TrainResult:
    save_dir: Path
    best: Path
    last: Path
    table: pd.DataFrame


def train(
    data: str | Path, model: str, epochs: int, imgsz: int, batch: int | float, device: str | None,
    workers: int, patience: int, cache: str | bool, seed: int, project: Path, name: str, exist_ok: bool,
    cls_pw: float, resume: str | bool | None = None, overrides: dict[str, object] | None = None,
    oversample: float = 0.0,
) -> TrainResult:
    from ultralytics import YOLO

    device_arg = {"device": device} if device else {}  # else Ultralytics picks: the GPU if there is one
    if resume:
        checkpoint = find_last_checkpoint(project) if resume is True else Path(resume)
        if not checkpoint.exists():
            raise UserError("checkpoint to resume not found", checkpoint)
        print(f"resuming {checkpoint}")
        trim_results_to_checkpoint(checkpoint)
        source, args = str(checkpoint), {"resume": True, **device_arg}
    else:
        source = resolve_model(model)
        run_dir = next_run_dir(project, name, exist_ok)
        data_yaml = write_resolved_data_yaml(data, run_dir, oversample)
        args = dict(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                    patience=patience, cache=cache, seed=seed, project=str(project), name=run_dir.name,
                    exist_ok=True, cls_pw=cls_pw, **device_arg)
        args.update(overrides or {})
    yolo = YOLO(source)
    yolo.add_callback("on_pretrain_routine_start", use_every_core_on_cpu)
    yolo.train(**args)
    trainer = yolo.trainer
    metrics = getattr(trainer.validator, "metrics", None) if trainer.validator else None
    val_images = len(list_images(trainer.data["val"])) if Path(trainer.data["val"]).is_dir() else None
    table = metrics_table(metrics, trainer.data["names"], val_images) if metrics is not None else pd.DataFrame()
    return TrainResult(Path(trainer.save_dir), Path(trainer.best), Path(trainer.last), table)


def metrics_table(metrics, names: dict[int, str] | list[str], images: int | None = None) -> pd.DataFrame:
    """Precision, recall, mAP50, mAP50-95 overall and per class (classes absent from the split included)."""
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    box = metrics.box
    nt_class = getattr(metrics, "nt_per_class", None)
    nt_image = getattr(metrics, "nt_per_image", None)
    rows = [{"class": "all", "images": images, "instances": int(nt_class.sum()) if nt_class is not None else None,
             "P": box.mp, "R": box.mr, "mAP50": box.map50, "mAP50-95": box.map}]
    evaluated = {int(c): i for i, c in enumerate(box.ap_class_index)}
    for cls, name in names.items():
        row = {"class": name,
               "images": int(nt_image[cls]) if nt_image is not None else None,
               "instances": int(nt_class[cls]) if nt_class is not None else None}
        if cls in evaluated:
            p, r, ap50, ap = box.class_result(evaluated[cls])
            row.update({"P": p, "R": r, "mAP50": ap50, "mAP50-95": ap})
        else:
            row.update({"P": float("nan"), "R": float("nan"), "mAP50": float("nan"), "mAP50-95": float("nan")})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("class")
    return table.astype({"instances": "Int64", "images": "Int64"})


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")


@dataclass
class EvalResult:
    save_dir: Path
    table: pd.DataFrame
    speed_ms: dict[str, float]


def evaluate(
    weights: str | Path, data: str | Path, split: str = "val", imgsz: int = INFERENCE_IMGSZ, batch: int = 16,
    device: str | None = None, conf: float = MAP_CONF, iou: float = MAP_IOU, project: Path | None = None,
    name: str = "exp", exist_ok: bool = False, plots: bool = True,
) -> EvalResult:
    """Ultralytics validation of any weights on any split; writes confusion matrix and PR curves."""
    from ultralytics import YOLO

    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    config = load_dataset_config(data)
    if split not in config.split_images:
        raise UserError(f"data.yaml names no '{split}' split", config.yaml_path)
    if not config.images_dir(split).is_dir() or not list_images(config.images_dir(split)):
        raise UserError(f"the {split} split has no images (build it with labeling/split.py)", config.images_dir(split))
    weights = resolve_model(weights)
    project = Path(project or PROJECT_ROOT / "runs" / "val")
    run_dir = next_run_dir(project, name, exist_ok)
    data_yaml = write_resolved_data_yaml(data, run_dir)
    yolo = YOLO(weights, task="detect")
    args = dict(data=str(data_yaml), split=split, imgsz=imgsz, batch=batch, conf=conf, iou=iou, plots=plots,
                project=str(project), name=run_dir.name, exist_ok=True, verbose=False)
    if device:
        args["device"] = device
    metrics = yolo.val(**args)
    table = metrics_table(metrics, config.names, images=len(list_images(config.images_dir(split))))
    atomic_write_text(run_dir / "metrics.csv", table.to_csv())
    return EvalResult(Path(metrics.save_dir), table, dict(metrics.speed))


def export_onnx(weights: str | Path, imgsz: int, opset: int | None = None, dynamic: bool = False,
                simplify: bool = True, half: bool = False, force: bool = False) -> Path:
    """Export to ONNX for ONNX Runtime (detect.py --weights model.onnx), written beside the .pt.

    Ultralytics writes straight to the final name; exporting a copy in a scratch folder and moving
    the result into place means an interrupted export never leaves a half-written .onnx, and an
    existing one is replaced only when asked."""
    from ultralytics import YOLO

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
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        shutil.copy2(path, staged)
        exported = Path(YOLO(str(staged)).export(**args))
        os.replace(exported, target)
    return target
