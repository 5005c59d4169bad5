#!/usr/bin/env python3
"""Entry point: see maskdet/cli/export.py (python export.py --help)."""
import sys

from maskdet.cli.export import cli

if __name__ == "__main__":
    sys.exit(cli())
