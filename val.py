#!/usr/bin/env python3
"""Entry point: see maskdet/cli/val.py (python val.py --help)."""
import sys

from maskdet.cli.val import cli

if __name__ == "__main__":
    sys.exit(cli())
