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
# Where `python train.py` starts: the shipped model, which already knows faces and masks, so a user's
# own photos fine-tune it instead of training from nothing (issue 16).
SHIPPED_MODEL = PROJECT_ROOT / "models" / "best.pt"
# COCO-pretrained checkpoints kept beside the project on machines that cannot download (../shared/weights).
LOCAL_WEIGHTS = PROJECT_ROOT.parent / "shared" / "weights"


def ultralytics_online() -> bool:
    from ultralytics.utils import ONLINE

    return bool(ONLINE) and not os.environ.get("YOLO_OFFLINE")


TRAIN_OFFLINE_HINT = "Start from scratch with --model {stem}.yaml, or give the path of a local .pt (the project ships models/best.pt)"


def local_checkpoint(stem: str, weights_dir: Path = LOCAL_WEIGHTS) -> Path | None:
    """The local copy of a hub checkpoint (yolo11n.pt -> <weights_dir>/yolo11n-coco.pt), if there is one."""
    candidate = weights_dir / f"{stem}-coco.pt"
    return candidate if candidate.is_file() else None


def offline_train_hint(stem: str, weights_dir: Path = LOCAL_WEIGHTS) -> str:
    """What to do instead of downloading `stem`.pt: build from scratch, or a local .pt, naming the local COCO copy."""
    hint = TRAIN_OFFLINE_HINT.format(stem=stem)
    local = local_checkpoint(stem, weights_dir)
    if local is not None:
        hint += f"; the same COCO start is on this machine: --model {os.path.relpath(local)}"
    return hint


def resolve_model(model: str | Path, offline_hint: str | None = None) -> str:
    """A local file, an architecture name (*.yaml, built from scratch), or a hub checkpoint name.

    A hub checkpoint (yolo11n.pt) needs a download: online Ultralytics fetches it as usual;
    offline we stop at once with what to do instead of a failed download (`offline_hint`, with
    {stem} for the model's name; by default the training alternatives, local COCO copy included).
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
        hint = offline_train_hint(path.stem) if offline_hint is None else offline_hint.format(stem=path.stem)
        raise UserError(f"'{model}' is not on this machine and it is offline, so it cannot be downloaded. " + hint)
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


def finetune_settings(epochs: int, overrides: dict[str, object]) -> dict[str, object]:
    """Settings for a start from a checkpoint, those the user did not set themselves.

    Ultralytics' defaults suit a start from scratch: optimizer=auto picks its rate from the run's
    length (MuSGD at 0.01 past 10,000 iterations, which shakes pretrained features loose), 3 warm-up
    epochs, mosaic until the last 10 epochs (most of a short fine-tune). A low fixed rate with AdamW,
    a short warm-up and mosaic closed for the last sixth of the run (10 epochs at most) is the usual
    fine-tuning recipe, and the same whatever the run's length."""
    chosen = {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 1, "close_mosaic": min(10, max(1, epochs // 6))}
    return {key: value for key, value in chosen.items() if key not in overrides}


def describe_start(source: str, chosen: dict[str, object], overrides: dict[str, object]) -> str:
    """One line: where training starts and the fine-tuning settings chosen (or the user's own)."""
    parts = [" ".join(f"{k}={v}" for k, v in chosen.items())] if chosen else []
    kept = {k: overrides[k] for k in ("optimizer", "lr0", "warmup_epochs", "close_mosaic") if k in overrides}
    if kept:
        parts.append("(yours kept: " + " ".join(f"{k}={v}" for k, v in kept.items()) + ")")
    if chosen:
        parts.append("-- change any of them as key=value")
    return f"fine-tuning {display_name(source)}: " + " ".join(parts)


def class_change_note(source: str, checkpoint_names: list[str], data_names: tuple[str, ...]) -> str | None:
    """One line when the checkpoint's classes differ from data.yaml's: what Ultralytics will transfer.

    Ultralytics copies every tensor whose name and shape match (intersect_dicts): with another class
    count only the class outputs differ in shape and start afresh; with the same count they are
    copied too, so checkpoint class i becomes data.yaml class i whatever its name."""
    if tuple(checkpoint_names) == tuple(data_names):
        return None

    def show(names) -> str:
        return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")

    mine = f"{display_name(source)} knows {len(checkpoint_names)} classes ({show(checkpoint_names)})"
    theirs = f"data.yaml has {len(data_names)} ({show(data_names)})"
    if len(checkpoint_names) != len(data_names):
        return f"note: {mine}, {theirs}: every layer but the class outputs is transferred; those start afresh"
    pairs = ", ".join(f"{a}->{b}" for a, b in zip(checkpoint_names, data_names) if a != b)
    return f"note: {mine}, {theirs}: every layer is transferred and the class outputs are reused in order ({pairs})"


def display_name(source: str) -> str:
    """A path as the user would type it: relative to here when that is shorter."""
    if not Path(source).is_absolute():
        return source
    relative = os.path.relpath(source)
    return relative if len(relative) < len(source) else source


@dataclass
class TrainResult:
    save_dir: Path
    best: Path
    last: Path
    table: pd.DataFrame


def train(
    data: str | Path, model: str | None, epochs: int, imgsz: int, batch: int | float, device: str | None,
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
        source = resolve_model(model or SHIPPED_MODEL)
        data_names = load_dataset_config(data).names
        overrides = overrides or {}
        run_dir = next_run_dir(project, name, exist_ok)
        data_yaml = write_resolved_data_yaml(data, run_dir, oversample)
        args = dict(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                    patience=patience, cache=cache, seed=seed, project=str(project), name=run_dir.name,
                    exist_ok=True, cls_pw=cls_pw, **device_arg)
        if Path(source).suffix == ".pt":  # a checkpoint: fine-tune it (an architecture .yaml trains from scratch)
            chosen = finetune_settings(epochs, overrides)
            args.update(chosen)
            print(describe_start(source, chosen, overrides))
        else:
            print(f"training {source} from scratch")
        args.update(overrides)
    yolo = YOLO(source)
    if not resume and Path(source).suffix == ".pt":
        note = class_change_note(source, [yolo.names[i] for i in sorted(yolo.names)], data_names)
        if note:
            print(note)
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
    name: str = "exp", exist_ok: bool = False, plots: bool = True, end2end: bool = False,
) -> EvalResult:
    """Ultralytics validation of any weights on any split; writes confusion matrix and PR curves.

    An .onnx is evaluated as it was exported (Ultralytics reads `end2end` from its metadata);
    `end2end` makes a YOLO26 .pt use its NMS-free head too, the one an end-to-end export runs."""
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
    if end2end:
        if Path(weights).suffix != ".pt":
            raise UserError("--end2end is for a .pt; an .onnx is evaluated as it was exported (export.py --end2end)",
                            weights)
        if not has_nms_free_head(yolo):
            raise UserError("--end2end needs a model with an NMS-free head (YOLO26)", weights)
        args["nms"] = False
    if device:
        args["device"] = device
    metrics = yolo.val(**args)
    table = metrics_table(metrics, config.names, images=len(list_images(config.images_dir(split))))
    atomic_write_text(run_dir / "metrics.csv", table.to_csv())
    return EvalResult(Path(metrics.save_dir), table, dict(metrics.speed))


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
    if end2end:
        args["nms"] = False  # Ultralytics: False = the NMS-free head; None (default) = raw output, NMS outside
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        shutil.copy2(path, staged)
        yolo = YOLO(str(staged))
        if end2end and not has_nms_free_head(yolo):
            raise UserError("--end2end needs a model with an NMS-free head (YOLO26); this one has only the classic "
                            "head: export it without --end2end", path)
        exported = Path(yolo.export(**args))
        os.replace(exported, target)
    return target
