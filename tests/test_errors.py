"""maskdet.errors: problems the user can fix are one line that says what to do."""

from __future__ import annotations

import sys

import pytest

from maskdet.errors import UserError, require_modules


def test_require_modules_names_every_missing_package_and_each_file_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what find_spec sees for a package that is not installed
    monkeypatch.setitem(sys.modules, "multipart", None)
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(UserError) as exc:
        require_modules("serve.py", "fastapi", "yaml", "multipart", "ultralytics")
    assert str(exc.value) == ("serve.py needs fastapi, python-multipart, ultralytics, not installed: "
                              "pip install -r requirements-serve.txt -r requirements-train.txt")


def test_require_modules_is_silent_when_everything_is_there():
    require_modules("detect.py", "yaml", "numpy")


def test_an_error_line_is_cut_and_its_control_characters_are_escaped_not_sent_to_the_terminal():
    from maskdet.errors import MAX_ERROR_CHARS, one_line

    hostile = UserError("this is a '\x1b]0;owned\x07\x1b[8m' model, not a detector", "bad\x1b[2Jname.onnx")
    line = one_line(hostile)
    assert "\x1b" not in line and "\x07" not in line
    assert line == r"bad\x1b[2Jname.onnx: this is a '\x1b]0;owned\x07\x1b[8m' model, not a detector"
    assert one_line("first\nsecond") == "first"
    assert one_line("é ok 🙂") == "é ok 🙂"  # printable text of any script stays as it is
    long = one_line("x" * (MAX_ERROR_CHARS + 50))
    assert long == "x" * MAX_ERROR_CHARS + "... (50 more characters)"


def test_a_cli_prints_a_hostile_error_as_one_escaped_line_and_exits_2(capsys):
    from maskdet.errors import run_cli

    def main(argv):
        raise UserError("task is '\x1b[31mred\x1b[0m'", "m.onnx")

    assert run_cli(main, []) == 2
    err = capsys.readouterr().err
    assert err == "error: m.onnx: task is '\\x1b[31mred\\x1b[0m'\n"


@pytest.mark.parametrize("script, args", [
    ("detect.py", ["--source", "samples/images/astronaut.jpg", "--project", "{file}"]),
    ("train.py", ["--average", "models/best.pt", "models/best.pt", "--project", "{file}"]),
])
def test_an_output_path_that_is_a_file_is_one_error_line_naming_it_not_a_traceback(tmp_path, script, args):
    import subprocess

    from maskdet.config import PROJECT_ROOT

    taken = tmp_path / "results"
    taken.write_text("a file where a folder is asked for\n")
    argv = [a.replace("{file}", str(taken)) for a in args]
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / script), *argv], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"error: {taken}/") and "Not a directory" in run.stderr, run.stderr
    assert taken.read_text() == "a file where a folder is asked for\n"


def test_an_os_error_without_a_file_name_is_still_one_line(capsys):
    from maskdet.errors import run_cli

    def main(argv):
        raise OSError(28, "No space left on device")

    assert run_cli(main, []) == 2
    assert capsys.readouterr().err == "error: No space left on device\n"


@pytest.mark.parametrize("raised, shown", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 34359738368 bytes. Error code 12 (Cannot allocate memory)"),  # PyTorch at --imgsz 8192
     "error: out of memory (it asked for 32.0 GiB at once): a smaller --imgsz (or --batch) needs less\n"),
    (MemoryError(), "error: out of memory: a smaller --imgsz (or --batch) needs less\n"),
    (RuntimeError("Exception from src/inference/src/cpp/infer_request.cpp: std::bad_alloc"),  # OpenVINO
     "error: out of memory: a smaller --imgsz (or --batch) needs less\n"),
])
def test_running_out_of_memory_is_one_line_that_says_what_to_change(capsys, raised, shown):
    from maskdet.errors import run_cli

    def main(argv):
        raise raised

    assert run_cli(main, []) == 2
    assert capsys.readouterr().err == shown


def test_any_other_runtime_error_is_still_a_bug_with_its_traceback():
    from maskdet.errors import run_cli

    def main(argv):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_cli(main, [])
