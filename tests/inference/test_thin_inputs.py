"""A strip of an image or video, a pixel or two thick, is an input like any other: looked at, found to hold no
face, and counted, where it used to end the run with OpenCV's traceback from the letterbox's resize (its
thin side scaled to 0 pixels)."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from maskdet.inference.detectors import letterbox


@pytest.mark.parametrize("height, width", [(1, 5000), (5000, 1), (2, 6000), (1, 1)])
def test_the_letterbox_keeps_every_side_at_least_a_pixel(height, width):
    padded, _scale, _offset = letterbox(np.full((height, width, 3), 200, np.uint8), 640)
    assert padded.shape == (640, 640, 3)
    assert (padded == 200).any(), "the strip itself is in the model's input, not only the grey padding"


def test_thin_images_and_a_thin_video_among_normal_photos_are_all_processed(detect, scripted_model, make_images,
                                                                           tmp_path, kit):
    folder = tmp_path / "in"
    make_images(folder, n=1)
    assert cv2.imwrite(str(folder / "wide.png"), np.full((1, 5000, 3), 128, np.uint8))
    assert cv2.imwrite(str(folder / "tall.png"), np.full((5000, 1, 3), 128, np.uint8))
    inputs = 3
    if shutil.which("ffmpeg") is not None:
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
                        "color=c=gray:s=2x6000:r=10:d=0.3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                        "yuv420p", str(folder / "strip.mp4")], check=True, timeout=60)
        inputs += 1
    proc = detect("--source", folder, "--weights", scripted_model([]), "--save-csv")
    kit.assert_clean_stderr(proc.stderr)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"from {inputs} inputs" in proc.stdout and "problems:" not in proc.stdout, proc.stdout
    for name in ("wide.png", "tall.png"):
        assert f"{folder / name}: (no detections)" in proc.stdout, proc.stdout
