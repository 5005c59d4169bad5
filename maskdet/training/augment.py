"""Training augmentation that looks like a real camera: blur, compression, exposure, resolution, colour.

Kaggle photos are sharp, well exposed stills; CCTV frames are soft, dark or blown out, heavily
compressed and colour cast (bench/robustness.py measures what that costs: motion blur and JPEG at
quality 20 cost the shipped model 0.25-0.36 mAP50 on val). `CameraCorruption` degrades a training
image the way a camera does, each corruption with probability `p`, after Ultralytics' own geometric
augmentation (rotation is its `degrees=` setting) and before the image becomes a tensor. It changes
pixels only, so boxes stay where they are.

It is plain OpenCV and NumPy: Albumentations would do the same but pulls opencv-python-headless,
which replaces the opencv-python build that `detect.py --show` and labelImg's windows need.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maskdet.errors import UserError

SETTINGS_FILE = "camera_aug.txt"  # in the run folder, so --resume keeps the augmentation


def check_probability(p: float) -> float:
    if not 0.0 < p <= 1.0:
        raise UserError(f"--camera-aug must be in (0, 1], got {p}")
    return p


class CameraCorruption:
    """An Ultralytics transform: labels dict in, labels dict out, with labels['img'] degraded."""

    def __init__(self, p: float, seed: int | None = None):
        self.p = check_probability(p)
        self.rng = np.random.default_rng(seed)

    def __call__(self, labels: dict) -> dict:
        labels["img"] = self.corrupt(labels["img"])
        return labels

    def chance(self, share: float = 1.0) -> bool:
        return bool(self.rng.random() < self.p * share)

    def corrupt(self, image: np.ndarray) -> np.ndarray:
        rng = self.rng
        # Blur reaches past bench/robustness.py's severities (sigma 2 and a 9-px pan on the ~400-px
        # Kaggle photos, which training enlarges about 1.6x, so sigma ~3 and ~15 px at 640).
        if self.chance():  # defocus or motion, never both
            if rng.random() < 0.5:
                image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 4.0)))
            else:
                length = int(rng.integers(3, 18))
                kernel = np.zeros((length, length), np.float32)
                kernel[length // 2] = 1.0 / length
                rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
                kernel = cv2.warpAffine(kernel, rotation, (length, length))
                image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
        if self.chance(0.5):  # a lower-resolution sensor, upscaled back
            h, w = image.shape[:2]
            scale = float(rng.uniform(0.4, 0.8))
            small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.chance():  # exposure and contrast
            gain = float(rng.uniform(0.5, 1.5))
            contrast = float(rng.uniform(0.4, 1.2))
            mean = image.mean()
            image = np.clip((image.astype(np.float32) - mean) * contrast + mean * gain, 0, 255).astype(np.uint8)
        if self.chance(0.5):  # a colour cast (lamps, white balance)
            shift = rng.uniform(-30, 30, 3).astype(np.float32)
            image = np.clip(image.astype(np.float32) + shift, 0, 255).astype(np.uint8)
        if self.chance():  # the stream's compression, last as in a camera
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else image
        return np.ascontiguousarray(image)


def add_camera_corruption(dataset, p: float) -> None:
    """Put CameraCorruption into a YOLODataset's transforms, before the final Format, now and whenever
    the dataset rebuilds them (Ultralytics does when it closes mosaic for the last epochs)."""
    build = dataset.build_transforms

    def with_camera(transforms):
        transforms.insert(len(transforms.transforms) - 1, CameraCorruption(p))
        return transforms

    dataset.build_transforms = lambda hyp: with_camera(build(hyp))
    with_camera(dataset.transforms)


def camera_trainer(p: float):
    """A DetectionTrainer subclass whose train split gets CameraCorruption (pass as YOLO.train(trainer=...))."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    check_probability(p)

    class CameraAugTrainer(DetectionTrainer):
        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
            dataset = super().build_dataset(img_path, mode, batch)
            if mode == "train":
                add_camera_corruption(dataset, p)
            return dataset

    return CameraAugTrainer


def saved_probability(run_dir: Path) -> float:
    """The --camera-aug a run was started with (0 if none), for --resume."""
    path = Path(run_dir) / SETTINGS_FILE
    return float(path.read_text().strip()) if path.is_file() else 0.0
