#!/usr/bin/env python3
"""Entry point: see maskdet/cli/monitor.py (python monitor.py --help)."""
import sys

from maskdet.cli import launch

if __name__ == "__main__":
    sys.exit(launch("monitor"))
