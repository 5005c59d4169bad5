"""serve.py --tile: a 1080p camera frame posted to the API gets its small faces, each once.

The frame is the tiles test's scene (tests/synthetic.py): 12 faces about 22 px high in 1920x1080, which the
shipped model misses at the whole frame's scale. The server runs the same per-frame step as detect.py, so
--tile there must do what detect.py --tile does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from synthetic import boxes_on_each_face, small_face_scene  # noqa: E402


def test_tiles_find_the_small_faces_of_a_1080p_frame_that_the_whole_frame_misses(make_client, tmp_path):
    frame, truth = small_face_scene()
    path = tmp_path / "platform.png"
    assert cv2.imwrite(str(path), frame)
    answers = {}
    for tile in (0, 480):
        client = make_client(weights=ROOT / "models" / "best.onnx", tile=tile)
        health = client.get("/api/health").json()
        assert (health["tile"], health["augment"]) == (tile, False)  # what a client can see of the server's views
        with open(path, "rb") as fh:
            response = client.post("/api/detect", files={"file": (path.name, fh, "image/png")})
        assert response.status_code == 200, response.text
        answers[tile] = boxes_on_each_face([[d["x1"], d["y1"], d["x2"], d["y2"]] for d in response.json()["detections"]], truth)
    assert sum(n > 0 for n in answers[0]) <= 2
    assert answers[480] == [1] * len(truth)
