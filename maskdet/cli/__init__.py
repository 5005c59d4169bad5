"""Argument parsing for the scripts at the top of the repository; each module has main(argv)."""

from __future__ import annotations

import argparse
import importlib

from maskdet.config import DEFAULT_DATA_YAML
from maskdet.errors import run_cli


def launch(command: str) -> int:
    """Run maskdet.cli.<command>: what every script at the top calls.

    The command's module is imported here, not by the script, so a command whose packages are not
    installed (train.py after the light install) says in one line what to install instead of a traceback.
    """
    return run_cli(lambda argv: importlib.import_module(f"maskdet.cli.{command}").main(argv))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the hand-wrapped examples in descriptions."""


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)


def add_data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=str(DEFAULT_DATA_YAML), help="dataset description: class names and split folders")


def add_map_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", action="append", metavar="OLD=NEW", default=[],
                        help="rename a class before matching data.yaml, e.g. --map mask=with_mask (repeatable)")
