"""What every refusal of the API looks like: JSON {"error": ...} naming the problem, and how the docs declare it.

Apart from the app so that the fleet routes (maskdet.serving.fleet, which the app includes) declare their
refusals with the same schema.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel

MIB = 1 << 20

WHAT = {400: "bad request: a malformed form, a corrupt file, or more than one file",
        401: "missing or wrong token (only with --token)", 404: "unknown or expired job or file",
        413: "upload, image or video over a limit", 415: "not an image / not a video (decided by its bytes)",
        503: "busy: every worker is taken (or, for a video, --max-video-jobs are running); the Retry-After "
             "header says when to try again"}


class ErrorBody(BaseModel):
    """What every refusal answers."""

    error: str


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def documented(*statuses: int, **described: str) -> dict[int | str, dict]:
    """OpenAPI `responses` for these error statuses: each a JSON {"error": ...}; `described` (as `_404="..."`)
    replaces the usual description of a status where a route means something else by it."""
    return {status: {"model": ErrorBody, "description": described.get(f"_{status}", WHAT.get(status, ""))}
            for status in statuses}


def mib(size: int, limit_mib: float) -> str:
    """`size` bytes in MiB (what --max-upload-mb counts), with the decimals it takes to read as more than the limit
    as it is shown (`{limit_mib:g}`): 52,450,000 bytes against 50 MiB is "50.02 MiB", never "50.0". Bytes when
    six decimals would not do."""
    shown_limit = float(f"{limit_mib:g}")
    for decimals in range(1, 7):
        shown = f"{size / MIB:.{decimals}f}"
        if float(shown) > shown_limit:
            return f"{shown} MiB"
    return f"{size:,} bytes"
