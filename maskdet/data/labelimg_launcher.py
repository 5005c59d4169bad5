"""Open the real labelImg 1.8.6 (from PyPI) set up for this project, and keep it working on Python 3.10+.

labelImg is used as installed, never forked or copied. Everything here happens at runtime, on the
one window this module creates:

* YOLO is the save format (and stays so), the class list is data.yaml's, labels go to --labels.
* Python 3.10 stopped turning floats into ints implicitly (bpo-37999) and labelImg 1.8.6 passes
  floats to Qt methods that take ints, so it dies with a TypeError as soon as a box is drawn, the
  wheel scrolls or Ctrl+wheel zooms. `install_float_fixes` wraps exactly those Qt methods on the
  objects labelImg calls them on; `FLOAT_FIX_SITES` lists each call site and why.
* labelImg rewrites classes.txt from its own class list on every YOLO save, and a name typed into
  its label dialog is appended to that list: boxes then get an id data.yaml does not have. Such a
  name is refused at the dialog, before anything is written; classes.txt is also compared with
  data.yaml before launch (by the ids the labels use) and after every save.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

from maskdet.config import class_list_mismatch, read_class_list
from maskdet.data.convert import write_classes_txt
from maskdet.data.labels import read_label_file
from maskdet.data.review import apply_order
from maskdet.errors import UserError
from maskdet.fileio import is_image

CLASSES_TXT = "classes.txt"
UNKNOWN_CLASS_TITLE = "Not a class of data.yaml"
NO_FIX_ENV = "MASKDET_LABELIMG_NO_FIX"  # set to 1 to run labelImg unfixed (to see whether a problem is ours)

# Where labelImg 1.8.6 hands a float to a Qt method that only takes ints, and what install_float_fixes does.
FLOAT_FIX_SITES = (
    "libs/canvas.py Canvas.paintEvent: painter.drawRect(x, y, w, h) rubber band while dragging a box -> QRectF",
    "libs/canvas.py Canvas.paintEvent: painter.drawLine(x1, y1, x2, y2) crosshair in create mode -> QLineF",
    "libs/shape.py Shape.paint: painter.drawText(x, y, label) with View > Display Labels on -> QPointF",
    "labelImg.py MainWindow.scroll_request: QScrollBar.setValue(float) on the mouse wheel -> rounded",
    "labelImg.py MainWindow.zoom_request: QScrollBar.setValue(float) on Ctrl+wheel -> rounded",
    "labelImg.py MainWindow.set_zoom: ZoomWidget (QSpinBox).setValue(float) on Ctrl+wheel -> rounded",
    "libs/canvas.py Canvas.mouseMoveEvent: scrollRequest(int, int).emit(float) when panning; PyQt5 passes "
    "garbage instead of failing, so the view jumps -> rounded",
)


# ---------------------------------------------------------------------------------------------
# Checks that run before any window opens (no Qt needed).


def has_images(folder: Path) -> bool:
    """labelImg walks sub-folders too, so any image below folder counts."""
    return any(p.is_file() and is_image(p) for p in folder.rglob("*"))


def classes_txt_problem(labels_dir: Path, expected: tuple[str, ...]) -> str | None:
    """How labels_dir/classes.txt disagrees with data.yaml's class list, or None (also when it is absent)."""
    path = labels_dir / CLASSES_TXT
    if not path.is_file():
        return None
    try:
        found = read_class_list(path)
    except UserError as exc:
        return f"cannot read it ({exc})"
    return class_list_mismatch(found, expected)


def class_ids_in_use(labels_dir: Path) -> dict[int, str]:
    """Each class id the YOLO label files in labels_dir use, with where it is first used (file:line)."""
    used: dict[int, str] = {}
    for label_file in sorted(labels_dir.glob("*.txt")):
        if label_file.name == CLASSES_TXT:
            continue
        for line in read_label_file(label_file).lines:
            if line.box is not None:
                used.setdefault(line.box.cls, f"{label_file.name}:{line.number}")
    return used


def ids_meaning_another_class(found: list[str], expected: tuple[str, ...], used: dict[int, str]) -> dict[int, str]:
    """The used ids that name another class (or none) in classes.txt than in data.yaml: the boxes whose
    class changes when classes.txt is made data.yaml's."""
    def name(names: list[str] | tuple[str, ...], class_id: int) -> str | None:
        return names[class_id] if class_id < len(names) else None

    return {i: where for i, where in sorted(used.items()) if name(found, i) != name(expected, i)}


def check_classes_txt(labels_dir: Path, expected: tuple[str, ...], force: bool, echo: Callable[[str], None] = print,
                      again: str = "launch again") -> bool:
    """Compare labels_dir/classes.txt with data.yaml by what the labels there actually use.

    Returns True when classes.txt disagrees but no label uses an id whose class would change: it is
    then safe to rewrite it from data.yaml (prepare_labels_dir does). Refuses (UserError), unless
    force, when some labels use such ids: labelImg would show them with classes.txt's names, and its
    first save rewrites classes.txt from data.yaml's list, after which those boxes change class.
    `again` is what the refusal tells the person to do once those lines are fixed; "launch again"
    also offers labelImg's --force.
    """
    problem = classes_txt_problem(labels_dir, expected)
    if problem is None:
        return False
    where = labels_dir / CLASSES_TXT
    found = read_class_list(where)
    wrong = ids_meaning_another_class(found, expected, class_ids_in_use(labels_dir))
    if not wrong:
        echo(f"note: {where}: disagrees with data.yaml ({problem}), but no label here uses an id whose class differs: "
             f"it is rewritten from data.yaml")
        return True
    uses = ", ".join(f"{at} (id {i}: '{found[i] if i < len(found) else '?'}' here)" for i, at in wrong.items())
    if not force:
        ids = ", ".join(f"{i} {n}" for i, n in enumerate(expected))
        raise UserError(f"disagrees with data.yaml ({problem}), and labels here use ids that mean another class in "
                        f"data.yaml: first uses {uses}. Edit those lines to a data.yaml id ({ids}) or delete them, "
                        f"then {again}" + ("; or pass --force to open anyway (labelImg's first save rewrites "
                        "classes.txt from data.yaml, after which those boxes show as other classes)"
                        if again == "launch again" else ""), where)
    echo(f"warning: {where}: disagrees with data.yaml ({problem}), used by {uses}; opening anyway because of --force")
    return False


def prepare_labels_dir(labels_dir: Path, expected: tuple[str, ...], echo: Callable[[str], None] = print,
                       rewrite_classes_txt: bool = False) -> None:
    """Create labels_dir if needed and give it a classes.txt: YOLO labels without one crash labelImg
    (FileNotFoundError) when their image opens, and in this project label ids are data.yaml's.
    rewrite_classes_txt replaces a stale one (check_classes_txt says when that is safe).
    Also point out Pascal VOC files, which labelImg prefers over the YOLO ones."""
    if not labels_dir.is_dir():
        labels_dir.mkdir()
        echo(f"created {labels_dir}")
    if rewrite_classes_txt or not (labels_dir / CLASSES_TXT).exists():
        write_classes_txt(labels_dir, expected)
        echo(f"wrote {labels_dir / CLASSES_TXT} from data.yaml (labelImg needs it to open YOLO labels)")
    voc_files = sum(1 for _ in labels_dir.glob("*.xml"))
    if voc_files:
        echo(f"note: {voc_files} Pascal VOC .xml files in {labels_dir}: labelImg shows an image's .xml boxes "
             f"instead of its .txt ones, so saved edits seem lost when you come back. Convert them first "
             f"(python labeling/voc2yolo.py) or use another --labels folder")


def foreign_boxes(label_file: Path, class_list: list[str], expected: tuple[str, ...]) -> list[str]:
    """Class names (per class_list, i.e. classes.txt) of the boxes in a YOLO label file whose id
    means another class, or none, in data.yaml."""
    names: list[str] = []
    for line in read_label_file(label_file).lines:
        if line.box is None:
            continue
        class_id = line.box.cls
        name = class_list[class_id] if class_id < len(class_list) else f"id {class_id}"
        if class_id >= len(expected) or name != expected[class_id]:
            names.append(name)
    return names


def unknown_class_message(name: str | None, expected: tuple[str, ...]) -> str | None:
    """Why a class name picked in labelImg is refused (None: it is one of data.yaml's, or no name).

    labelImg appends a new name to its class list and saves its boxes with an id data.yaml does not
    have, so the name is refused at the dialog, before anything is written."""
    if name is None or name in expected:
        return None
    return (f"'{name}' is not a class of data.yaml: pick one of {', '.join(expected)} (nothing was saved). "
            f"A new class goes into data.yaml first (and labeling/predefined_classes.txt), then restart labelImg.")


def save_warning(classes_txt: Path, problem: str, label_file: Path, foreign: list[str], expected: tuple[str, ...]) -> str:
    """What to tell the user when a save left classes.txt disagreeing with data.yaml."""
    lines = [f"{classes_txt} disagrees with data.yaml: {problem}."]
    if foreign:
        lines.append(f"{label_file.name} was saved with {len(foreign)} box(es) labelled {sorted(set(foreign))}, "
                     f"a class id data.yaml does not have. Double-click each in Box Labels, choose one of "
                     f"{', '.join(expected)}, and save again.")
    else:
        lines.append(f"No box in {label_file.name} uses it, but a box labelled so in another image would get "
                     f"an id data.yaml does not have.")
    lines.append("A new class goes into data.yaml first. labelImg keeps a class it has seen in classes.txt "
                 "until it is restarted.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Float-to-int fixes for Python 3.10+ (see FLOAT_FIX_SITES).


def float_fixes_needed(environ: Mapping[str, str] = os.environ, version: tuple[int, ...] = tuple(sys.version_info)) -> bool:
    """Before 3.10 the implicit conversion still worked (with a DeprecationWarning)."""
    return version >= (3, 10) and environ.get(NO_FIX_ENV, "") in ("", "0")


def with_float_coords(method: Callable[..., Any], geometry: Callable[..., Any], n_coords: int, n_args: int) -> Callable[..., Any]:
    """Wrap a QPainter draw method so a call with float coordinates goes to its QRectF/QLineF/QPointF
    overload. Before 3.10 the floats were truncated into the int overload; this draws at the exact
    position instead (rounding would show at high zoom). Calls of any other shape pass through."""

    @functools.wraps(method)
    def call(*args: Any) -> Any:
        coords = args[:n_coords]
        if len(args) == n_args and any(isinstance(c, float) for c in coords):
            return method(geometry(*coords), *args[n_coords:])
        return method(*args)

    return call


def round_floats(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(round(a) if isinstance(a, float) else a for a in args)


def with_rounded_floats(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an int-valued setter (QScrollBar/QSpinBox.setValue) so float arguments are rounded."""

    @functools.wraps(method)
    def call(*args: Any) -> Any:
        return method(*round_floats(args))

    return call


class RoundingSignal:
    """Stands in for a bound pyqtSignal(int, ...) that labelImg emits floats into; connect() and the
    rest are the real signal's."""

    def __init__(self, signal: Any):
        self._signal = signal

    def emit(self, *args: Any) -> None:
        self._signal.emit(*round_floats(args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._signal, name)


def install_float_fixes(window: Any) -> None:
    """Patch the Qt methods labelImg calls with floats (FLOAT_FIX_SITES), on this window's objects
    only: they are instance attributes, so PyQt5's classes and every other widget stay untouched."""
    from PyQt5.QtCore import QLineF, QPointF, QRectF

    painter = window.canvas._painter  # the one QPainter Canvas.paintEvent and Shape.paint draw with
    painter.drawRect = with_float_coords(painter.drawRect, QRectF, 4, 4)
    painter.drawLine = with_float_coords(painter.drawLine, QLineF, 4, 4)
    painter.drawText = with_float_coords(painter.drawText, QPointF, 2, 3)
    for bar in window.scroll_bars.values():
        bar.setValue = with_rounded_floats(bar.setValue)
    window.zoom_widget.setValue = with_rounded_floats(window.zoom_widget.setValue)
    window.canvas.scrollRequest = RoundingSignal(window.canvas.scrollRequest)


# ---------------------------------------------------------------------------------------------
# The window and the Qt application.


def drop_foreign_qt_plugin_path(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Remove QT_QPA_PLATFORM_PLUGIN_PATH when it points into OpenCV's bundled Qt, and return it.

    `import cv2` (opencv-python) sets it in its process, so it is inherited by anything started from
    there (a notebook's `!python labeling/label.py`, a test run): PyQt5 then loads cv2's xcb plugin,
    built for another Qt, and aborts with "Could not load the Qt platform plugin".
    """
    value = environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if value and "cv2" in Path(value).parts:
        del environ["QT_QPA_PLATFORM_PLUGIN_PATH"]
        return value
    return None


def import_labelimg() -> ModuleType:
    """labelImg's main module, imported only when a window is wanted (the checks above need no Qt)."""
    try:
        import labelImg.labelImg as labelimg
    except ImportError as exc:
        if exc.name == "distutils":  # labelImg.py imports distutils.spawn; Python 3.12 removed distutils
            raise UserError("labelImg 1.8.6 needs distutils, which this Python no longer has: "
                            "pip install setuptools (it provides distutils)") from None
        raise UserError(f"labelImg cannot be imported ({exc}); install it with: pip install labelImg==1.8.6 PyQt5 lxml") from None
    return labelimg


@functools.cache
def project_window_class() -> type:
    """labelImg's MainWindow with YOLO pinned and classes.txt checked after every save."""
    labelimg = import_labelimg()
    from PyQt5.QtWidgets import QMessageBox

    class ProjectLabelWindow(labelimg.MainWindow):  # type: ignore[misc, name-defined]
        def __init__(self, class_file: Path, labels_dir: Path, expected: tuple[str, ...], order: list[str] | None = None):
            self.expected_names = expected
            self.review_order = order or []
            self.warned = False
            super().__init__(default_prefdef_class_file=str(class_file), default_save_dir=str(labels_dir))
            self.set_format(labelimg.FORMAT_YOLO)

        @property
        def label_dialog(self) -> Any:
            return self._label_dialog

        @label_dialog.setter
        def label_dialog(self, dialog: Any) -> None:
            """labelImg makes a new LabelDialog for every box; each one asks again until the name is
            one of data.yaml's (or the dialog is cancelled, which discards the box as labelImg does)."""
            ask = dialog.pop_up

            def pop_up(text: str = "", move: bool = True) -> str | None:
                while True:
                    name = ask(text, move)
                    if not self.refuse_unknown_class(name):
                        return name
                    text, move = name, False

            dialog.pop_up = pop_up
            self._label_dialog = dialog

        def refuse_unknown_class(self, name: str | None) -> bool:
            """Warn (dialog and stderr) and return True when name is not a data.yaml class."""
            message = unknown_class_message(name, self.expected_names)
            if message is None:
                return False
            print("warning: " + message, file=sys.stderr, flush=True)
            QMessageBox.warning(self, UNKNOWN_CLASS_TITLE, message)
            return True

        def new_shape(self) -> None:
            """With "Use default label" ticked labelImg takes the typed default without any dialog:
            a default that is not a data.yaml class discards the box instead."""
            if self.use_default_label_checkbox.isChecked() and self.default_label_text_line.text():
                if self.refuse_unknown_class(self.default_label_text_line.text()):
                    self.canvas.reset_all_lines()
                    return
            super().new_shape()

        def scan_all_images(self, folder_path: str) -> list[str]:
            """labelImg's list of the folder's images (what d / a step through), in the review order
            when one is given: the listed photos first, then the rest in labelImg's own order."""
            images = super().scan_all_images(folder_path)
            return apply_order(images, Path(folder_path), self.review_order) if self.review_order else images

        def set_format(self, save_format: str) -> None:
            """labelImg switches to Pascal VOC whenever it shows an image's .xml boxes; this project's
            labels are YOLO, so the format stays YOLO (the boxes shown are saved as .txt)."""
            if save_format != labelimg.FORMAT_YOLO:
                self.status(f"Kept the YOLO format (asked for {save_format}): this project trains on YOLO labels")
            super().set_format(labelimg.FORMAT_YOLO)

        def save_labels(self, annotation_file_path: str) -> bool:
            saved = super().save_labels(annotation_file_path)
            if saved:
                label_file = Path(annotation_file_path)
                if label_file.suffix.lower() != labelimg.TXT_EXT:  # labelImg adds it when missing
                    label_file = label_file.with_name(label_file.name + labelimg.TXT_EXT)
                self.warn_if_classes_txt_disagrees(label_file)
            return saved

        def warn_if_classes_txt_disagrees(self, label_file: Path) -> None:
            """A stderr line after every such save; the dialog when this file has boxes of a foreign
            class, or the first time. labelImg keeps a typed class in classes.txt until it is
            restarted, and a dialog on every save would be ignored."""
            classes_txt = label_file.parent / CLASSES_TXT
            problem = classes_txt_problem(label_file.parent, self.expected_names)
            if problem is None:
                return
            try:
                class_list = read_class_list(classes_txt)
            except UserError:  # an exception here would abort labelImg (PyQt5)
                class_list = []
            foreign = foreign_boxes(label_file, class_list, self.expected_names)
            message = save_warning(classes_txt, problem, label_file, foreign, self.expected_names)
            print("warning: " + message.replace("\n", " "), file=sys.stderr, flush=True)
            if foreign or not self.warned:
                self.warned = True
                QMessageBox.warning(self, "classes.txt disagrees with data.yaml", message)

    return ProjectLabelWindow


def open_window(labels_dir: Path, class_names: tuple[str, ...], order: list[str] | None = None) -> Any:
    """Build the project's labelImg window (not shown yet); needs a QApplication. order: photo paths
    relative to the images folder to open first, in that order (prelabel.py's review order)."""
    with tempfile.TemporaryDirectory(prefix="maskdet-label-") as tmp:
        class_file = Path(tmp) / "predefined_classes.txt"  # read once, while the window is built
        class_file.write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")
        window = project_window_class()(class_file, labels_dir, class_names, order)
    if float_fixes_needed():
        install_float_fixes(window)
    return window


def run_labelimg(images_dir: Path, labels_dir: Path, class_names: tuple[str, ...], order: list[str] | None = None) -> int:
    """Open labelImg on images_dir (in `order` first, see open_window) and run it until the window is
    closed; returns Qt's exit status."""
    labelimg = import_labelimg()
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    drop_foreign_qt_plugin_path()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(labelimg.__appname__)
    app.setWindowIcon(labelimg.new_icon("app"))
    window = open_window(labels_dir, class_names, order)
    window.show()
    # Open the folder once the window has its real size (the first image is fitted to it). Passing it
    # to MainWindow() instead would first open the last folder remembered in ~/.labelImgSettings.pkl.
    QTimer.singleShot(0, lambda: window.import_dir_images(str(images_dir)))
    return app.exec_()
