#!/usr/bin/env python3
"""train.py against Ultralytics' own `yolo train` on a CPU, side by side on the same data and settings.

Both train the same architecture from scratch for two epochs on the same images with validation
off until the end; the first epoch's time (from each run's results.csv) is what is compared,
so start-up, caching and the final validation are left out. Runs are interleaved and the median
of --repeat runs is reported, since a shared machine is noisy. The difference measured is the
thread count: Ultralytics computes on os.cpu_count() - 1 threads, train.py on all of them.

    python bench/train_speed.py                            # data.yaml, a quarter of the train split, 640 px
    python bench/train_speed.py --fraction 0.5 --repeat 3 --json bench/train_speed.json
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import find_yolo, write_json  # noqa: E402

from maskdet.cli import IMGSZ, ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.training.trainer import write_resolved_data_yaml  # noqa: E402


def first_epoch_seconds(cmd: list[str], run_dir: Path, cwd: Path) -> float:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return float(pd.read_csv(run_dir / "results.csv")["time"].iloc[0])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data.yaml"), help="dataset description (its train split is used)")
    parser.add_argument("--model", default="yolo11n.yaml", help="architecture, trained from scratch")
    parser.add_argument("--imgsz", type=IMGSZ, default=640, help="training image size")
    parser.add_argument("--batch", type=number(int, 1, 1024), default=16, help="batch size")
    parser.add_argument("--fraction", type=number(float, 0, 1, low_open=True), default=0.25,
                        help="share of the train images used")
    parser.add_argument("--repeat", type=number(int, 1, 100), default=2, help="runs of each command; the median is reported")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    yolo = find_yolo()
    if not Path(args.data).is_file():
        raise UserError("no such file: give the dataset description with --data", args.data)
    settings = [f"imgsz={args.imgsz}", f"batch={args.batch}", f"fraction={args.fraction}", "epochs=2", "val=False",
                "cache=ram", "device=cpu", "plots=False", "cls_pw=0.5", "seed=0", "deterministic=False"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_yaml = write_resolved_data_yaml(args.data, tmp)
        commands = {  # each takes the run folder it must write to
            "train.py": lambda run: [sys.executable, str(ROOT / "train.py"), "--data", args.data, "--model", args.model,
                                     "--project", str(run.parent), "--name", run.name, *settings],
            "yolo train": lambda run: [yolo, "train", f"model={args.model}", f"data={data_yaml}",
                                       f"project={run.parent}", f"name={run.name}", *settings],
        }
        seconds: dict[str, list[float]] = {k: [] for k in commands}
        for r in range(args.repeat):
            for i, (label, make) in enumerate(commands.items()):
                run_dir = tmp / f"command{i}" / f"r{r}"
                elapsed = first_epoch_seconds(make(run_dir), run_dir, tmp)
                seconds[label].append(elapsed)
                print(f"run {r + 1}/{args.repeat} {label}: first epoch {elapsed:.1f} s", file=sys.stderr)

    base = statistics.median(seconds["yolo train"])
    print(f"\n{args.model} from scratch, {args.imgsz} px, batch {args.batch}, {args.fraction:.0%} of the train split, "
          f"{os.cpu_count()} CPU cores; median of {args.repeat} runs (one epoch of training)")
    print(f"{'command':<14}{'seconds':>9}{'vs yolo train':>15}")
    results = []
    for label in commands:
        median = statistics.median(seconds[label])
        results.append({"command": label, "epoch_seconds": round(median, 1), "speedup_vs_yolo_train": round(base / median, 2)})
        print(f"{label:<14}{median:9.1f}{base / median:14.2f}x")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
