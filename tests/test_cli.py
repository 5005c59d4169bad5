"""maskdet.cli: the help every command shows, its range-checked numbers, and plain output in files."""

from __future__ import annotations

import argparse
import importlib
import io
import re

import pytest

from maskdet.cli import HelpFormatter, PlainText, make_parser, number

COMMANDS = ["detect", "train", "val", "export", "serve", "check", "split", "merge", "voc2yolo", "import_yolo", "prelabel",
            "label"]


def help_text(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        importlib.import_module(f"maskdet.cli.{command}").main(["--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_empty_or_doubled_defaults(command, capsys):
    text = help_text(command, capsys)
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    for item in re.split(r"\s(?=--?[a-z])", text):
        assert item.count("default") <= 1 or "(default:" not in item, item


def test_a_default_is_shown_when_it_says_something():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--conf", type=float, default=0.25, help="minimum confidence")
    parser.add_argument("--device", default=None, help="'cpu' or '0' (default: the GPU if there is one)")
    parser.add_argument("--images", required=True, default=None, help="folder of photos")
    text = " ".join(parser.format_help().split())
    assert "minimum confidence (default: 0.25)" in text
    assert text.count("default") == 2 and "folder of photos (default" not in text


@pytest.mark.parametrize("kind, low, high, kwargs, good, bad", [
    (float, 0, 1, {}, ["0", "0.5", "1"], ["-0.1", "1.01", "nan", "inf", "x"]),
    (int, 1, None, {}, ["1", "99"], ["0", "-1", "1.5"]),
    (float, 0, 1, {"low_open": True, "high_open": True}, ["0.5"], ["0", "1"]),
    (float, 0, 10, {"low_open": True, "also": (-1,)}, ["-1", "3"], ["0", "-2"]),
])
def test_number_parses_and_range_checks(kind, low, high, kwargs, good, bad):
    parse = number(kind, low, high, **kwargs)
    for text in good:
        assert parse(text) == kind(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan"])
def test_a_number_that_is_not_finite_is_refused_as_such(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be a finite number \\(at least 0\\), got {text}"):
        number(float, 0)(text)


def test_a_number_out_of_range_is_a_usage_error_naming_the_flag_and_range(capsys):
    parser = make_parser("x.py", "test")
    parser.add_argument("--iou", type=number(float, 0, 1), default=0.45)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--iou", "5"])
    assert stop.value.code == 2
    assert "argument --iou: must be at least 0 and at most 1, got 5" in capsys.readouterr().err


def test_plain_text_drops_colour_codes_and_keeps_a_redrawn_line_as_last_drawn():
    out = io.StringIO()
    plain = PlainText(out)
    plain.write("\x1b[34m\x1b[1mval: \x1b[0mScanning 1/4\r\x1b[K")
    plain.write("val: Scanning 4/4 done\n")
    plain.write("all 4 images\n\rtail")
    plain.close()
    assert out.getvalue() == "val: Scanning 4/4 done\nall 4 images\ntail"


@pytest.mark.parametrize("command", ["detect", "train", "val", "serve", "check", "prelabel", "train_second_stage"])
@pytest.mark.parametrize("name", ["", "..", "../../escape", "a/b"])
def test_a_run_name_is_one_folder_inside_the_project_never_a_path_out_of_it(command, name, capsys):
    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(f"maskdet.cli.{command}").main(["--name", name])
    assert stopped.value.code == 2
    assert f"argument --name: must be one folder name (the run folder inside --project), got {name!r}" in \
        capsys.readouterr().err
