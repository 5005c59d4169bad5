"""Whether a window can open here: Qt aborts the whole process (no exception) when it cannot."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def display_problem(what: str, environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """Why `what` cannot open a window here, or None. macOS and Windows always have a screen."""
    if not platform.startswith("linux") or environ.get("DISPLAY") or environ.get("QT_QPA_PLATFORM"):
        return None
    return (f"no display: $DISPLAY is not set, so {what} cannot open a window (SSH, a container or a notebook?). "
            "Run it on a desktop or over `ssh -X`; on a headless server use xvfb-run or a virtual display seen through VNC")
