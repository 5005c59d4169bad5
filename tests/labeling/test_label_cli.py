"""labeling/label.py without an X server: the checks before launch, the float fixes, and labelImg's
own code paths driven on Qt's offscreen platform (test_label_gui.py drives the real window)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskdet.cli.label import default_labels_dir
from maskdet.cli.label import main as label_main
from maskdet.data import labelimg_launcher as launcher
from maskdet.errors import UserError, run_cli
from maskdet.inference.display import display_problem

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


# --- float fixes -------------------------------------------------------------------------------


class Recorder:
    """Stands in for a Qt method: remembers the arguments it was called with."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(self, *args):
        self.calls.append(args)
        return "result"


def pack(*coords):
    """Stands in for QRectF/QLineF/QPointF."""
    return coords


def test_float_coords_go_to_the_geometry_overload():
    draw_line = Recorder()
    wrapped = launcher.with_float_coords(draw_line, pack, 4, 4)
    assert wrapped(1.5, 0, 2.5, 10) == "result"
    assert draw_line.calls == [((1.5, 0, 2.5, 10),)]


def test_float_coords_keep_other_arguments_after_the_geometry():
    draw_text = Recorder()
    launcher.with_float_coords(draw_text, pack, 2, 3)(3.25, 4.0, "with_mask")
    assert draw_text.calls == [((3.25, 4.0), "with_mask")]


@pytest.mark.parametrize("args", [(1, 2, 3, 4), ("rect",), (1.5, 2.5, 3.5, 4.5, 5.5)])
def test_int_or_other_calls_pass_through_untouched(args):
    method = Recorder()
    launcher.with_float_coords(method, pack, 4, 4)(*args)
    assert method.calls == [args]


def test_rounded_floats_for_int_setters():
    set_value = Recorder()
    wrapped = launcher.with_rounded_floats(set_value)
    wrapped(41.6)
    wrapped(7)
    assert set_value.calls == [(42,), (7,)]
    assert all(type(v) is int for call in set_value.calls for v in call)


def test_rounding_signal_emits_ints_and_forwards_the_rest():
    class FakeSignal:
        def __init__(self):
            self.emitted = []
            self.connect = "the real connect"

        def emit(self, *args):
            self.emitted.append(args)

    real = FakeSignal()
    shim = launcher.RoundingSignal(real)
    shim.emit(-12.7, 2)
    assert real.emitted == [(-13, 2)]
    assert shim.connect == "the real connect"


@pytest.mark.parametrize(("version", "environ", "needed"), [
    ((3, 11, 7), {}, True),
    ((3, 10, 0), {launcher.NO_FIX_ENV: "0"}, True),
    ((3, 9, 18), {}, False),  # floats still became ints there, with a DeprecationWarning
    ((3, 12, 1), {launcher.NO_FIX_ENV: "1"}, False),
])
def test_fixes_only_where_python_needs_them(version, environ, needed):
    assert launcher.float_fixes_needed(environ, version) is needed


def test_every_fix_names_its_labelimg_call_site():
    assert len(launcher.FLOAT_FIX_SITES) == 7
    assert all(site.split()[0].endswith(".py") for site in launcher.FLOAT_FIX_SITES)


# --- display and Qt environment ----------------------------------------------------------------


def test_no_display_is_explained():
    problem = display_problem("labelImg", {}, "linux")
    assert problem is not None and problem.startswith("no display") and "ssh -X" in problem
    assert display_problem("labelImg", {"DISPLAY": ":0"}, "linux") is None
    assert display_problem("labelImg", {"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem("labelImg", {}, "darwin") is None


def test_cv2_qt_plugin_path_is_dropped_but_others_kept():
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": "/venv/lib/python3.11/site-packages/cv2/qt/plugins"}
    assert launcher.drop_foreign_qt_plugin_path(env) is not None
    assert env == {}
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": "/opt/qt/plugins"}
    assert launcher.drop_foreign_qt_plugin_path(env) is None
    assert env == {"QT_QPA_PLATFORM_PLUGIN_PATH": "/opt/qt/plugins"}


# --- classes.txt -------------------------------------------------------------------------------


def test_classes_txt_absent_or_equal_is_fine(tmp_path):
    assert launcher.classes_txt_problem(tmp_path, NAMES) is None
    (tmp_path / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\n")
    assert launcher.classes_txt_problem(tmp_path, NAMES) is None


def test_classes_txt_in_another_order_is_named(tmp_path):
    (tmp_path / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    assert launcher.classes_txt_problem(tmp_path, NAMES) == "id 0 is 'without_mask' here but 'with_mask' in data.yaml"


def test_prepare_creates_the_folder_and_a_missing_classes_txt(tmp_path):
    echoed = []
    launcher.prepare_labels_dir(tmp_path / "labels", NAMES, echo=echoed.append)
    assert (tmp_path / "labels" / "classes.txt").read_text().split() == list(NAMES)
    assert echoed[0].startswith("created") and echoed[1].startswith("wrote")


def test_a_classes_txt_whose_extra_class_a_label_uses_is_refused_unless_forced(tmp_path):
    (tmp_path / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\nface_shield\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.2 0.2 0.1 0.1\n")
    with pytest.raises(UserError, match=r"face_shield.*a\.txt:2 \(id 3: 'face_shield' here\).*--force"):
        launcher.check_classes_txt(tmp_path, NAMES, force=False, echo=print)
    echoed = []
    assert launcher.check_classes_txt(tmp_path, NAMES, force=True, echo=echoed.append) is False
    assert echoed and echoed[0].startswith("warning:") and "face_shield" in echoed[0]
    launcher.prepare_labels_dir(tmp_path, NAMES, echo=echoed.append)
    assert "face_shield" in (tmp_path / "classes.txt").read_text()  # --force rewrites nothing


def test_a_classes_txt_whose_extra_class_no_label_uses_is_rewritten_not_refused(tmp_path):
    # The defect: a face_shield box typed in labelImg, then fixed to with_mask, left face_shield in
    # classes.txt; the next launch was refused ("the labels beside it use other class ids"), untrue.
    (tmp_path / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\nface_shield\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n2 0.2 0.2 0.1 0.1\n")
    echoed = []
    assert launcher.check_classes_txt(tmp_path, NAMES, force=False, echo=echoed.append) is True
    assert len(echoed) == 1 and echoed[0].startswith("note:") and "no label here uses" in echoed[0]
    launcher.prepare_labels_dir(tmp_path, NAMES, echo=echoed.append, rewrite_classes_txt=True)
    assert (tmp_path / "classes.txt").read_text().split() == list(NAMES)
    assert (tmp_path / "a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n2 0.2 0.2 0.1 0.1\n"


def test_a_reordered_classes_txt_is_refused_only_for_ids_whose_class_differs(tmp_path):
    (tmp_path / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    (tmp_path / "a.txt").write_text("2 0.5 0.5 0.2 0.2\n")
    assert launcher.check_classes_txt(tmp_path, NAMES, force=False, echo=lambda line: None) is True
    (tmp_path / "b.txt").write_text("2 0.5 0.5 0.2 0.2\n\n1 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError) as refused:
        launcher.check_classes_txt(tmp_path, NAMES, force=False, echo=print)
    message = str(refused.value)
    assert "b.txt:3 (id 1: 'with_mask' here)" in message and "a.txt" not in message
    # the advice is something the person can do: edit those lines, or --force; not a command that lists nothing
    assert "Edit those lines to a data.yaml id (0 with_mask, 1 without_mask, 2 mask_weared_incorrect)" in message
    assert "check.py" not in message


def test_a_class_name_not_in_data_yaml_is_refused_with_the_names_to_pick():
    assert launcher.unknown_class_message("with_mask", NAMES) is None
    assert launcher.unknown_class_message(None, NAMES) is None  # the dialog was cancelled
    message = launcher.unknown_class_message("face_shield", NAMES)
    assert "'face_shield' is not a class of data.yaml" in message and "with_mask, without_mask, mask_weared_incorrect" in message


def test_prepare_notes_voc_files_labelimg_would_prefer(tmp_path):
    (tmp_path / "a.xml").write_text("<annotation/>")
    echoed = []
    launcher.prepare_labels_dir(tmp_path, NAMES, echo=echoed.append)
    assert any("1 Pascal VOC .xml" in line for line in echoed)


def test_foreign_boxes_are_named_by_their_classes_txt_name(tmp_path):
    label_file = tmp_path / "a.txt"
    label_file.write_text("1 0.5 0.5 0.2 0.2\n3 0.1 0.1 0.1 0.1\n7 0.3 0.3 0.1 0.1\n")
    class_list = [*NAMES, "face_shield"]
    assert launcher.foreign_boxes(label_file, class_list, NAMES) == ["face_shield", "id 7"]
    assert launcher.foreign_boxes(tmp_path / "missing.txt", class_list, NAMES) == []
    message = launcher.save_warning(tmp_path / "classes.txt", "extra classes not in data.yaml: ['face_shield']",
                                    label_file, ["face_shield"], NAMES)
    assert "face_shield" in message and "a.txt" in message and "with_mask" in message


# --- the command line --------------------------------------------------------------------------


def test_default_labels_folder(tmp_path):
    assert default_labels_dir(tmp_path / "photos") == tmp_path / "photos"
    assert default_labels_dir(tmp_path / "data" / "train" / "images") == tmp_path / "data" / "train" / "labels"


def run_label(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "labeling" / "label.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env)


def test_help_explains_every_flag():
    proc = run_label("--help")
    assert proc.returncode == 0
    for flag in ("--images", "--labels", "--data", "--order", "--force", launcher.NO_FIX_ENV):
        assert flag in proc.stdout


def test_missing_images_folder_is_one_line_error(tmp_path, tools):
    tools.assert_one_line_error(run_label("--images", tmp_path / "nope"), "images folder not found")


def test_folder_without_images_is_one_line_error(tmp_path, tools):
    (tmp_path / "notes.txt").write_text("hello")
    tools.assert_one_line_error(run_label("--images", tmp_path), "no images")


def test_missing_data_yaml_is_one_line_error(tmp_path, make_image, tools):
    make_image(tmp_path / "a.png")
    tools.assert_one_line_error(run_label("--images", tmp_path, "--data", tmp_path / "none.yaml"), "none.yaml")


def test_an_order_file_listing_none_of_the_photos_is_one_line_error(tmp_path, make_image, tools):
    make_image(tmp_path / "a.png")
    (tmp_path / "review.txt").write_text("# review order\nother.png  # doubt 0.90\n")
    tools.assert_one_line_error(run_label("--images", tmp_path, "--order", tmp_path / "review.txt"),
                                "review.txt", "none of the 1 photos it lists")
    tools.assert_one_line_error(run_label("--images", tmp_path, "--order", tmp_path / "nope.txt"), "nope.txt", "not found")


def test_launch_refused_when_classes_txt_order_differs(tmp_path, make_image, tools):
    make_image(tmp_path / "images" / "a.png")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("without_mask\nwith_mask\nmask_weared_incorrect\n")
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    line = tools.assert_one_line_error(run_label("--images", tmp_path / "images", "--labels", labels),
                                       "classes.txt", "id 0 is 'without_mask'", "a.txt:1", "--force")
    assert "disagrees with data.yaml" in line


def test_no_display_is_one_line_error_after_force_warning(tmp_path, make_image, tools):
    make_image(tmp_path / "a.png")
    (tmp_path / "classes.txt").write_text("without_mask\nwith_mask\n")
    (tmp_path / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    proc = run_label("--images", tmp_path, "--force", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "warning:" in proc.stdout and "opening anyway because of --force" in proc.stdout
    assert proc.stderr.strip().splitlines() == [f"error: {display_problem('labelImg', {}, 'linux')}"]


def test_a_stale_classes_txt_no_label_uses_does_not_stop_the_launch(tmp_path, make_image):
    make_image(tmp_path / "a.png")
    (tmp_path / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\nface_shield\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    proc = run_label("--images", tmp_path, env=env)
    # it gets past the classes.txt check to the display check; a refused launch still writes nothing
    assert proc.stderr.strip().splitlines() == [f"error: {display_problem('labelImg', {}, 'linux')}"]
    assert "face_shield" in (tmp_path / "classes.txt").read_text()


def test_no_display_in_process_writes_nothing(tmp_path, make_image, monkeypatch, capsys):
    make_image(tmp_path / "a.png")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert run_cli(label_main, ["--images", str(tmp_path), "--labels", str(tmp_path / "labels")]) == 2
    assert capsys.readouterr().err.startswith("error: no display")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# --- labelImg's own code paths, on the offscreen platform --------------------------------------

# Runs in a child process: a PyQt5 exception inside paintEvent aborts the whole process, and a
# QApplication should not outlive the test. Every step below is a labelImg 1.8.6 method or Qt event
# that reaches one of FLOAT_FIX_SITES.
OFFSCREEN_DRIVER = r"""
import json, sys
from pathlib import Path
repo, images_dir, labels_dir = map(Path, sys.argv[1:4])
sys.path.insert(0, str(repo))
from maskdet.data import labelimg_launcher as launcher
launcher.drop_foreign_qt_plugin_path()
from PyQt5.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt5.QtGui import QMouseEvent, QWheelEvent
from PyQt5.QtWidgets import QApplication, QMessageBox

app = QApplication([sys.argv[0]])
dialogs = []
QMessageBox.warning = lambda parent, title, text, *rest: dialogs.append(title)  # modal: would block here
window = launcher.open_window(labels_dir, ("with_mask", "without_mask", "mask_weared_incorrect"))
window.resize(900, 700)
window.show()
window.import_dir_images(str(images_dir))
app.processEvents()
canvas = window.canvas

def at(fx, fy):
    offset, s = canvas.offset_to_center(), canvas.scale
    return QPointF((offset.x() + fx * canvas.pixmap.width()) * s, (offset.y() + fy * canvas.pixmap.height()) * s)

def mouse(kind, fx, fy, buttons=Qt.NoButton):
    button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
    QApplication.sendEvent(canvas, QMouseEvent(kind, at(fx, fy), button, buttons, Qt.NoModifier))

def wheel(dy, modifiers=Qt.NoModifier):
    pos = at(0.5, 0.5)
    QApplication.sendEvent(canvas, QWheelEvent(pos, QPointF(canvas.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, dy),
                                               Qt.NoButton, modifiers, Qt.NoScrollPhase, False))

def draw_box(label, x0, y0, x1, y1):
    window.use_default_label_checkbox.setChecked(True)  # no modal label dialog
    window.default_label_text_line.setText(label)
    window.actions.create.trigger()                     # the w key
    mouse(QEvent.MouseMove, x0, y0)                     # crosshair: drawLine(float, ...)
    mouse(QEvent.MouseButtonPress, x0, y0, Qt.LeftButton)
    mouse(QEvent.MouseMove, x1, y1)                     # rubber band: drawRect(float, ...)
    mouse(QEvent.MouseButtonRelease, x1, y1)

result = {"format": window.label_file_format.name}
draw_box("mask_weared_incorrect", 0.1, 0.2, 0.5, 0.6)
window.display_label_option.setChecked(True)
window.toggle_paint_labels_option()
canvas.repaint()                                        # Shape.paint: drawText(float, float, str)
zoom = window.zoom_widget.value()
wheel(120, Qt.ControlModifier)                          # zoom_request: setValue(float) x3
result["zoom_step"] = window.zoom_widget.value() - zoom
app.processEvents()                                     # let the scroll area take the new size
v_bar = window.scroll_bars[Qt.Vertical]
wheel(-120)                                             # scroll_request: setValue(float)
result["wheel_scroll"] = v_bar.value()
v_bar.setValue(0)
mouse(QEvent.MouseButtonPress, 0.8, 0.9, Qt.LeftButton) # pan outside the box: scrollRequest.emit(float)
mouse(QEvent.MouseMove, 0.8, 0.8, Qt.LeftButton)
mouse(QEvent.MouseButtonRelease, 0.8, 0.8)
result["pan_scroll"] = [v_bar.value(), v_bar.maximum()]
window.save_file()
result["first_save"] = (labels_dir / "a.txt").read_text()
result["dialogs_after_first_save"] = list(dialogs)
draw_box("face_shield", 0.6, 0.1, 0.9, 0.3)             # a class data.yaml does not have: refused, no box
result["dialogs_before_second_save"] = list(dialogs)
result["boxes_after_refusal"] = len(canvas.shapes)
window.save_file()
result["second_save"] = (labels_dir / "a.txt").read_text()
result["classes_txt"] = (labels_dir / "classes.txt").read_text().split()
result["dialogs"] = dialogs
print("RESULT " + json.dumps(result))
"""


def run_offscreen(tmp_path: Path, make_image, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    make_image(tmp_path / "images" / "a.png", width=100, height=300)  # tall: Ctrl+wheel makes it overflow vertically
    (tmp_path / "labels").mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-c", OFFSCREEN_DRIVER, str(REPO_ROOT), str(tmp_path / "images"),
                           str(tmp_path / "labels")], capture_output=True, text=True, timeout=120, env=env)


def test_labelimg_code_paths_survive_floats_offscreen(tmp_path, make_image):
    proc = run_offscreen(tmp_path, make_image)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["format"] == "YOLO"
    assert result["zoom_step"] == 10  # one wheel notch = +10 %, after rounding
    assert result["wheel_scroll"] > 0  # one notch down scrolls down
    pan, maximum = result["pan_scroll"]
    assert 0 < pan < maximum  # a short drag scrolls a little; unfixed, the float delta arrives as garbage
    class_id, cx, cy, w, h = result["first_save"].split()
    assert class_id == "2"
    assert [float(cx), float(cy), float(w), float(h)] == pytest.approx([0.3, 0.4, 0.4, 0.4], abs=0.02)
    assert result["dialogs_after_first_save"] == []
    # the default label face_shield is refused when the box is finished, before any save
    assert result["dialogs_before_second_save"] == [launcher.UNKNOWN_CLASS_TITLE]
    assert result["boxes_after_refusal"] == 1
    assert result["second_save"] == result["first_save"]
    assert result["classes_txt"] == list(NAMES)
    assert result["dialogs"] == [launcher.UNKNOWN_CLASS_TITLE]
    assert "warning: 'face_shield' is not a class of data.yaml" in proc.stderr


@pytest.mark.skipif(sys.version_info < (3, 10), reason="labelImg's floats only break Qt calls from Python 3.10 on")
def test_without_the_fixes_labelimg_crashes_offscreen(tmp_path, make_image):
    """Guards the test above: it must exercise a call that really fails unfixed."""
    proc = run_offscreen(tmp_path, make_image, {launcher.NO_FIX_ENV: "1"})
    assert proc.returncode != 0
    assert "TypeError" in proc.stderr
