"""The HTTP API serving the INT8 model (models/best_int8_openvino_model/): the sample's bare face comes back
with the right class."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openvino", reason="the INT8 model needs pip install openvino")

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = ROOT / "samples" / "images" / "astronaut.jpg"


@pytest.fixture
def weights() -> Path:
    """Overrides the scripted model of conftest.py: the app's client here serves the shipped INT8 model."""
    return ROOT / "models" / "best_int8_openvino_model"


def test_the_api_finds_the_astronauts_bare_face_with_the_int8_model(client):
    assert client.get("/api/health").json()["imgsz"] == 704
    with open(ASTRONAUT, "rb") as f:
        response = client.post("/api/detect", files={"file": ("astronaut.jpg", f, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counts"] == {"without_mask": 1}, body
    (face,) = body["detections"]
    assert face["confidence"] > 0.5
    assert face["x1"] < 0.45 * body["width"] < face["x2"] and face["y1"] < 0.26 * body["height"] < face["y2"]
