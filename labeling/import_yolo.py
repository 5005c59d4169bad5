#!/usr/bin/env python3
"""Thin entry point: see maskdet/cli/import_yolo.py (run with --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from maskdet.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("import_yolo"))
