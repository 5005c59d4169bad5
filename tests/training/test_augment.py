"""train.py --camera-aug: camera-like corruptions for training photos, range-checked."""

import numpy as np
import pytest

from maskdet.errors import UserError
from maskdet.training.augment import camera_augmentations

pytest.importorskip("albumentations")


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_a_probability_outside_0_to_1_is_refused(p):
    with pytest.raises(UserError, match="--camera-aug"):
        camera_augmentations(p)


def test_every_transform_changes_pixels_only_never_boxes():
    import albumentations as A

    transforms = camera_augmentations(1.0)
    assert all(not isinstance(t, A.DualTransform) for t in transforms), "a spatial transform would move boxes"


def test_at_full_probability_a_photo_comes_out_degraded():
    import albumentations as A

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    out = A.Compose(camera_augmentations(1.0))(image=image)["image"]
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() > 5
