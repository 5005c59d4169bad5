"""Training on Ultralytics' engine.

Ultralytics does the real work (training loop, augmentation, loss). What this module adds: where a run
starts (the shipped model by default, COCO or from scratch) and the settings a fine-tune needs, paths
that work from any folder, a clear offline message instead of a download failure, run folders that
resume, and every CPU core.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from maskdet.config import PROJECT_ROOT, TRAINING_SPLITS, DatasetConfig, load_dataset_config, safe_load_yaml
from maskdet.csvcells import safe_table
from maskdet.data.labels import Severity, read_label_file
from maskdet.errors import UserError, one_line
from maskdet.evaluation.metrics import metrics_table
from maskdet.fileio import TEXT_FILE_LIMIT, atomic_write_text, list_images, next_run_dir, read_bytes_bounded
from maskdet.training.augment import SETTINGS_FILE as CAMERA_AUG_FILE
from maskdet.training.augment import camera_trainer, check_probability, saved_probability
from maskdet.training.oversample import write_oversampled_list
from maskdet.training.stride4 import add_stride4_output, write_stride4_checkpoint

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


OFFLINE_HINT = "Give the path of a local model file instead (the project ships models/best.pt)"


def hub_checkpoint(name: str) -> bool:
    """Whether `name` is a checkpoint Ultralytics downloads by name (yolo11n.pt), not a file that is missing."""
    try:
        from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES
    except ImportError:  # the light install: no Ultralytics, so nothing to download either
        return False
    return name in GITHUB_ASSETS_NAMES


def resolve_model(model: str | Path, offline_hint: str | Callable[[str], str] | None = None) -> str:
    """A local file, an architecture name (*.yaml, built from scratch), or a hub checkpoint name.

    A hub checkpoint (yolo11n.pt) needs a download: online Ultralytics fetches it as usual;
    offline we stop at once with what to do instead of a failed download (`offline_hint`: text with
    {stem} for the model's name, or a function of the stem; by default: give a local file; train.py
    passes offline_train_hint, its --model alternatives). Any other missing .pt or .onnx, a path or
    a bare name alike, is just "no such file": there is nothing to download.
    """
    model = str(model)
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    if path.suffix in {".yaml", ".yml"}:
        return model  # Ultralytics builds known architectures (yolo11n.yaml) from its own configs
    if path.suffix not in {".pt", ".onnx"}:
        raise UserError(f"unknown model '{model}': give a .pt/.onnx file or an architecture .yaml such as yolo11n.yaml")
    if len(path.parts) > 1 or not hub_checkpoint(path.name):
        raise UserError("no such file", model)
    if not ultralytics_online():
        hint = offline_hint or OFFLINE_HINT
        hint = hint(path.stem) if callable(hint) else hint.format(stem=path.stem)
        raise UserError(f"'{model}' is not on this machine and it is offline, so it cannot be downloaded. " + hint)
    return model


def check_trainable(source: str) -> None:
    """train.py starts from a checkpoint (.pt) or an architecture (.yaml with a backbone and a head), refused here
    before a run folder is made: anything else started a run, then failed deep in Ultralytics ('should be a *.pt
    PyTorch model', or a data.yaml's KeyError: 'backbone')."""
    path = Path(source)
    if path.suffix not in {".pt", ".yaml", ".yml"}:
        what = "a folder" if path.is_dir() else f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise UserError(f"train.py starts from a .pt checkpoint or an architecture .yaml such as yolo11n.yaml, not "
                        f"{what} (an .onnx or an OpenVINO export is for detect.py and val.py)", source)
    if path.suffix == ".pt" or not path.is_file():
        return  # a checkpoint, or an architecture Ultralytics knows by name (yolo11n.yaml)
    try:
        spec = safe_load_yaml(read_bytes_bounded(path, TEXT_FILE_LIMIT).decode("utf-8"))
    except Exception:  # noqa: BLE001 (unreadable or not YAML: Ultralytics would say no better)
        spec = None
    if not (isinstance(spec, dict) and "backbone" in spec and "head" in spec):
        hint = " (a dataset description goes to --data)" if isinstance(spec, dict) and "names" in spec else ""
        raise UserError(f"not a model architecture: an architecture .yaml has 'backbone:' and 'head:'{hint}", source)


def refuse_other_classes(model_names: tuple[str, ...], names: tuple[str, ...], weights: str | Path,
                         fix: str = "; give the data.yaml it was trained on") -> None:
    """A model whose classes are not data.yaml's, in its order, would be scored against the wrong labels (with two
    names swapped, each class's row of val.py's table would hold the other's figures) or calibrated on them."""
    if tuple(model_names) != tuple(names):
        raise UserError(f"the model's classes {list(model_names)} differ from data.yaml's {list(names)}{fix}", weights)


def load_yolo(weights: str | Path, task: str | None = None):
    """An Ultralytics YOLO for a detection model, or a one-line UserError: a missing, empty or damaged
    checkpoint (torch.load's own exceptions), or a model of another task (classify, segment, pose, obb),
    which Ultralytics would load and then fail on deep inside training, validation or export."""
    from ultralytics import YOLO

    path = Path(weights)
    if path.suffix in {".pt", ".onnx"} and path.is_file() and path.stat().st_size == 0:
        raise UserError("empty file (0 bytes): not a model", path)
    try:
        yolo = YOLO(str(weights), task=task) if path.suffix != ".pt" else YOLO(str(weights))
    except Exception as exc:  # torch.load, pickle, zipfile and Ultralytics all raise their own types
        raise UserError(f"cannot load this model ({type(exc).__name__}: {one_line(exc, 200)})", weights) from None
    if yolo.task != "detect":
        raise UserError(f"this is a {yolo.task} model, not a detector: give a detection model (task 'detect')", weights)
    return yolo


# Key=value settings whose negative values Ultralytics takes and trains with (close_mosaic=-1, warmup_epochs=-1,
# time=-1 exit 0): counts, durations, rates and loss gains.
NON_NEGATIVE_SETTINGS = frozenset({"close_mosaic", "warmup_epochs", "time", "lr0", "warmup_bias_lr", "box", "cls", "dfl",
                                   "nbs", "degrees", "shear", "perspective", "max_det"})


def check_training_settings(overrides: dict[str, object]) -> None:
    """Refuse unknown or badly typed key=value settings in one line, before a run folder is made.

    Ultralytics checks them too, but only once training starts, and with a traceback."""
    from difflib import get_close_matches

    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg

    for key in overrides:
        if key not in DEFAULT_CFG_DICT:
            close = get_close_matches(key, list(DEFAULT_CFG_DICT), n=1)
            raise UserError(f"unknown training setting '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                            + ": see the Ultralytics train settings, https://docs.ultralytics.com/modes/train/")
    try:
        check_cfg(dict(overrides))
    except (TypeError, ValueError) as exc:
        raise UserError(one_line(exc, 300)) from None
    for key in NON_NEGATIVE_SETTINGS & set(overrides):  # Ultralytics checks their type only: -1 trained without a word
        value = overrides[key]
        if isinstance(value, (int, float)) and (value < 0 or (key == "time" and value == 0)):
            raise UserError(f"training setting {key}={value} must be {'over 0 (hours)' if key == 'time' else 'at least 0'}")


@dataclass
class DataCheck:
    """What training will see of a split: its images, and those Ultralytics leaves out for a bad label line."""

    images: int
    labelled: int  # images with at least one usable box
    dropped: list[str]  # 'path:line: problem' for each image Ultralytics leaves out

    def warning(self, split: str) -> str | None:
        if not self.dropped:
            return None
        return (f"warning: {len(self.dropped)} of {self.images} {split} images have a label line Ultralytics cannot "
                f"read, and it leaves those images out (e.g. {self.dropped[0]}); python labeling/check.py lists them all")


def check_training_data(config: DatasetConfig, splits: tuple[str, ...] = ("train", "val")) -> dict[str, DataCheck]:
    """Check before training that each split exists, holds images and some valid labels; count the images whose
    labels have an unusable line, which Ultralytics silently drops from training (a quarter of the images, once)."""
    hint = "build the splits with python labeling/split.py (README, 'The workflow': 3. Split)"
    found = {}
    for split in splits:
        if split not in config.split_images:
            raise UserError(f"names no '{split}' split", config.yaml_path)
        folder = config.images_dir(split)
        if folder.is_file():  # a list of image paths, as Ultralytics also takes: left to it
            continue
        if not folder.is_dir():
            raise UserError(f"the {split} folder {folder} does not exist: {hint}", config.yaml_path)
        images = list_images(folder)
        if not images:
            raise UserError(f"the {split} folder {folder} holds no images: {hint}", config.yaml_path)
        labels = config.labels_dir(split)
        labelled, dropped = 0, []
        for image in images:
            label_path = labels / f"{image.stem}.txt"
            if not label_path.exists():
                continue
            parsed = read_label_file(label_path, num_classes=len(config.names))
            errors = [issue for issue in parsed.issues if issue.severity is Severity.ERROR]
            if errors:
                where = f"{label_path}:{errors[0].line}" if errors[0].line else str(label_path)
                dropped.append(f"{where}: {errors[0].message}")
            elif parsed.boxes:
                labelled += 1
        if split == "train" and labelled == 0:
            why = f" ({len(dropped)} label files have errors, e.g. {dropped[0]})" if dropped else ""
            raise UserError(f"no image of the train split has a valid label in {labels}{why}: nothing to learn from; "
                            "check the labels with python labeling/check.py", config.yaml_path)
        found[split] = DataCheck(len(images), labelled, dropped)
    return found


def photos_left_out(photos: list[Path], used: list[str]) -> list[Path]:
    """The photos Ultralytics' dataset did not keep (`used`: its im_files): it drops, with a warning only in its
    log, a photo whose image it cannot use (a GIF named .jpg, an empty file) or whose label has a line it cannot
    read. Compared resolved, as a split made with --link holds links."""
    kept = {Path(p).resolve() for p in used}
    return [photo for photo in photos if photo.resolve() not in kept]


def listed_photos(source: Path) -> list[Path]:
    """The photos a split names: its folder's images, or the distinct lines of a list (--oversample's)."""
    if source.is_dir():
        return list_images(source)
    lines = source.read_text(encoding="utf-8").splitlines() if source.is_file() else []
    return [Path(line) for line in dict.fromkeys(line.strip() for line in lines) if line]


def left_out_by_ultralytics(trainer) -> list[str] | None:
    """One warning per split whose photos Ultralytics' datasets left out, read from its datasets' im_files after
    training (no second scan); None when the trainer does not tell (the checks before training then stand)."""
    warnings = []
    for split, loader in (("train", getattr(trainer, "train_loader", None)), ("val", getattr(trainer, "test_loader", None))):
        used = getattr(getattr(loader, "dataset", None), "im_files", None)
        source = (getattr(trainer, "data", None) or {}).get(split)
        if used is None or not source:
            return None
        listed = listed_photos(Path(source))
        dropped = photos_left_out(listed, used)
        if dropped:
            warnings.append(f"warning: Ultralytics left out {len(dropped)} of {len(listed)} {split} photos (e.g. {dropped[0]}): "
                            "it could not use the image or a line of the label; python labeling/check.py names each "
                            "and why")
    return warnings


def write_resolved_data_yaml(data: str | Path, run_dir: Path, oversample: float = 0.0,
                             stand_in: Path | None = None) -> Path:
    """Copy data.yaml into the run folder with absolute paths.

    Ultralytics resolves a relative `path:` against the working directory, not the yaml; a copy
    with absolute paths makes training work from any folder and lets --resume find the data again.
    With `oversample` > 0 the train split becomes a list in the run folder that repeats the images
    holding rare classes (maskdet.training.oversample); the dataset itself is not touched. `stand_in`: the folder
    given for a train or val split data.yaml does not name (Ultralytics' dataset check demands both, even to
    evaluate on test, and names its own copy in the error): evaluation reads only the split it scores.
    """
    if oversample < 0:
        raise UserError(f"--oversample must be 0 (off) or a positive threshold, got {oversample}")
    config = load_dataset_config(data)
    resolved = {"path": str(config.root), "names": dict(enumerate(config.names))}
    for split, folder in config.split_images.items():
        resolved[split] = str(folder)
    if stand_in is not None:
        for split in TRAINING_SPLITS:
            resolved.setdefault(split, str(stand_in))
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
    """The most recent runs/train/*/weights/last.pt, as YOLOv5's --resume without a path; refused when the latest
    run started after it and has none (stopped in its first epoch): resuming an older run instead, the one a user
    did not mean, said 'nothing to resume: this run finished'."""
    candidates = sorted(project.glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    started = sorted(project.glob("*/args.yaml"), key=lambda p: p.stat().st_mtime)  # Ultralytics writes it first
    if started and not (started[-1].parent / "weights" / "last.pt").exists() and (
            not candidates or started[-1].stat().st_mtime > candidates[-1].stat().st_mtime):
        older = f", or resume an older run by its path: --resume {candidates[-1]}" if candidates else ""
        raise UserError(f"the latest run, {started[-1].parent}, stopped before its first epoch ended: it has no "
                        f"weights/last.pt to resume. Start it again (a new run){older}")
    if not candidates:
        raise UserError(f"no run to resume: no */weights/last.pt under {project}")
    return candidates[-1]


def check_resumable(checkpoint: Path) -> None:
    """Refuse a checkpoint with no training state left to continue, in one line.

    Ultralytics strips the optimizer from last.pt when a run ends (and an averaged or exported checkpoint never
    had one); given such a file, its --resume warns and starts a NEW training on its default dataset (COCO8,
    downloaded)."""
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zipfile and torch raise their own types for a file that is no checkpoint
        raise UserError(f"cannot resume from this file ({type(exc).__name__}: {one_line(exc, 200)}): --resume takes "
                        "a run's weights/last.pt", checkpoint) from None
    if not isinstance(state, dict) or state.get("optimizer") is None or int(state.get("epoch", -1)) < 0:
        raise UserError(f"nothing to resume: this run finished (its weights keep no training state); to train it "
                        f"further, start a new run from it: python train.py --model {checkpoint} --epochs N", checkpoint)


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
        atomic_write_text(results, safe_table(kept).to_csv(index=False))


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """`key=value` pass-through arguments, typed as Ultralytics' own CLI types them (YAML scalars)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"extra arguments must be key=value (Ultralytics train settings), got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = safe_load_yaml(value) if value else None
        except yaml.YAMLError:
            raise UserError(f"cannot read the value of {pair!r}: quote it, or write it as a plain number or word") from None
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


def start_with_stride4(source: str, yolo, extended, run_dir: Path, imgsz: int):
    """The start checkpoint with its stride-4 output added (`extended`), kept in the run folder to train from."""
    from ultralytics.utils.torch_utils import get_flops

    before = get_flops(yolo.model, imgsz)
    start = str(write_stride4_checkpoint(source, run_dir / "start_p2.pt", extended))
    yolo = load_yolo(start)
    print(f"added a stride-4 (P2) output to {display_name(source)}, every weight kept: {before:.1f} -> "
          f"{get_flops(yolo.model, imgsz):.1f} GFLOPs a {imgsz}-px image; training starts from {display_name(start)}")
    return start, yolo


@dataclass
class TrainResult:
    save_dir: Path
    best: Path
    last: Path
    table: pd.DataFrame
    warnings: list[str] = field(default_factory=list)  # for the summary: photos Ultralytics left out of training
    data: Path | None = None  # the data.yaml it trained on (the run's own resolved copy where it made one)
    imgsz: int | None = None  # the size it trained and was validated at


def train(
    data: str | Path, model: str | None, epochs: int, imgsz: int, batch: int | float, device: str | None,
    workers: int, patience: int, cache: str | bool, seed: int, project: Path, name: str, exist_ok: bool,
    cls_pw: float, resume: str | bool | None = None, overrides: dict[str, object] | None = None,
    oversample: float = 0.0, camera_aug: float = 0.0, stride4: bool = False,
) -> TrainResult:
    device_arg = {"device": device} if device else {}  # else Ultralytics picks: the GPU if there is one
    warnings: list[str] = []
    if resume:
        checkpoint = find_last_checkpoint(project) if resume is True else Path(resume)
        if not checkpoint.exists():
            raise UserError("checkpoint to resume not found", checkpoint)
        if checkpoint.suffix != ".pt" or not checkpoint.is_file():
            raise UserError("not a checkpoint: --resume takes a run's weights/last.pt (or nothing, for the latest run)",
                            checkpoint)
        yolo = load_yolo(checkpoint)
        check_resumable(checkpoint)
        print(f"resuming {checkpoint}")
        trim_results_to_checkpoint(checkpoint)
        source, args = str(checkpoint), {"resume": True, **device_arg}
    else:
        source = resolve_model(model or SHIPPED_MODEL, offline_train_hint)  # its --model alternatives
        check_trainable(source)
        config = load_dataset_config(data)
        data_names = config.names
        overrides = overrides or {}
        check_training_settings(overrides)
        checks = check_training_data(config)
        warnings = [w for w in (checks[s].warning(s) for s in checks) if w]
        for line in warnings:
            print(line)
        if stride4 and Path(source).suffix != ".pt":
            raise UserError("--p2 adds an output to a trained checkpoint (.pt), not to an architecture to train from "
                            "scratch: start from a .pt (the shipped model by default)", source)
        yolo = load_yolo(source)
        extended = None
        if stride4:  # refused, if it must be, before the run folder
            try:
                extended = add_stride4_output(yolo.model)
            except UserError as exc:
                raise UserError(f"--p2: {exc}", source) from None
        run_dir = next_run_dir(project, name, exist_ok)
        if extended is not None:
            source, yolo = start_with_stride4(source, yolo, extended, run_dir, imgsz)
        data_yaml = write_resolved_data_yaml(data, run_dir, oversample)
        args = dict(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                    patience=patience, cache=cache, seed=seed, project=str(run_dir.parent.resolve()), name=run_dir.name,
                    exist_ok=True, cls_pw=cls_pw, **device_arg)
        if Path(source).suffix == ".pt":  # a checkpoint: fine-tune it (an architecture .yaml trains from scratch)
            chosen = finetune_settings(epochs, overrides)
            args.update(chosen)
            print(describe_start(source, chosen, overrides))
        else:
            print(f"training {source} from scratch")
        args.update(overrides)
        if camera_aug > 0:
            check_probability(camera_aug)
            atomic_write_text(run_dir / CAMERA_AUG_FILE, f"{camera_aug}\n")
    if resume and camera_aug <= 0:
        camera_aug = saved_probability(checkpoint.parent.parent)  # runs/train/<name>/weights/last.pt
    if camera_aug > 0:
        args["trainer"] = camera_trainer(camera_aug)
        print(f"camera augmentation: blur, lower resolution, exposure, colour cast and JPEG, each with p={camera_aug}")
    if not resume and Path(source).suffix == ".pt":
        note = class_change_note(source, [yolo.names[i] for i in sorted(yolo.names)], data_names)
        if note:
            print(note)
    yolo.add_callback("on_pretrain_routine_start", use_every_core_on_cpu)
    try:
        yolo.train(**args)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # Ultralytics' own checks (dataset, settings, device) raise many types
        raise UserError(f"training stopped: {type(exc).__name__}: {one_line(exc, 300)}") from None
    trainer = yolo.trainer
    metrics = getattr(trainer.validator, "metrics", None) if trainer.validator else None
    val_images = len(list_images(trainer.data["val"])) if Path(trainer.data["val"]).is_dir() else None
    table = metrics_table(metrics, trainer.data["names"], val_images) if metrics is not None else pd.DataFrame()
    dropped = left_out_by_ultralytics(trainer)  # what it really left out: images too, not only label lines
    return TrainResult(Path(trainer.save_dir), Path(trainer.best), Path(trainer.last), table,
                       warnings if dropped is None else dropped, data=Path(str(trainer.args.data)),
                       imgsz=int(trainer.args.imgsz))


