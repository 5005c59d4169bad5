"""Tables and pictures of a dataset check: what to look at before spending hours training."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from maskdet.config import labels_dir_for
from maskdet.data.check import CheckReport, size_bin_labels
from maskdet.data.labels import read_label_file
from maskdet.fileio import atomic_write_bytes
from maskdet.inference.sources import SourceError, read_image
from maskdet.inference.visualize import NAMED_COLORS, class_color, draw_box, tile


def split_table(report: CheckReport) -> pd.DataFrame:
    """One row per split: images, backgrounds, boxes per class, boxes per image."""
    names = report.config.names
    rows = {}
    for split, s in report.splits.items():
        mean = s.total_boxes / s.images if s.images else 0.0
        row = {"images": s.images, "backgrounds": s.backgrounds, "unusable": s.unusable_images, "boxes": s.total_boxes}
        row.update({name: s.boxes[i] for i, name in enumerate(names)})
        row.update({"boxes/img": round(mean, 1), "max/img": s.max_boxes_per_image})
        rows[split] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def size_table(report: CheckReport) -> pd.DataFrame:
    """Boxes per class by side length in pixels, all splits together."""
    names = report.config.names
    labels = size_bin_labels()
    data = {name: [0] * len(labels) for name in names}
    for s in report.splits.values():
        for cls, bins in s.size_bins.items():
            if cls < len(names):
                for b, n in bins.items():
                    data[names[cls]][b] += n
    return pd.DataFrame(data, index=labels).T


def write_class_balance_plot(report: CheckReport, path: Path) -> None:
    """Grouped bars of boxes per class and split, with the counts written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report.config.names
    splits = list(report.splits)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(names))
    for k, split in enumerate(splits):
        counts = [report.splits[split].boxes[i] for i in range(len(names))]
        bars = ax.bar(x + (k - (len(splits) - 1) / 2) * width, counts, width, label=split)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("boxes")
    ax.set_title("Class balance (boxes per class and split)")
    ax.legend()
    sizes = size_table(report)
    bottom = np.zeros(sizes.shape[1])
    for name, row in sizes.iterrows():
        bgr = NAMED_COLORS.get(name)
        color = None if bgr is None else tuple(c / 255 for c in bgr[::-1])
        ax2.bar(sizes.columns, row.values, bottom=bottom, label=name, color=color)
        bottom += row.values
    ax2.set_title("Box size (side in pixels)")
    ax2.tick_params(axis="x", labelrotation=30)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def render_preview(image_path: Path, names: tuple[str, ...]) -> np.ndarray | None:
    """The image with its labels drawn, or None if it cannot be read, decoded, or is over the pixel limit (a
    dataset's photo is outside input: bounded before it is decoded)."""
    try:
        image = read_image(image_path)
    except SourceError:
        return None
    h, w = image.shape[:2]
    label = read_label_file(labels_dir_for(image_path.parent) / f"{image_path.stem}.txt", len(names))
    thickness = max(1, round(max(h, w) / 400))
    for b in label.boxes:
        x1, y1, x2, y2 = b.edges
        draw_box(image, (x1 * w, y1 * h, x2 * w, y2 * h), class_color(b.cls, names), names[b.cls], thickness)
    return image


def write_previews(report: CheckReport, out_dir: Path) -> list[Path]:
    """One 3x3 mosaic per split, like Ultralytics' train_batch*.jpg, chosen to show every class."""
    written = []
    for split, stats in report.splits.items():
        images = [im for im in (render_preview(p, report.config.names) for p in stats.previews) if im is not None]
        if not images:
            continue
        ok, encoded = cv2.imencode(".jpg", tile(images), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            path = out_dir / f"preview_{split}.jpg"
            atomic_write_bytes(path, encoded.tobytes())
            written.append(path)
    return written
