"""Compatibility shim: detect.py's Python API, kept where it always was.

    from maskdet.inference.detect import run
    summary = run(source="photos/", save_csv=True)

The runner itself is maskdet.pipeline.runner (sources -> Pipeline -> sinks). It sits above maskdet.inference
and maskdet.monitoring, so this module imports it only inside run() (and on first use of DetectSummary):
importing maskdet.inference never pulls in the layers above it (tests/test_layout.py checks that).
New code should use maskdet.pipeline.runner.run_settings(Settings) or maskdet.pipeline.step.Pipeline.
"""

from __future__ import annotations

from typing import Any

from maskdet.models import DEFAULT_WEIGHTS_ORDER, MODELS_DIR, default_weights  # noqa: F401  (their old home)


def run(log=None, **keywords: Any):
    """detect.py with its flag names as keywords; returns a maskdet.pipeline.runner.DetectSummary."""
    from maskdet.pipeline.runner import run as run_detect

    return run_detect(log=log, **keywords)


def __getattr__(name: str) -> Any:
    """DetectSummary, imported from here by older code, lives with the runner now."""
    if name == "DetectSummary":
        from maskdet.pipeline.runner import DetectSummary

        return DetectSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
