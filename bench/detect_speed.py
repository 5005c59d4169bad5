#!/usr/bin/env python3
"""detect.py against Ultralytics' own `yolo predict`, side by side on the same video and model.

Every command runs end to end (start-up, decoding, inference, drawing, writing the annotated
video) on the same input at the same image size; runs are interleaved and the median of
--repeat runs is reported, since a shared machine is noisy. Both wall time and CPU time (user + sys of
the whole process and its children) are measured: CPU time per frame decides how many cameras a machine
watches. detect.py also reports where its time goes (read/decode, preprocess, inference, NMS, drawing, writing).

    python bench/detect_speed.py                          # INT8 OpenVINO, .onnx and yolo predict on the .pt, 704 px
    python bench/detect_speed.py --frames 300 --repeat 5 --json bench/detect_speed.json
    python bench/detect_speed.py --with-augment           # and what detect.py --augment costs
"""

from __future__ import annotations

import re
import resource
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
from benchlib import cpu_flags, cpu_name, find_yolo, read_photo, same_size, stride_imgsz, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.config import INFERENCE_IMGSZ  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402

SAMPLE = ROOT / "samples" / "images" / "astronaut.jpg"


def make_video(path: Path, frames: int, size: tuple[int, int] = (640, 480), fps: float = 25.0) -> None:
    """A slow pan and zoom over the sample photo: real image content, deterministic."""
    photo = read_photo(SAMPLE)
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the process and everything it waited for) and its output."""
    t, c = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - t, children_cpu() - c
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, cpu, proc.stdout + proc.stderr


def parse_breakdown(output: str) -> dict[str, float]:
    line = next((ln for ln in output.splitlines() if ln.startswith("time per frame:")), "")
    return {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)ms", line)}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.pt"),
                        help=".pt model; its .onnx and _int8_openvino_model/ siblings are used too")
    parser.add_argument("--with-pt", action="store_true", help="also time detect.py on the .pt")
    parser.add_argument("--with-augment", action="store_true",
                        help="also time detect.py --augment on the INT8 model (test-time augmentation: two inferences a frame)")
    parser.add_argument("--imgsz", type=stride_imgsz, default=None,
                        help="inference size for every command, a multiple of 32 (default: the size the .onnx is "
                             f"exported at, {INFERENCE_IMGSZ} for the shipped one; a fixed-size export takes no other)")
    parser.add_argument("--frames", type=number(int, 1, 100_000), default=200, help="length of the generated 640x480 video")
    parser.add_argument("--repeat", type=number(int, 1, 100), default=3, help="runs of each command; the median is reported")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    pt = Path(args.weights).resolve()
    onnx = pt.with_suffix(".onnx")
    int8 = pt.with_name(f"{pt.stem}_int8_openvino_model")
    for needed in (pt, onnx):
        if not needed.exists():
            raise UserError(f"no such file: the bench needs the .pt given by --weights and its .onnx sibling "
                            f"(python export.py --weights {pt})", needed)
    yolo = find_yolo()
    # every command at one size, before minutes of runs: a fixed-size export takes only its own
    args.imgsz = same_size([onnx, int8] if int8.exists() else [onnx], args.imgsz) or INFERENCE_IMGSZ
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "bench.mp4"
        make_video(video, args.frames)
        def detect_py(weights: Path, project: str, *flags: str) -> list[str]:
            return [sys.executable, str(ROOT / "detect.py"), "--weights", str(weights), "--source", str(video),
                    "--imgsz", str(args.imgsz), "--project", str(tmp / project), "--quiet", *flags]

        commands = {}
        if int8.exists():
            commands["detect.py (INT8)"] = detect_py(int8, "d0")
        commands["detect.py (.onnx)"] = detect_py(onnx, "d1")
        if args.with_pt:
            commands["detect.py (.pt)"] = detect_py(pt, "d2")
        commands["yolo predict (.pt)"] = [yolo, "predict", f"model={pt}", f"source={video}", f"imgsz={args.imgsz}",
                                          "save=True", f"project={tmp / 'y'}", "verbose=False"]
        if args.with_augment and int8.exists():
            commands["detect.py (INT8 --augment)"] = detect_py(int8, "d3", "--augment")
        walls: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float]] = {k: [] for k in commands}
        breakdowns: dict[str, list[dict]] = {k: [] for k in commands}
        for r in range(args.repeat):
            for label, cmd in commands.items():
                elapsed, cpu, out = timed(cmd, tmp)
                walls[label].append(elapsed)
                cpus[label].append(cpu)
                breakdowns[label].append(parse_breakdown(out))
                print(f"run {r + 1}/{args.repeat} {label}: {elapsed:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)

    base = statistics.median(walls["yolo predict (.pt)"])
    base_cpu = statistics.median(cpus["yolo predict (.pt)"])
    results = []
    print(f"\n{cpu_name()}; flags: {cpu_flags()}")
    print(f"{args.frames} frames 640x480, imgsz {args.imgsz}, model {pt.name}; median of {args.repeat} runs (end to end)")
    print(f"{'command':<28}{'wall s':>8}{'FPS':>7}{'CPU s':>8}{'frames/CPU-s':>14}{'wall vs yolo':>14}{'CPU vs yolo':>13}")
    for label in commands:
        wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
        results.append({"command": label, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                        "fps": round(args.frames / wall, 2), "frames_per_cpu_s": round(args.frames / cpu, 2),
                        "speedup_vs_yolo_predict": round(base / wall, 2), "cpu_gain_vs_yolo_predict": round(base_cpu / cpu, 2)})
        print(f"{label:<28}{wall:8.1f}{args.frames / wall:7.1f}{cpu:8.1f}{args.frames / cpu:14.1f}"
              f"{base / wall:13.2f}x{base_cpu / cpu:12.2f}x")
    for label in [k for k in commands if k.startswith("detect.py")]:
        stages = {k: statistics.median(b.get(k, 0.0) for b in breakdowns[label]) for k in breakdowns[label][0]}
        total = sum(stages.values()) or 1.0
        other = 100 * (total - stages.get("inference", 0.0)) / total
        print(f"\n{label} per frame: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items() if v)
              + f"\n  everything but inference: {other:.0f}% of the time")
        next(r for r in results if r["command"] == label).update({"stages_ms": stages, "non_inference_pct": round(other, 1)})
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
