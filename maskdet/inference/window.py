"""detect.py --show: an OpenCV window with FPS and per-class (or, tracking, per-person) counts."""

from __future__ import annotations

import time

import cv2
import numpy as np

from maskdet.inference.detections import Detections
from maskdet.inference.visualize import class_color, draw_overlay


class Window:
    """An OpenCV window with FPS and per-class counts; 'q' or Esc (or closing it) stops."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.opened: set[str] = set()
        self.fps = 0.0
        self.last = time.perf_counter()

    def show(self, title: str, image: np.ndarray, det: Detections, people: list | None = None) -> bool:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        self.fps = 1 / dt if self.fps == 0 and dt > 0 else 0.9 * self.fps + 0.1 / max(dt, 1e-6)
        image = image.copy()  # the sinks (a background video writer) may still hold the annotated frame
        counts = det.counts()
        lines = [(f"FPS {self.fps:.1f}", (255, 255, 255))]
        lines += people if people is not None else [(f"{name}: {counts.get(name, 0)}", class_color(i, self.names))
                                                    for i, name in enumerate(self.names)]
        draw_overlay(image, lines)
        if title not in self.opened:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)  # no toolbar: 1:1 pixels
            cv2.resizeWindow(title, image.shape[1], image.shape[0])
            self.opened.add(title)
        cv2.imshow(title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        return cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        if self.opened:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
