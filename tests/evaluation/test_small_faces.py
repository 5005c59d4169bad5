"""The small-faces scene (maskdet/evaluation/small_faces.py): real faces shrunk, never blown up, laid out
on camera-sized frames without overlapping, each used once; and how found faces are counted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from maskdet.evaluation.small_faces import GRID, SceneCounts, build_scenes, labelled_faces

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
from synthetic import write_boxes_dataset  # noqa: E402


def coloured_face(index: int, face_h: int = 60, face_w: int = 48):
    """A crop with a flat face-coloured box in it, margin around: (crop, face box in the crop, class)."""
    crop = np.full((face_h + 40, face_w + 40, 3), 30, np.uint8)
    crop[20:20 + face_h, 20:20 + face_w] = (index * 5 % 255, 150, 200)
    return crop, (20.0, 20.0, 20.0 + face_w, 20.0 + face_h), index % 3


def test_every_face_is_shrunk_to_the_height_asked_and_used_once_without_overlap():
    faces = [coloured_face(i) for i in range(GRID[0] * GRID[1] + 7)]  # a full frame and a few more
    scenes = build_scenes(faces, face_px=20)
    assert [len(s.boxes) for s in scenes] == [GRID[0] * GRID[1], 7]
    assert sorted(np.concatenate([s.classes for s in scenes]).tolist()) == sorted(f[2] for f in faces)
    for scene in scenes:
        assert scene.image.shape == (1080, 1920, 3)
        heights = scene.boxes[:, 3] - scene.boxes[:, 1]
        assert np.allclose(heights, 20, atol=0.5)
        assert (scene.boxes[:, :2] >= 0).all() and (scene.boxes[:, 2] <= 1920).all() and (scene.boxes[:, 3] <= 1080).all()
        for box in scene.boxes:  # the face's colour is where its box says
            x1, y1, x2, y2 = box.round().astype(int)
            assert scene.image[(y1 + y2) // 2, (x1 + x2) // 2, 1] == 150
        grown = scene.boxes + np.array([-12, -12, 12, 12])  # with their context, the crops do not touch
        for i in range(len(grown)):
            for j in range(i + 1, len(grown)):
                a, b = grown[i], grown[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_only_faces_larger_than_the_minimum_are_taken_from_a_split(tmp_path):
    data = write_boxes_dataset(tmp_path / "data", [(70, 40, 90, 60, 0, 0.8), (10, 10, 60, 70, 1, 0.6)], photos=3)
    taken = labelled_faces(str(data), "val", min_px=30)
    assert len(taken) == 3 and {cls for _, _, cls in taken} == {1}  # the 20-px face is left out of every photo
    crop, (x1, y1, x2, y2), _ = taken[0]
    assert (y2 - y1) == 60 and crop.shape[0] > 60  # the face with context around it


def test_counts_say_found_right_class_twice_and_extra():
    truth = np.array([[0, 0, 20, 20], [100, 100, 120, 120], [200, 200, 220, 220]], np.float32)
    classes = np.array([0, 1, 2])
    found = np.array([[1, 1, 21, 21], [0, 0, 19, 20], [101, 100, 121, 120], [500, 500, 520, 520]], np.float32)
    counts = SceneCounts()
    counts.add(truth, classes, found, np.array([0, 0, 0, 1]))
    assert (counts.faces, counts.found, counts.right_class, counts.twice, counts.extra) == (3, 2, 1, 1, 1)
    assert counts.recall == 2 / 3
