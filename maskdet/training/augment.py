"""Training augmentation that looks like a real camera: blur, compression, exposure and colour.

Kaggle photos are sharp, well exposed stills; CCTV frames are soft, dark or blown out, heavily
compressed and colour cast. Ultralytics applies Albumentations transforms to every training image
when the `albumentations` package is installed and `augmentations=` lists them; these are the ones
a camera produces, each with probability `p` (about that share of images gets each corruption,
independently). Rotation is Ultralytics' own `degrees=` setting, not part of this list.
"""

from __future__ import annotations

from maskdet.errors import UserError


def camera_augmentations(p: float) -> list:
    """Albumentations transforms for camera-like corruptions, each applied with probability `p`."""
    if not 0.0 < p <= 1.0:
        raise UserError(f"--camera-aug must be in (0, 1], got {p}")
    try:
        import albumentations as A
    except ImportError as error:
        raise UserError("--camera-aug needs 'albumentations': pip install -r requirements-train.txt") from error
    return [
        A.OneOf([A.GaussianBlur(blur_limit=(3, 9)), A.MotionBlur(blur_limit=(3, 11))], p=p),
        A.ImageCompression(quality_range=(15, 60), p=p),
        A.RandomBrightnessContrast(brightness_limit=0.5, contrast_limit=(-0.6, 0.2), p=p),
        A.Downscale(scale_range=(0.4, 0.8), p=p / 2),
        A.RGBShift(r_shift_limit=30, g_shift_limit=30, b_shift_limit=30, p=p / 2),
        A.ToGray(p=0.02),
    ]
