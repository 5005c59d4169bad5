"""Privacy by design (issue 22): what a monitoring run may keep of the people it sees.

Three levels, one per run:

* ``off``    -- everything as before (the default for plain detection, which follows no one);
* ``blur``   -- every face the model found is blurred in every image that leaves the process, before
               it is written or sent; no face crop is written (the default whenever people are monitored);
* ``counts`` -- France's decree 2021-269: no image, video, crop or per-person row is written or sent,
               only counts by verdict and the share wearing a mask, per period.

``--retain`` deletes the outputs of monitoring runs once they are older than a duration.
This package only imports numpy and OpenCV: detect.py --help stays light.
"""

from __future__ import annotations

import re

from maskdet.errors import UserError

LEVELS = ("off", "blur", "counts")
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 10 * 365 * 86400  # ten years: anything longer is a typo


def parse_duration(text: str, flag: str, minimum_s: float = 1.0) -> float:
    """'72h', '20m', '30s', '7d' (or '1.5h') in seconds; anything else, or out of range, is a one-line error."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(text).lower())
    if not match:
        raise UserError(f"{flag} must be a number and a unit (s, m, h or d), such as 72h or 20m, not {text!r}")
    seconds = float(match.group(1)) * UNITS_S[match.group(2)]
    if not minimum_s <= seconds <= MAX_DURATION_S:
        raise UserError(f"{flag} {text}: must be between {minimum_s:g} s and {MAX_DURATION_S // 86400} days")
    return seconds


def resolve_level(level: str | None, monitoring: bool) -> str:
    """The level asked for, or the default: blur when people are monitored, off for plain detection."""
    if level is None:
        return "blur" if monitoring else "off"
    if level not in LEVELS:
        raise UserError(f"--privacy must be one of {', '.join(LEVELS)}, not {level!r}")
    return level
