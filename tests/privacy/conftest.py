"""Fixtures for the privacy specifications: the monitoring suite's video of Kaggle faces walking known paths
and its webhook receiver (tests/monitoring/conftest.py, through privacy_outputs), the detect suite's helpers
(background processes, wait_for), and a detector to look for faces in what a run wrote."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from privacy_outputs import ROOT, monitoring

face_video = monitoring.face_video  # pytest fixtures: registered here by name
receiver = monitoring.receiver


@pytest.fixture(scope="session")
def finder():
    """The shipped model at conf 0.1: what looks for faces in the outputs."""
    if not monitoring.MODEL.exists():
        pytest.skip(f"no shipped model at {monitoring.MODEL}")
    from maskdet.inference.detectors import DetectSettings, load_detector

    return load_detector(monitoring.MODEL, DetectSettings(conf=0.1))


@pytest.fixture(scope="session")
def helpers():
    """tests/inference/conftest.py as a module (Background processes, wait_for): one implementation."""
    name = "detect_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "inference" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
