"""A photo a pixel thick is a photo: /api/detect answers 200, where the letterbox's resize (its thin side
scaled to 0 pixels) made it a 500."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


@pytest.mark.parametrize("height, width", [(1, 5000), (5000, 1)])
def test_a_one_pixel_strip_is_answered_with_boxes_inside_it(client, height, width):
    ok, png = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))
    response = client.post("/api/detect", files={"file": ("strip.png", png.tobytes(), "image/png")})
    assert response.status_code == 200, response.text
    for box in response.json()["detections"]:  # the scripted model's boxes, in the strip's own pixels
        assert 0 <= box["x1"] <= box["x2"] <= width and 0 <= box["y1"] <= box["y2"] <= height, box
