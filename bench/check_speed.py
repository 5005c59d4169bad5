#!/usr/bin/env python3
"""How check.py scales: wall time and peak memory on generated datasets of growing size.

Each size gets a fresh dataset of 320x240 JPEG photos-alike with 1-6 boxes each and a few
planted problems (out-of-range boxes, duplicates, a corrupt image), then `labeling/check.py`
runs in its own process; peak memory is that process's max RSS. Memory should stay flat as
the dataset grows: check.py streams one image at a time.

    python bench/check_speed.py                 # 1,000 and 10,000 images
    python bench/check_speed.py --sizes 500 --keep /tmp/ds
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import run_cli  # noqa: E402


def make_dataset(root: Path, n: int, seed: int = 0) -> None:
    """n images split 80/10/10, each with random boxes; 1 % carry a planted label problem."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for i in range(n):
        split = "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")
        img = np.roll(base, i * 7, axis=1)  # distinct content so no duplicate-image warnings
        cv2.putText(img, str(i), (10, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / "images" / f"im{i:06d}.jpg"), img)
        lines = []
        for _ in range(int(rng.integers(1, 7))):
            w, h = rng.uniform(0.02, 0.3, 2)
            x, y = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            lines.append(f"{int(rng.integers(0, 3))} {x:.6f} {y:.6f} {w:.6f} {h:.6f}")
        if i % 100 == 0:
            lines.append("1 0.99 0.5 0.2 0.2")  # crosses the right edge: fixable
            lines.append(lines[0])  # duplicate: fixable
        (root / split / "labels" / f"im{i:06d}.txt").write_text("\n".join(lines) + "\n")
    (root / "train" / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "data.yaml").write_text("path: .\ntrain: train/images\nval: val/images\ntest: test/images\n"
                                    "names: {0: with_mask, 1: without_mask, 2: mask_weared_incorrect}\n")


def run_check(data_yaml: Path, project: Path) -> tuple[float, float, int]:
    """Seconds and peak MiB of one check.py process (a wrapper process isolates ru_maxrss)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "dt = time.perf_counter() - t\n"
        "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)\n"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, str(ROOT / "labeling" / "check.py"),
           "--data", str(data_yaml), "--project", str(project)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--sizes", type=number(int, 1, 1_000_000), nargs="+", default=[1000, 10000],
                        help="dataset sizes (images) to time")
    parser.add_argument("--repeat", type=number(int, 1, 100), default=3, help="runs per size; the median is reported")
    parser.add_argument("--keep", help="keep the generated datasets under this folder")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for n in args.sizes:
            root = base / f"ds{n}"
            if not (root / "data.yaml").exists():
                t = time.perf_counter()
                make_dataset(root, n)
                print(f"generated {n} images in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            runs = [run_check(root / "data.yaml", base / "runs") for _ in range(args.repeat)]
            secs = sorted(r[0] for r in runs)[len(runs) // 2]
            mib = sorted(r[1] for r in runs)[len(runs) // 2]
            results.append({"images": n, "seconds": round(secs, 2), "images_per_s": round(n / secs),
                            "peak_mib": round(mib, 1), "exit": runs[0][2]})
            print(f"{n:>7} images  {secs:7.2f} s  {n / secs:7.0f} img/s  peak {mib:6.1f} MiB  (exit {runs[0][2]}: planted problems found)")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
