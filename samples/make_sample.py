#!/usr/bin/env python3
"""Draw the small synthetic dataset bundled in samples/dataset (cartoon faces, three mask states).

It exists so the Quickstart and tests have labelled images offline without shipping anyone's
photos. Re-run to regenerate; the output is deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
from maskdet.data.labels import Box, format_label_text  # noqa: E402
from maskdet.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402

SKIN = [(180, 200, 240), (120, 160, 210), (80, 110, 160), (150, 190, 225)]
MASK = [(235, 215, 170), (250, 250, 250), (60, 60, 60)]


def draw_face(img: np.ndarray, cx: int, cy: int, r: int, state: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Draw a head; state 0 = mask over nose and mouth, 1 = no mask, 2 = mask under the nose."""
    skin = SKIN[rng.integers(len(SKIN))]
    cv2.ellipse(img, (cx, cy), (r, int(r * 1.25)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy - int(r * 0.9)), (int(r * 1.05), int(r * 0.6)), 0, 180, 360, (40, 40, 60), -1, cv2.LINE_AA)
    for dx in (-r // 2.5, r // 2.5):
        cv2.circle(img, (int(cx + dx), cy - r // 4), max(2, r // 8), (30, 30, 30), -1, cv2.LINE_AA)
    nose_y, mouth_y = cy + r // 8, cy + r // 2
    cv2.line(img, (cx, cy - r // 8), (cx, nose_y), (60, 80, 120), max(1, r // 15), cv2.LINE_AA)
    cv2.ellipse(img, (cx, mouth_y), (r // 3, r // 8), 0, 0, 180, (50, 50, 150), max(1, r // 12), cv2.LINE_AA)
    if state != 1:
        top = cy - r // 10 if state == 0 else mouth_y - r // 6
        mask = MASK[rng.integers(len(MASK))]
        pts = np.array([[cx - r, top], [cx + r, top], [cx + int(r * 0.8), cy + int(r * 1.05)], [cx - int(r * 0.8), cy + int(r * 1.05)]])
        cv2.fillConvexPoly(img, pts.astype(np.int32), mask, cv2.LINE_AA)
        cv2.line(img, (cx - r, top + r // 6), (cx - int(r * 1.3), cy - r // 3), mask, 2, cv2.LINE_AA)
        cv2.line(img, (cx + r, top + r // 6), (cx + int(r * 1.3), cy - r // 3), mask, 2, cv2.LINE_AA)
    return cx - r, cy - int(r * 1.25) - int(r * 0.6) // 2, cx + r, cy + int(r * 1.25)


def make_image(seed: int, size: tuple[int, int] = (480, 320)) -> tuple[np.ndarray, list[Box]]:
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rng.integers(60, 200, 3)
    cv2.rectangle(img, (0, int(h * 0.7)), (w, h), tuple(int(v) for v in rng.integers(40, 120, 3)), -1)
    boxes = []
    n = int(rng.integers(1, 4))
    for k in range(n):
        r = int(rng.integers(22, 45))
        cx = int((k + 0.5) * w / n + rng.integers(-15, 16))
        cy = int(rng.integers(r * 2, h - r * 2))
        state = (seed + k) % 3
        x1, y1, x2, y2 = draw_face(img, cx, cy, r, state, rng)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        boxes.append(Box.from_edges(state, x1 / w, y1 / h, x2 / w, y2 / h))
    return img, boxes


def main() -> None:
    out = ROOT / "dataset"
    for split, seeds in (("train", range(0, 6)), ("val", range(100, 103)), ("test", range(200, 203))):
        for seed in seeds:
            img, boxes = make_image(seed)
            ok, png = cv2.imencode(".png", img)
            atomic_write_bytes(out / split / "images" / f"sample{seed:03d}.png", png.tobytes())
            atomic_write_text(out / split / "labels" / f"sample{seed:03d}.txt", format_label_text(boxes))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
