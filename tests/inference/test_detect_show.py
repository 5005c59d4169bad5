"""--show in a virtual X server (Xvfb): the window shows the boxes in the class colours and the FPS/counts
panel, and pressing q closes it and ends detect.py cleanly. xdotool is the user's keyboard and an
ImageMagick screenshot the user's eyes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.inference.visualize import NAMED_COLORS

pytestmark = pytest.mark.gui

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virtual_display import virtual_display  # noqa: E402

SCREEN = (640, 480)
FRAME_SIZE = (320, 240)
BOX = (40, 30, 200, 200)  # the one with_mask box the scripted model reports, in frame pixels


@pytest.fixture(scope="module")
def display(tmp_path_factory) -> Iterator[str]:
    """A fresh Xvfb on a display number no other X server uses, once it accepts connections."""
    missing = [tool for tool in ("Xvfb", "xdotool", "import") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install xvfb xdotool imagemagick)")
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    try:
        with virtual_display(log, SCREEN) as display:
            yield display
    except RuntimeError as exc:  # it did not start: a failure (the packages are there), with its log
        pytest.fail(str(exc))


def x(display: str, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DISPLAY": display}, stdin=subprocess.DEVNULL)


def near(image_bgr: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 30) -> np.ndarray:
    return np.abs(image_bgr.astype(int) - bgr).max(axis=2) <= tolerance


def test_show_draws_boxes_and_the_panel_and_q_quits(display, detect, background, stream_server, make_video,
                                                    scripted_model, tmp_path, kit):
    # A live source keeps the window up for as long as the test needs it.
    server = stream_server(make_video(tmp_path / "scene.mp4", frames=50, size=FRAME_SIZE))
    weights = scripted_model([(*BOX, 0, 0.9)], image_wh=FRAME_SIZE, imgsz=320)
    proc = background(detect.argv("--source", server.url, "--weights", weights, "--show", "--line-thickness", "3",
                                  "--nosave", "--stream-timeout", "10"), "detect", env={"DISPLAY": display})

    def window() -> str | None:
        found = x(display, "xdotool", "search", "--name", "^maskdet").stdout.split()
        return found[0] if found else None
    kit.wait_for(lambda: window() or not proc.running(), 60, message="the detect window")
    assert proc.running(), proc.stderr[-3000:]
    win = window()
    assert x(display, "xdotool", "getwindowname", win).stdout.strip() == f"maskdet: {server.url}"

    # What the user sees, once some frames have been shown.
    kit.wait_for(lambda: proc.stdout.count(" frame ") >= 10 or not proc.running(), 30, message="frames on screen")
    time.sleep(0.5)
    shot_path = tmp_path / "screen.png"
    shot = x(display, "import", "-window", "root", str(shot_path))
    assert shot.returncode == 0, shot.stderr
    screen = cv2.imread(str(shot_path))
    assert screen is not None and screen.shape[:2] == (480, 640)

    # The box: a rectangle of with_mask green with long straight edges (scaled to the window, so no exact pixels).
    green = near(screen, NAMED_COLORS["with_mask"])
    assert green.sum() > 200, "no with_mask box on screen"
    assert green.sum(axis=1).max() >= 60 and green.sum(axis=0).max() >= 60, "the green pixels should form a box outline"
    # The panel: the per-class counts in their colours; only the panel uses these two (no such boxes).
    red_text = near(screen, NAMED_COLORS["without_mask"])
    amber_text = near(screen, NAMED_COLORS["mask_weared_incorrect"])
    assert red_text.sum() >= 15 and amber_text.sum() >= 15, "no FPS/count panel on screen"
    ys, xs = np.nonzero(red_text | amber_text)
    gy, gx = np.nonzero(green)
    assert ys.max() < gy.max() and xs.min() < gx.max(), "the panel sits in the top-left corner of the image"

    # q closes the window and ends the run normally.
    x(display, "xdotool", "windowfocus", "--sync", win)
    x(display, "xdotool", "key", "q")
    assert proc.wait(timeout=20) == 0, proc.stderr[-3000:]
    kit.assert_clean_stderr(proc.stderr)
    assert "stopped from the window" in proc.stderr
    assert "results saved to" in proc.stdout
    assert not x(display, "xdotool", "search", "--name", "^maskdet").stdout.strip(), "the window should be gone"
