#!/usr/bin/env python3
"""Entry point: see maskdet/cli/train_second_stage.py (python train_second_stage.py --help)."""
import sys

from maskdet.cli import launch

if __name__ == "__main__":
    sys.exit(launch("train_second_stage"))
