"""train.py, val.py and export.py train and evaluate for real on a tiny dataset the tests draw."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from synthetic import write_yolo_dataset

from maskdet.training.trainer import class_change_note, describe_start, finetune_settings, offline_train_hint

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--imgsz", "64", "--batch", "4", "--workers", "0"]


def run(script: str, *args: str, timeout: int = 600, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_yolo_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> tuple[Path, str]:
    project = tmp_path_factory.mktemp("runs")  # given relative to where train.py runs, as users type it
    proc = run("train.py", "--data", dataset, "--epochs", "2", *TINY, "--project", project.name, cwd=project.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return project / "exp", proc.stdout


def test_training_writes_weights_and_prints_the_metrics_table(trained):
    run_dir, out = trained
    assert (run_dir / "weights" / "best.pt").stat().st_size > 1_000_000
    assert (run_dir / "weights" / "last.pt").exists()
    assert len(pd.read_csv(run_dir / "results.csv")) == 2
    table = out[out.index("validation of best.pt"):]
    header = table.splitlines()[1].split()
    assert header == ["images", "instances", "P", "R", "mAP50", "mAP50-95"]
    for row in ("all", "with_mask", "without_mask", "mask_weared_incorrect"):
        assert f"\n{row} " in table
    assert f"best weights: {run_dir / 'weights' / 'best.pt'}" in out
    # choose on val, test once: the hint says so before it gives the test command
    assert "compare runs on val, then look at test once" in out[out.index("next:"):]


def test_the_test_command_train_py_prints_scores_this_dataset_at_the_size_it_trained(trained, dataset):
    """Run as printed (pasted into a shell): it named neither the dataset nor the size, so val.py scored the
    project's own data/ folder, or found nothing there, at 704 px."""
    run_dir, out = trained
    printed = out[out.index("next:"):].splitlines()[1].strip()
    assert printed == f"python val.py --weights {run_dir / 'weights' / 'best.pt'} --data {dataset} --split test --imgsz 64"
    command = shlex.split(printed)
    proc = run(command[1], *command[2:], "--project", run_dir.parent / "val", cwd=run_dir.parent.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "best.pt on the test split (imgsz 64)" in proc.stdout


def run_args(run_dir: Path) -> dict:
    """The settings Ultralytics trained with (it writes them to args.yaml in the run folder)."""
    return yaml.safe_load((run_dir / "args.yaml").read_text())


def test_training_without_model_fine_tunes_the_shipped_model_with_fine_tuning_settings(trained):
    run_dir, out = trained
    args = run_args(run_dir)
    assert Path(args["model"]) == ROOT / "models" / "best.pt"
    # 2 epochs: mosaic closed for the last max(1, 2 // 6) = 1
    assert {k: args[k] for k in ("optimizer", "lr0", "warmup_epochs", "close_mosaic")} == {
        "optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 1, "close_mosaic": 1}
    chosen = [line for line in out.splitlines() if line.startswith("fine-tuning ")]
    assert len(chosen) == 1 and "best.pt: optimizer=AdamW lr0=0.001 warmup_epochs=1 close_mosaic=1" in chosen[0]
    assert "note:" not in out  # same classes as data.yaml: nothing to say


@pytest.fixture(scope="module")
def other_classes(tmp_path_factory) -> Path:
    """The tiny dataset relabelled into two classes of other names (a user's own scheme)."""
    root = tmp_path_factory.mktemp("two_classes")
    data_yaml = write_yolo_dataset(root)
    for labels in root.glob("*/labels/*.txt"):
        labels.write_text("".join(("1" + line[1:] if line.startswith("2 ") else line) + "\n"
                                  for line in labels.read_text().splitlines()))
    text = data_yaml.read_text()
    data_yaml.write_text(text[:text.index("names:")] + "names:\n  0: mask\n  1: no_mask\n")
    return data_yaml


def test_a_checkpoint_with_other_classes_trains_with_a_one_line_note_and_the_users_settings_win(trained, other_classes,
                                                                                                  tmp_path):
    start = trained[0] / "weights" / "best.pt"  # 3 classes; data.yaml has 2
    proc = run("train.py", "--data", other_classes, "--model", start, "--epochs", "1", *TINY, "--project", tmp_path,
               "lr0=0.01")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: ") and notes[0].endswith(
        "best.pt knows 3 classes (with_mask, without_mask, mask_weared_incorrect), data.yaml has 2 (mask, no_mask): "
        "every layer but the class outputs is transferred; those start afresh")
    # Ultralytics copies what fits: all but the class outputs' tensors
    transferred = re.search(r"Transferred (\d+)/(\d+) items", proc.stdout + proc.stderr)
    assert transferred and 0 < int(transferred[1]) < int(transferred[2])
    args = run_args(tmp_path / "exp")
    assert args["lr0"] == 0.01 and args["optimizer"] == "AdamW"  # the user's lr0, the rest chosen
    assert "(yours kept: lr0=0.01)" in proc.stdout

    from ultralytics import YOLO

    assert YOLO(str(tmp_path / "exp" / "weights" / "best.pt")).names == {0: "mask", 1: "no_mask"}


def test_fine_tuning_settings_scale_close_mosaic_with_the_epochs_and_leave_the_users_alone():
    assert finetune_settings(100, {}) == {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 1, "close_mosaic": 10}
    assert finetune_settings(30, {})["close_mosaic"] == 5
    assert finetune_settings(3, {})["close_mosaic"] == 1
    assert finetune_settings(30, {"lr0": 0.02, "close_mosaic": 0}) == {"optimizer": "AdamW", "warmup_epochs": 1}
    everything = {"optimizer": "SGD", "lr0": 0.01, "warmup_epochs": 3, "close_mosaic": 10}
    assert finetune_settings(30, everything) == {}
    assert describe_start("yolo11n.pt", {}, everything) == (
        "fine-tuning yolo11n.pt: (yours kept: optimizer=SGD lr0=0.01 warmup_epochs=3 close_mosaic=10)")
    assert describe_start("best.pt", {"optimizer": "AdamW"}, {"lr0": 0.01}) == (
        "fine-tuning best.pt: optimizer=AdamW (yours kept: lr0=0.01) -- change any of them as key=value")


def test_same_count_other_names_says_the_class_outputs_are_reused_in_order():
    note = class_change_note("best.pt", ["with_mask", "without_mask"], ("mask", "without_mask"))
    assert note == ("note: best.pt knows 2 classes (with_mask, without_mask), data.yaml has 2 (mask, without_mask): "
                    "every layer is transferred and the class outputs are reused in order (with_mask->mask)")
    assert class_change_note("best.pt", ["a", "b"], ("a", "b")) is None
    coco = class_change_note("yolo11n.pt", [f"c{i}" for i in range(80)], ("a", "b", "c"))
    assert "knows 80 classes (c0, c1, c2, c3, c4, ...)" in coco and "\n" not in coco


def test_the_offline_hint_names_a_local_coco_checkpoint_when_there_is_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "weights"
    weights.mkdir()
    assert "--model yolo11n.yaml" in offline_train_hint("yolo11n", weights)
    assert "coco" not in offline_train_hint("yolo11n", weights)
    (weights / "yolo11n-coco.pt").write_bytes(b"checkpoint")
    assert offline_train_hint("yolo11n", weights).endswith(
        "; the same COCO start is on this machine: --model weights/yolo11n-coco.pt")
    assert "coco" not in offline_train_hint("yolo26n", weights)


def test_cpu_training_uses_every_core(trained):
    # Ultralytics alone would compute on os.cpu_count() - 1 threads: one of a 2-core laptop's two
    assert f"training on {os.cpu_count()} CPU threads" in trained[1]


def test_the_thread_callback_leaves_gpu_training_alone():
    import torch

    from maskdet.training.trainer import use_every_core_on_cpu

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        use_every_core_on_cpu(SimpleNamespace(device=torch.device("cuda", 0)))
        assert torch.get_num_threads() == 1
        use_every_core_on_cpu(SimpleNamespace(device=torch.device("cpu")))
        assert torch.get_num_threads() == os.cpu_count()
    finally:
        torch.set_num_threads(before)


def test_the_run_keeps_an_absolute_data_yaml_so_it_resumes_from_anywhere(trained, dataset):
    text = (trained[0] / "data.yaml").read_text()
    assert f"path: {dataset.parent}" in text


def test_oversampling_feeds_the_repeated_images_to_the_trainer(dataset, tmp_path):
    proc = run("train.py", "--data", dataset, "--model", "yolo11n.yaml", "--epochs", "1", *TINY, "--project", tmp_path,
               "--oversample", "10")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # an architecture .yaml trains from scratch with Ultralytics' own settings, none chosen for fine-tuning
    assert "training yolo11n.yaml from scratch" in proc.stdout and "fine-tuning" not in proc.stdout
    assert run_args(tmp_path / "exp")["optimizer"] == "auto"
    listed = (tmp_path / "exp" / "train_oversampled.txt").read_text().splitlines()
    assert len(listed) > 8
    assert f"oversampling: 8 train images -> {len(listed)} per epoch" in proc.stdout
    # Ultralytics' own scan counts the repeated entries: it trains on the list, duplicates kept
    assert f"{len(listed)} images, 0 backgrounds" in proc.stdout + proc.stderr


def test_resume_continues_an_interrupted_run(dataset, tmp_path):
    project = tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(dataset), "--epochs", "5", *TINY, "--project", str(project)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results, last = project / "exp" / "results.csv", project / "exp" / "weights" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        # Ultralytics logs the epoch's row before it saves last.pt: wait for both.
        if last.exists() and results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    proc.wait(timeout=120)
    done = len(pd.read_csv(results))
    assert 1 <= done < 5

    resumed = run("train.py", "--resume", last, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    epochs = pd.read_csv(results)["epoch"].tolist()
    assert epochs == [1, 2, 3, 4, 5]
    assert "resuming" in resumed.stdout
    assert f"training on {os.cpu_count()} CPU threads" in resumed.stdout  # the resumed run uses every core too


def test_resuming_a_run_that_finished_is_one_line_and_trains_nothing(trained):
    """Ultralytics' own --resume of a finished run starts a new training on its default dataset (COCO8)."""
    run_dir = trained[0]
    before = sorted(p.name for p in run_dir.parent.iterdir())
    for args in (["--resume", run_dir / "weights" / "last.pt"], ["--resume", "--project", run_dir.parent]):
        proc = run("train.py", *args, "--device", "cpu")
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert proc.stderr.startswith(f"error: {run_dir / 'weights' / 'last.pt'}: nothing to resume: this run finished")
        assert "Traceback" not in proc.stderr and "coco8" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in run_dir.parent.iterdir()) == before


def test_evaluation_on_the_test_split_prints_the_table_and_writes_plots(trained, dataset, tmp_path):
    proc = run("val.py", "--weights", trained[0] / "weights" / "best.pt", "--data", dataset, "--split", "test",
               "--imgsz", "64", "--project", "evals", cwd=tmp_path)  # a relative --project: from where it runs
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "best.pt on the test split" in proc.stdout
    run_dir = tmp_path / "evals" / "exp"
    assert (run_dir / "confusion_matrix.png").exists()
    assert any(run_dir.glob("*PR_curve.png"))
    metrics = pd.read_csv(run_dir / "metrics.csv", index_col="class")
    assert metrics.loc["all", "images"] == 4 and list(metrics.index)[1:] == ["with_mask", "without_mask", "mask_weared_incorrect"]


def test_the_table_counts_the_photos_evaluated_and_names_the_size_they_ran_at(trained, dataset, tmp_path):
    """Ultralytics leaves out a photo with a label line it cannot read and rounds --imgsz up to a multiple of 32."""
    copy = tmp_path / "data"
    shutil.copytree(dataset.parent, copy)
    label = sorted((copy / "test" / "labels").glob("*.txt"))[0]
    label.write_text("0 0.5 abc 0.2 0.2\n")
    proc = run("val.py", "--weights", trained[0] / "weights" / "best.pt", "--data", copy / "data.yaml", "--split", "test",
               "--imgsz", "50", "--project", tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "note: --imgsz 50 is not a multiple of 32 (the model's largest stride): evaluated at 64" in proc.stdout
    assert "best.pt on the test split (imgsz 64)" in proc.stdout
    metrics = pd.read_csv(tmp_path / "runs" / "exp" / "metrics.csv", index_col="class")
    assert metrics.loc["all", "images"] == 3  # of 4: the one with the unreadable line was not evaluated
    assert "note: 1 photo of the test split left out" in proc.stdout


def test_onnx_export_loads_and_predicts(trained):
    best = trained[0] / "weights" / "best.pt"
    proc = run("export.py", "--weights", best, "--imgsz", "64")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deprecated" not in proc.stdout + proc.stderr, "no Ultralytics deprecation warning on a plain export"
    onnx_path = best.with_suffix(".onnx")
    assert onnx_path.exists()
    assert not list(best.parent.glob(".export-*")), "the scratch folder is cleaned up"

    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})
    assert output.shape[:2] == (1, 4 + 3)  # xywh + one score per class, for each anchor

    from ultralytics import YOLO

    result = YOLO(str(onnx_path), task="detect").predict(str(ROOT / "samples" / "images" / "astronaut.jpg"), imgsz=64, verbose=False)[0]
    assert result.names == {0: "with_mask", 1: "without_mask", 2: "mask_weared_incorrect"}


def test_export_keeps_an_existing_onnx_unless_forced(trained, tmp_path):
    best = tmp_path / "best.pt"
    shutil.copy(trained[0] / "weights" / "best.pt", best)
    onnx_path = best.with_suffix(".onnx")
    onnx_path.write_bytes(b"the user's own export")

    proc = run("export.py", "--weights", best, "--imgsz", "64")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"error: {onnx_path}: already exists; add --force to replace it"]
    assert onnx_path.read_bytes() == b"the user's own export"

    proc = run("export.py", "--weights", best, "--imgsz", "64", "--force")
    assert proc.returncode == 0, proc.stderr[-2000:]
    import onnx

    onnx.checker.check_model(onnx.load(str(onnx_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.onnx", "best.pt"]


def test_an_unknown_split_or_missing_weights_is_a_one_line_error(dataset, tmp_path):
    proc = run("val.py", "--weights", tmp_path / "nope.pt", "--data", dataset)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "nope.pt" in proc.stderr


def test_offline_a_hub_checkpoint_fails_fast_with_what_to_do(dataset, tmp_path):
    proc = run("train.py", "--model", "yolo11n.pt", "--data", dataset, "--project", tmp_path,
               timeout=60, env={"YOLO_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "yolo11n.pt" in proc.stderr and "--model yolo11n.yaml" in proc.stderr and "offline" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    if (ROOT.parent / "shared" / "weights" / "yolo11n-coco.pt").is_file():
        assert "yolo11n-coco.pt" in proc.stderr  # the local COCO copy, named as the alternative
    assert not (tmp_path / "exp").exists(), "nothing should start before the model is known to be loadable"


def test_offline_export_of_a_hub_checkpoint_says_what_to_do_as_train_py_does(tmp_path):
    proc = run("export.py", "--weights", "yolo11n.pt", timeout=60, env={"YOLO_OFFLINE": "1"}, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "'yolo11n.pt' is not on this machine and it is offline" in proc.stderr


def test_resume_drops_log_rows_of_epochs_the_checkpoint_does_not_hold(tmp_path):
    """Ultralytics logs an epoch before saving last.pt; Ctrl-C between the two must not duplicate it."""
    import torch

    from maskdet.training.trainer import trim_results_to_checkpoint

    weights = tmp_path / "exp" / "weights"
    weights.mkdir(parents=True)
    torch.save({"epoch": 1}, weights / "last.pt")  # 0-based: epochs 1 and 2 are done
    results = tmp_path / "exp" / "results.csv"
    results.write_text("epoch,time\n1,10.0\n2,20.0\n3,30.0\n")
    trim_results_to_checkpoint(weights / "last.pt")
    assert pd.read_csv(results)["epoch"].tolist() == [1, 2]
    trim_results_to_checkpoint(weights / "last.pt")
    assert pd.read_csv(results)["epoch"].tolist() == [1, 2]
