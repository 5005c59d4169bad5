"""Argument parsing for the scripts at the top of the repository; each module has main(argv).

Every command parses its arguments before it imports anything heavy (pandas, Ultralytics, torch), so
`--help` works with any install and bad numbers are refused before minutes of loading.
"""

from __future__ import annotations

import argparse
import importlib
import io
import math
import re
import sys
import threading
from collections.abc import Callable

from maskdet.config import DEFAULT_DATA_YAML
from maskdet.errors import run_cli
from maskdet.interrupts import exit_code

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class PlainText(io.TextIOBase):
    """A stream for output that is not a terminal (a file, a pipe, a CI log): colour codes removed, and a
    line redrawn with carriage returns (a progress bar) kept only as it was last drawn."""

    def __init__(self, stream):
        self.stream = stream
        self.line = ""
        self.lock = threading.Lock()  # the reader and webhook threads log too

    def write(self, text: str) -> int:
        text = ANSI_ESCAPE.sub("", text)
        with self.lock:
            *done, self.line = (self.line + text).split("\n")
            for line in done:
                self.stream.write(line.rsplit("\r", 1)[-1] + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:  # the last line if it had no newline, as it was last drawn
        if self.line.rsplit("\r", 1)[-1]:
            self.stream.write(self.line.rsplit("\r", 1)[-1])
        self.line = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding


def launch(command: str) -> int:
    """Run maskdet.cli.<command>: what every script at the top calls.

    The command's module is imported here, not by the script, so a command whose packages are not
    installed (train.py after the light install) says in one line what to install instead of a traceback.
    Output that goes to a file or a pipe gets no colour codes and no carriage returns (Ultralytics draws
    both whatever the output is); Ultralytics is imported after this, so its logger writes through it.
    """
    wrapped = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not stream.isatty():
            setattr(sys, name, PlainText(stream))
            wrapped.append(name)
    try:
        code = run_cli(lambda argv: importlib.import_module(f"maskdet.cli.{command}").main(argv))
    finally:
        for name in wrapped:
            getattr(sys, name).close()
    return exit_code(code)  # ends at once where a native call it gave up on still runs (no crash at exit)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the hand-wrapped examples in descriptions.

    A default is shown only when it says something: not for required options, switches, options whose
    default is "not given" (None), nor when the help text already explains its default in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or action.default is None or action.default is False or action.default == []
                or action.default is argparse.SUPPRESS  # (a default of 0 is shown: `in (False,)` would hide it)
                or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
                or "default" in text.lower()):
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's one-line error (`error: argument --conf: must be ...`, exit 2) instead of
    the usage block followed by the error: the same contract as every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    return ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)


def number(kind: type = float, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, also: tuple[float, ...] = ()) -> Callable[[str], float]:
    """An argparse `type` that parses an int or float and refuses it outside [low, high].

    `low_open`/`high_open` exclude the bound itself; `also` lists single values allowed outside the range
    (-1 for 'auto'). argparse prints the message as 'argument --conf: must be ...', exit status 2.
    """
    def show(bound: float) -> str:  # 4294967295, not 4.29497e+09
        return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"

    def describe() -> str:
        if low is not None and high is not None:
            left, right = ("above" if low_open else "at least"), ("below" if high_open else "at most")
            text = f"{left} {show(low)} and {right} {show(high)}"
        elif low is not None:
            text = f"{'above' if low_open else 'at least'} {show(low)}"
        else:
            text = f"{'below' if high_open else 'at most'} {show(high)}"
        return text + "".join(f" (or {show(a)})" for a in also)

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if value in also:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number ({describe()}), got {text}")
        bad = (low is not None and (value <= low if low_open else value < low))
        bad = bad or (high is not None and (value >= high if high_open else value > high))
        if bad:
            raise argparse.ArgumentTypeError(f"must be {describe()}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


# The numbers most commands share, each with the range that makes sense.
CONFIDENCE = number(float, 0, 1)  # --conf: 0 keeps every box, 1 only certain ones
IOU = number(float, 0, 1)  # --iou
IMGSZ = number(int, 32, 8192)  # --imgsz: YOLO's stride is 32; larger sizes only exhaust memory
POSITIVE_INT = number(int, 1)
COUNT = number(int, 0)  # 0 or more
SEED = number(int, 0, 2**32 - 1)
SECONDS = number(float, 0)


def run_name(text: str) -> str:
    """An argparse `type` for --name: one folder name inside --project. '' would number bare folders (2, 3 ...)
    and '../x' or 'a/b' would put the run outside --project or in a folder of a folder."""
    if text in ("", ".", "..") or "/" in text or "\\" in text or not text.isprintable():
        raise argparse.ArgumentTypeError(f"must be one folder name (the run folder inside --project), got {text!r}")
    return text


def add_data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=str(DEFAULT_DATA_YAML), help="dataset description: class names and split folders")


def add_map_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", action="append", metavar="OLD=NEW", default=[],
                        help="rename a class before matching data.yaml, e.g. --map mask=with_mask (repeatable)")
