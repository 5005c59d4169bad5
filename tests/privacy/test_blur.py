"""--privacy blur: every face the model found is blurred in every image a monitoring run writes (annotated
video, alert frames, report thumbnails), so the shipped model no longer finds it there, while the same run
with --privacy off leaves faces it finds; no face crop is written at all."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from privacy_outputs import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iou, laplacian_variance, monitoring, report_thumbnails
from synthetic import video_frames

from maskdet.inference.detect import run
from maskdet.privacy.blur import MARGIN, blur_faces, enlarged

pytestmark = pytest.mark.integration  # the Kaggle faces (skipped when the dataset is absent)
EVERY = 4  # frames of the written video looked at


def monitored(video, project: Path, privacy: str, **extra) -> SimpleNamespace:
    summary = run(source=str(video.path), weights=video.model, track=True, alert=["without_mask"], alert_after=0.3,
                  save_csv=True, privacy_level=privacy, project=project, name=privacy, quiet=True, log=lambda _m: None, **extra)
    out = summary.save_dir
    boxes = defaultdict(list)  # frame -> boxes the run found (and, with blur, blurred)
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            boxes[int(row["frame"])].append([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return SimpleNamespace(out=out, boxes=boxes, alerts=alerts, files=files, summary=summary)


@pytest.fixture(scope="module")
def runs(face_video, tmp_path_factory) -> SimpleNamespace:
    project = tmp_path_factory.mktemp("privacy_blur")
    return SimpleNamespace(off=monitored(face_video, project, "off"), blur=monitored(face_video, project, "blur"))


def found_where(finder, image: np.ndarray, boxes: list[list[float]], threshold: float = 0.3) -> list[float]:
    """Confidences of what the model finds (at conf 0.1) over any of `boxes`."""
    det = finder(image)
    return [float(c) for b, c in zip(det.xyxy.tolist(), det.confidence.tolist()) if any(iou(b, x) > threshold for x in boxes)]


def test_annotated_video_frames_show_no_face_where_one_was_found(runs, finder):
    counts = {}
    for level in ("off", "blur"):
        r = getattr(runs, level)
        frames = video_frames(r.out / "door.mp4")
        assert len(frames) == monitoring.FRAMES
        looked = [i for i in range(0, len(frames), EVERY) if r.boxes.get(i)]
        counts[level] = sum(bool(found_where(finder, frames[i], r.boxes[i])) for i in looked), len(looked)
    found_off, looked_off = counts["off"]
    assert found_off >= 0.9 * looked_off, counts  # the faces are there to be found in the annotated frames
    assert counts["blur"][0] == 0, counts  # and not once the run blurred them


def test_alert_frames_show_no_face_where_the_alert_is(runs, finder):
    for level, expect in (("off", True), ("blur", False)):
        alerts = getattr(runs, level).alerts
        assert alerts, f"{level}: the without_mask faces raise alerts"
        for alert in alerts:
            image = monitoring.cv2.imread(str(getattr(runs, level).out / alert["frame_image"]))
            assert bool(found_where(finder, image, [alert["box"]])) is expect, (level, alert)


def test_report_thumbnails_are_blurred_regions(runs, finder):
    off, blur = report_thumbnails(runs.off.out / "report.html"), report_thumbnails(runs.blur.out / "report.html")
    assert len(off) == len(blur) >= 4  # a thumbnail per person and per alert, either way
    upscaled = lambda im: monitoring.cv2.resize(im, None, fx=3, fy=3)  # noqa: E731 (give the model its best chance)
    assert sum(len(finder(upscaled(t))) > 0 for t in off) >= 0.75 * len(off)
    assert [len(finder(upscaled(t))) for t in blur] == [0] * len(blur)


def test_no_face_crop_is_written_and_nothing_points_to_one(runs):
    assert any(f.startswith("people/") for f in runs.off.files) and any(f.endswith("_face.jpg") for f in runs.off.files)
    images = [f for f in runs.blur.files if Path(f).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]
    assert sorted(images) == sorted(["door.mp4"] + [a["frame_image"] for a in runs.blur.alerts])
    with open(runs.blur.out / "people.csv", newline="", encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    assert people and all(p["crop"] == "" for p in people)
    assert all("crop" not in a for a in runs.blur.alerts)
    assert "privacy: blur (every face found was blurred before it was written)" in runs.blur.summary.lines()


def test_blurring_takes_90_percent_of_the_detail_out_of_the_enlarged_box(face_video):
    for name, face in face_video.crops.items():
        canvas = face_video.background()
        face_video.paste(canvas, face, (160, 120))
        box = np.array([[128, 88, 192, 152]], np.float32)  # where the 64 px face is
        blurred = blur_faces(canvas.copy(), box)
        x1, y1, x2, y2 = enlarged(box, MARGIN, 320, 240)[0]
        before, after = laplacian_variance(canvas[y1:y2, x1:x2]), laplacian_variance(blurred[y1:y2, x1:x2])
        assert after <= 0.1 * before, (name, before, after)
        outside = np.ones(canvas.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert np.array_equal(blurred[outside], canvas[outside])  # nothing else changes


def test_the_box_grows_by_the_margin_and_stays_in_the_image():
    assert enlarged(np.array([[100, 100, 140, 180]]), 0.25, 640, 480).tolist() == [[90, 80, 150, 200]]
    assert enlarged(np.array([[0, 5, 40, 50]]), 0.5, 50, 60).tolist() == [[0, 0, 50, 60]]
