"""labeling/label.py driving the real labelImg window in a virtual X server (Xvfb), with xdotool as
the user's mouse and keyboard and screenshots (Pillow) as the user's eyes.

labelImg 1.8.6 dies on Python 3.10+ the moment the pointer enters the canvas in create mode, and on
the mouse wheel; these tests do what a user does and check the YOLO file, the window and stderr.
Skipped without Xvfb and xdotool. On a bare Debian 12 image, Qt's xcb platform plugin and a font need:
apt-get install xvfb xdotool libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
libxcb-sync1 libxcb-shm0 libxcb-render0 libxcb-glx0 libx11-xcb1 libxext6 libgl1 libegl1
libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 fonts-dejavu-core
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

pytestmark = pytest.mark.gui

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virtual_display import stop, virtual_display  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
# Colours nothing in labelImg's window uses, to find the image (and a landmark in it) on screen.
IMAGE_GREEN = (40, 160, 90)
LANDMARK_RED = (200, 50, 50)
IMAGE_SIZE = (320, 240)
LANDMARK_BOX = (100, 60, 200, 160)  # x0, y0, x1, y1 in image pixels
STARTUP_TIMEOUT = 45.0  # PyQt5 + labelImg start on a busy 2-core machine
STEP_TIMEOUT = 15.0
SCREEN = (1280, 1000)  # an unusual size, to check that clients reach our server and not another one

T = TypeVar("T")


# --- the X server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh Xvfb for this module's tests."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install xvfb xdotool)")
    from PIL import features

    if not features.check("xcb"):
        pytest.skip("Pillow was built without XCB, so it cannot take screenshots of the X server")
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    try:
        with virtual_display(log, SCREEN) as display:
            yield display
    except RuntimeError as exc:  # it did not start: a failure (the packages are there), with its log
        pytest.fail(str(exc))


# --- labelImg as a user sees it ----------------------------------------------------------------


@dataclass(frozen=True)
class OnScreen:
    """A rectangle found on screen, in screen pixels (right/bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def point(self, fx: float, fy: float) -> tuple[int, int]:
        """The screen pixel at a fraction of the rectangle."""
        return round(self.left + fx * self.width), round(self.top + fy * self.height)

    def fraction(self, x: int, y: int) -> tuple[float, float]:
        return (x - self.left) / self.width, (y - self.top) / self.height


class LabelImg:
    """One labelImg process started by labeling/label.py, and xdotool/screenshot helpers around it."""

    def __init__(self, proc: subprocess.Popen, display: str, workdir: Path):
        self.proc = proc
        self.display = display
        self.workdir = workdir
        self.main_window = ""

    # process

    def stderr(self) -> str:
        return (self.workdir / "stderr.txt").read_text(errors="replace")

    def assert_healthy(self) -> None:
        assert self.proc.poll() is None, f"labelImg exited with {self.proc.returncode}:\n{self.stderr()[-3000:]}"
        assert "Traceback" not in self.stderr(), self.stderr()[-3000:]

    def wait_until(self, condition: Callable[[], T], what: str, timeout: float = STEP_TIMEOUT) -> T:
        """Poll condition until it returns something truthy; fail at once if labelImg dies."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(f"labelImg died (exit {self.proc.returncode}) while waiting for {what}:\n{self.stderr()[-3000:]}")
            if time.monotonic() > deadline:
                shot = self.workdir / "timeout.png"
                self.screenshot_image().save(shot)
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (screenshot: {shot}); "
                            f"stderr:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)

    # X

    def xdotool(self, *args: str | int, check: bool = True) -> str:
        proc = subprocess.run(["xdotool", *map(str, args)], env={**os.environ, "DISPLAY": self.display},
                              capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(map(str, args))} failed: {proc.stderr}")
        return proc.stdout

    def visible_windows(self) -> list[str]:
        # exit status 1 just means none yet
        return self.xdotool("search", "--onlyvisible", "--pid", self.proc.pid, check=False).split()

    def dialogs(self) -> list[str]:
        """labelImg's visible dialog windows. Tooltips and the completer popup are top-level windows too
        (also named "labelImg"), but small: a tooltip shows after the pointer rests on the canvas."""
        found = []
        for window in self.visible_windows():
            if window == self.main_window:
                continue
            shell = self.xdotool("getwindowgeometry", "--shell", window, check=False)
            geometry = dict(line.split("=", 1) for line in shell.split())
            if int(geometry.get("HEIGHT", 0)) >= 120:
                found.append(window)
        return found

    def window_named(self, name: str) -> str | None:
        found = self.xdotool("search", "--onlyvisible", "--name", name, check=False).split()
        return found[0] if found else None

    def focus(self, window: str) -> None:
        """Without a window manager nothing gives focus back when a dialog closes: set it each time."""
        self.xdotool("windowfocus", "--sync", window)

    def key(self, *keys: str, window: str | None = None) -> None:
        self.focus(window or self.main_window)
        self.xdotool("key", *keys)

    def drag(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        self.xdotool("mousemove", *start, "mousedown", 1, "mousemove", (start[0] + end[0]) // 2, (start[1] + end[1]) // 2,
                     "mousemove", *end, "mouseup", 1)

    # screen

    def screenshot_image(self):
        from PIL import ImageGrab

        return ImageGrab.grab(xdisplay=self.display).convert("RGB")

    def find(self, colour: tuple[int, int, int]) -> OnScreen | None:
        """Bounding box of the pixels of exactly this colour (interior pixels of a scaled image keep it)."""
        pixels = np.asarray(self.screenshot_image(), dtype=np.int16)
        ys, xs = np.nonzero(np.abs(pixels - np.array(colour, dtype=np.int16)).sum(axis=2) <= 6)
        if xs.size < 100:
            return None
        return OnScreen(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    def settled(self, colour: tuple[int, int, int],
                accept: Callable[[OnScreen], bool] = lambda box: True) -> Callable[[], OnScreen | None]:
        """A condition: the colour's box, once two screenshots in a row agree (the repaint is done) and accept() it."""
        previous: list[OnScreen | None] = [None]

        def check() -> OnScreen | None:
            box = self.find(colour)
            stable = box is not None and box == previous[0] and accept(box)
            previous[0] = box
            return box if stable else None

        return check

    # labelImg

    def open(self, image_name: str) -> None:
        """Wait for the main window showing image_name."""
        def main_window() -> str | None:
            for window in self.visible_windows():
                if image_name in self.xdotool("getwindowname", window, check=False):
                    return window
            return None

        self.main_window = self.wait_until(main_window, f"labelImg's window with {image_name}", STARTUP_TIMEOUT)

    def choose_class(self, name: str, done: Callable[[], object] | None = None) -> None:
        """Type the class into labelImg's label dialog and accept it. The first Return may only close the
        completer popup (it lists data.yaml names that start with what was typed). Done when done()
        is truthy (default: no dialog left)."""
        done = done or (lambda: not self.dialogs())
        (dialog,) = self.wait_until(self.dialogs, "the label dialog")
        self.focus(dialog)
        self.xdotool("type", "--delay", 20, name)
        for _ in range(4):
            self.xdotool("key", "Return")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if done():
                    return
                time.sleep(0.1)
            self.assert_healthy()
            if dialog not in self.visible_windows():  # accepted: what it leads to is slow to show on a busy machine
                self.wait_until(done, "what accepting the label dialog leads to")
                return
            self.focus(dialog)
        pytest.fail(f"the label dialog did not close; stderr:\n{self.stderr()[-2000:]}")

    def draw_box(self, image: OnScreen, start: tuple[float, float], end: tuple[float, float], class_name: str) -> tuple:
        """Press w, drag from start to end (fractions of the image), pick the class; returns the screen points."""
        self.key("w")
        p0, p1 = image.point(*start), image.point(*end)
        self.xdotool("mousemove", *p0)
        self.drag(p0, p1)
        self.choose_class(class_name)
        return p0, p1

    def save(self, label_file: Path, boxes: int) -> str:
        """Ctrl+S, then wait for the label file to hold `boxes` complete lines (labelImg writes it in place)."""
        self.key("ctrl+s")

        def saved() -> str | None:
            text = label_file.read_text() if label_file.is_file() else ""
            complete = text.endswith("\n") and all(len(line.split()) == 5 for line in text.splitlines())
            return text if complete and len(text.splitlines()) == boxes else None

        return self.wait_until(saved, f"{label_file.name} to be saved with {boxes} box(es)")


@contextmanager
def labelimg(display: str, tmp_path: Path, *args: str | Path) -> Iterator[LabelImg]:
    """Start labeling/label.py as a user would, with a fresh HOME (labelImg keeps settings in
    ~/.labelImgSettings.pkl); always stopped at the end."""
    home = tmp_path / "home"
    runtime = home / "runtime"
    runtime.mkdir(parents=True)
    runtime.chmod(0o700)
    env = {**os.environ, "DISPLAY": display, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("QT_QPA_PLATFORM", None)  # a CI setting of offscreen would hide the window from X
    with open(tmp_path / "stdout.txt", "wb") as out, open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "labeling" / "label.py"), *map(str, args)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=tmp_path)
    try:
        yield LabelImg(proc, display, tmp_path)
    finally:
        stop(proc)


def write_images(folder: Path) -> Path:
    """a.png: green with a red landmark square; b.png: a second image so labelImg has a file list."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    image = Image.new("RGB", IMAGE_SIZE, IMAGE_GREEN)
    x0, y0, x1, y1 = LANDMARK_BOX
    ImageDraw.Draw(image).rectangle([x0, y0, x1 - 1, y1 - 1], fill=LANDMARK_RED)
    image.save(folder / "a.png")
    Image.new("RGB", (200, 300), (50, 90, 200)).save(folder / "b.png")
    return folder


def parse_yolo(text: str) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in text.splitlines():
        class_id, *numbers = line.split()
        rows.append((int(class_id), *map(float, numbers)))
    return rows


# --- tests -------------------------------------------------------------------------------------


def test_draw_save_zoom_scroll_in_real_labelimg(display: str, tmp_path: Path):
    images = write_images(tmp_path / "images")
    labels = tmp_path / "labels"
    with labelimg(display, tmp_path, "--images", images, "--labels", labels) as app:
        app.open("a.png")
        # A bigger window and Fit Window (Ctrl+F) make the image large: finer drag positions.
        app.xdotool("windowsize", app.main_window, 1100, 900)
        app.key("ctrl+f")
        image = app.wait_until(app.settled(IMAGE_GREEN, lambda box: box.width > 500), "the image fitted to the window")
        assert image.width / image.height == pytest.approx(IMAGE_SIZE[0] / IMAGE_SIZE[1], abs=0.02)

        # Draw in the lower-right quadrant: the crosshair and rubber band are where 1.8.6 crashed.
        start, end = app.draw_box(image, (0.55, 0.60), (0.85, 0.90), "mask_weared_incorrect")
        text = app.save(labels / "a.txt", boxes=1)
        ((class_id, cx, cy, w, h),) = parse_yolo(text)
        assert class_id == NAMES.index("mask_weared_incorrect")
        (x0, y0), (x1, y1) = image.fraction(*start), image.fraction(*end)
        # One screen pixel is 1/width of the image; the image edge found on screen may be 1 px off.
        tolerance = 3 / min(image.width, image.height)
        assert (cx, cy, w, h) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), abs=tolerance)
        assert cx > 0.5 and cy > 0.5
        assert (labels / "classes.txt").read_text().split() == list(NAMES)
        app.assert_healthy()

        # Ctrl+wheel zooms (MainWindow.zoom_request): the landmark grows by 10 % points of zoom per notch.
        landmark = app.wait_until(app.settled(LANDMARK_RED), "the landmark square")
        app.xdotool("mousemove", *image.point(0.4, 0.4), "keydown", "ctrl", "click", 4, "click", 4, "keyup", "ctrl")
        zoomed = app.wait_until(app.settled(LANDMARK_RED, lambda box: box.width > landmark.width * 1.03), "Ctrl+wheel to zoom in")
        # The wheel scrolls (MainWindow.scroll_request): up and down (no room to scroll at this zoom), then
        # buttons 6/7, the horizontal wheel: all the way left, and right again.
        app.xdotool("click", 5, "click", 4, "click", 6, "click", 6, "click", 6, "click", 6)
        leftmost = app.wait_until(app.settled(LANDMARK_RED, lambda box: box.left >= zoomed.left), "the wheel to scroll left")
        app.xdotool("click", 7, "click", 7)
        app.wait_until(app.settled(LANDMARK_RED, lambda box: box.left < leftmost.left), "the wheel to scroll right")
        # Pan (drag on the image outside the box), View > Display Labels (text drawn at float positions).
        app.drag(image.point(0.3, 0.2), image.point(0.2, 0.15))
        app.key("ctrl+shift+p")
        # Ctrl+= is Original Size: 100 % once everything before it has been handled.
        app.key("ctrl+equal")
        size = LANDMARK_BOX[2] - LANDMARK_BOX[0], LANDMARK_BOX[3] - LANDMARK_BOX[1]
        app.wait_until(app.settled(LANDMARK_RED, lambda box: abs(box.width - size[0]) <= 2 and abs(box.height - size[1]) <= 2),
                       "Ctrl+= to show the image at 100 %")
        app.assert_healthy()
        assert "Traceback" not in (tmp_path / "stdout.txt").read_text(errors="replace")


def test_a_typed_class_not_in_data_yaml_is_refused_before_anything_is_written(display: str, tmp_path: Path):
    images = write_images(tmp_path / "images")
    labels = tmp_path / "labels"
    with labelimg(display, tmp_path, "--images", images, "--labels", labels) as app:
        app.open("a.png")
        image = app.wait_until(app.settled(IMAGE_GREEN), "the image")
        app.key("w")
        p0, p1 = image.point(0.1, 0.15), image.point(0.45, 0.5)
        app.xdotool("mousemove", *p0)
        app.drag(p0, p1)
        # A name that is not in data.yaml: unfixed, labelImg appended it to its class list (id 3) and
        # the warning came only after Ctrl+S had written that id.
        app.choose_class("face_shield", done=lambda: app.window_named("Not a class of data.yaml"))
        warning = app.window_named("Not a class of data.yaml")
        assert not (labels / "a.txt").exists()
        assert (labels / "classes.txt").read_text().split() == list(NAMES)
        line = app.wait_until(lambda: next((x for x in app.stderr().splitlines() if x.startswith("warning:")), None),
                              "the warning on stderr")
        assert "face_shield" in line and "with_mask, without_mask, mask_weared_incorrect" in line
        app.key("Return", window=warning)
        # The label dialog comes back with the typed name selected: typing replaces it.
        app.choose_class("without_mask")
        text = app.save(labels / "a.txt", boxes=1)
        assert parse_yolo(text)[0][0] == NAMES.index("without_mask")
        assert (labels / "classes.txt").read_text().split() == list(NAMES)
        app.assert_healthy()


def test_a_stale_classes_txt_that_no_label_uses_opens_and_is_rewritten(display: str, tmp_path: Path):
    """After a face_shield box was relabelled, classes.txt still listed face_shield: the next launch
    was refused although no label used it."""
    images = write_images(tmp_path / "images")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("".join(f"{n}\n" for n in (*NAMES, "face_shield")))
    (labels / "a.txt").write_text("0 0.468750 0.458333 0.312500 0.416667\n")
    with labelimg(display, tmp_path, "--images", images, "--labels", labels) as app:
        app.open("a.png")
        app.assert_healthy()
        assert (labels / "classes.txt").read_text().split() == list(NAMES)
        assert "no label here uses an id whose class differs" in (tmp_path / "stdout.txt").read_text()


def test_order_opens_the_least_certain_photo_first(display: str, tmp_path: Path):
    from maskdet.data.review import ReviewItem, write_review_order

    images = write_images(tmp_path / "images")  # labelImg alone opens a.png first, then b.png
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "b.txt").write_text("1 0.5 0.5 0.4 0.3\n")  # b's pre-label: labelImg shows it
    review = tmp_path / "runs" / "prelabel" / "exp" / "review.txt"
    write_review_order(review, [ReviewItem("a.png", 0.1, 1, "with_mask 0.90"), ReviewItem("b.png", 0.95, 1, "without_mask 0.37")])
    with labelimg(display, tmp_path, "--images", images, "--labels", labels, "--order", review) as app:
        app.open("b.png")
        assert "a.png" not in app.xdotool("getwindowname", app.main_window)
        app.key("d")  # next image: the next in the review order
        app.wait_until(lambda: "a.png" in app.xdotool("getwindowname", app.main_window, check=False), "a.png to open after b.png")
        app.assert_healthy()
    assert "review order: 2 photos" in (tmp_path / "stdout.txt").read_text()
