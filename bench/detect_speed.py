#!/usr/bin/env python3
"""detect.py against Ultralytics' own `yolo predict`, side by side on the same video and model.

Every command runs end to end (start-up, decoding, inference, drawing, writing the annotated
video) on the same input at the same image size; runs are interleaved and the median of
--repeat runs is reported, since a shared machine is noisy. detect.py also reports where its
time goes (read/decode, preprocess, inference, NMS, drawing, writing).

    python bench/detect_speed.py                          # models/best.pt and models/best.onnx, 768 px
    python bench/detect_speed.py --frames 300 --repeat 5 --json bench/detect_speed.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from maskdet.config import INFERENCE_IMGSZ  # noqa: E402

SAMPLE = ROOT / "samples" / "images" / "astronaut.jpg"


def make_video(path: Path, frames: int, size: tuple[int, int] = (640, 480), fps: float = 25.0) -> None:
    """A slow pan and zoom over the sample photo: real image content, deterministic."""
    photo = cv2.imread(str(SAMPLE))
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 + 0.5 * np.sin(np.pi * t)
        crop = int(photo.shape[0] / zoom)
        x = int((photo.shape[1] - crop) * t)
        view = photo[(photo.shape[0] - crop) // 2:(photo.shape[0] + crop) // 2, x:x + crop]
        canvas = np.full((h, w, 3), 40, np.uint8)
        canvas[:, (w - h) // 2:(w + h) // 2] = cv2.resize(view, (h, h))
        writer.write(canvas)
    writer.release()


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout + proc.stderr


def parse_breakdown(output: str) -> dict[str, float]:
    line = next((ln for ln in output.splitlines() if ln.startswith("time per frame:")), "")
    return {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)ms", line)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.pt"), help=".pt model; its .onnx sibling is used too")
    parser.add_argument("--imgsz", type=int, default=INFERENCE_IMGSZ, help="inference size for every command")
    parser.add_argument("--frames", type=int, default=200, help="length of the generated 640x480 video")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the median is reported")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    pt = Path(args.weights).resolve()
    onnx = pt.with_suffix(".onnx")
    yolo = shutil.which("yolo")
    if not pt.exists() or not onnx.exists() or yolo is None:
        raise SystemExit(f"needs {pt}, {onnx} (python export.py) and the 'yolo' command (pip install ultralytics)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "bench.mp4"
        make_video(video, args.frames)
        commands = {
            "detect.py (.onnx)": [sys.executable, str(ROOT / "detect.py"), "--weights", str(onnx), "--source", str(video),
                                  "--imgsz", str(args.imgsz), "--project", str(tmp / "d1"), "--quiet"],
            "detect.py (.pt)": [sys.executable, str(ROOT / "detect.py"), "--weights", str(pt), "--source", str(video),
                                "--imgsz", str(args.imgsz), "--project", str(tmp / "d2"), "--quiet"],
            "yolo predict (.pt)": [yolo, "predict", f"model={pt}", f"source={video}", f"imgsz={args.imgsz}", "save=True",
                                   f"project={tmp / 'y'}", "verbose=False"],
        }
        walls: dict[str, list[float]] = {k: [] for k in commands}
        breakdowns: dict[str, list[dict]] = {k: [] for k in commands}
        for r in range(args.repeat):
            for label, cmd in commands.items():
                elapsed, out = timed(cmd, tmp)
                walls[label].append(elapsed)
                breakdowns[label].append(parse_breakdown(out))
                print(f"run {r + 1}/{args.repeat} {label}: {elapsed:.1f} s", file=sys.stderr)

    base = statistics.median(walls["yolo predict (.pt)"])
    results = []
    print(f"\n{args.frames} frames 640x480, imgsz {args.imgsz}, model {pt.name}; median of {args.repeat} runs (end to end)")
    print(f"{'command':<22}{'seconds':>9}{'FPS':>8}{'vs yolo predict':>17}")
    for label in commands:
        wall = statistics.median(walls[label])
        results.append({"command": label, "seconds": round(wall, 2), "fps": round(args.frames / wall, 2),
                        "speedup_vs_yolo_predict": round(base / wall, 2)})
        print(f"{label:<22}{wall:9.1f}{args.frames / wall:8.1f}{base / wall:16.2f}x")
    for label in ("detect.py (.onnx)", "detect.py (.pt)"):
        stages = {k: statistics.median(b.get(k, 0.0) for b in breakdowns[label]) for k in breakdowns[label][0]}
        total = sum(stages.values()) or 1.0
        other = 100 * (total - stages.get("inference", 0.0)) / total
        print(f"\n{label} per frame: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items() if v)
              + f"\n  everything but inference: {other:.0f}% of the time")
        next(r for r in results if r["command"] == label).update({"stages_ms": stages, "non_inference_pct": round(other, 1)})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
