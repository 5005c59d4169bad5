"""The two records a detection pipeline passes along: a Frame in, Detections out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from maskdet.yolo_format import Box


@dataclass
class Frame:
    """One image to run the detector on, with where it came from."""

    image: np.ndarray  # BGR, as OpenCV decodes it
    source: str  # the path, URL or "webcam 0" it came from
    name: str  # base name for outputs: file stem, or a name for the camera/stream
    kind: str  # "image", "video" or "live"
    index: int = 0  # frame number within the source (counting frames a live reader dropped)
    timestamp: float = 0.0  # seconds into the video, or since the live source opened
    captured_at: float = 0.0  # time.perf_counter() when it was read: latency = done - captured_at
    fps: float | None = None  # rate of the frames this source yields (video fps / --vid-stride), when known
    total: int | None = None  # frames in a video file (for "frame 12/300")
    position: str = ""  # "3/10" among the inputs


@dataclass
class Detections:
    """Boxes after NMS for one frame, in pixels of that frame (like supervision.Detections)."""

    xyxy: np.ndarray  # (N, 4) float32: x1, y1, x2, y2
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int
    names: tuple[str, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)  # preprocess / inference / nms
    tracker_id: np.ndarray | None = None  # (N,) int with --track: the person each box belongs to, -1 not yet confirmed

    def track_label(self, i: int) -> str:
        """'#7 ' for a tracked box, '' otherwise: the prefix of drawn labels."""
        if self.tracker_id is None or self.tracker_id[i] < 0:
            return ""
        return f"#{int(self.tracker_id[i])} "

    def __len__(self) -> int:
        return len(self.class_id)

    def class_name(self, i: int) -> str:
        c = int(self.class_id[i])
        return self.names[c] if 0 <= c < len(self.names) else str(c)

    def yolo_boxes(self, width: int, height: int) -> list[Box]:
        """The boxes as YOLO labels (normalised centre, width, height) of a width x height image."""
        return [Box.from_edges(int(c), x1 / width, y1 / height, x2 / width, y2 / height)
                for (x1, y1, x2, y2), c in zip(self.xyxy.tolist(), self.class_id.tolist())]

    def counts(self) -> Counter:
        return Counter(self.class_name(i) for i in range(len(self)))

    def describe(self) -> str:
        """'2 with_mask, 1 without_mask' or '(no detections)', as YOLOv5 prints it."""
        counts = self.counts()
        return ", ".join(f"{n} {name}" for name, n in counts.items()) if counts else "(no detections)"


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def add_timings(total: dict[str, float], more: dict[str, float]) -> None:
    """Add one detector call's milliseconds per stage to `total` (a frame that took several calls: tiles, views)."""
    for stage, ms in more.items():
        total[stage] = total.get(stage, 0.0) + ms
