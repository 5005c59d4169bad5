#!/usr/bin/env python3
"""Entry point: see maskdet/cli/train.py (python train.py --help)."""
import sys

from maskdet.cli.train import cli

if __name__ == "__main__":
    sys.exit(cli())
