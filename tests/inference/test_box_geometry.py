"""Boxes come back in the photo's own pixels, exactly, whatever its shape and however much it is resized.

The detector letterboxes every photo (resize to fit, grey padding centred), so a box the model finds
in its input must be moved back: minus the padding, divided by the scale, clipped to the photo. A bug
there moves every box, silently: forgetting the horizontal padding shifts each box on a portrait photo
sideways by the pad. These specifications pin it down with hand-computed numbers (no helper that shares
the code's own arithmetic), on portrait, landscape and square photos, at scales below, at and above 1:

* the .onnx path, through a real ONNX Runtime session on a scripted model that always outputs known
  boxes (classic and end-to-end layouts);
* the .pt path, through Ultralytics' own predictor, with the network's output replaced by the same
  known boxes placed where its letterbox put the face;
* class-agnostic NMS obeys --iou (both paths), at two IoU values either side of the boxes' overlap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskdet.inference.detectors import DetectSettings, letterbox, load_detector, nms

ROOT = Path(__file__).resolve().parents[2]
IMGSZ = 320
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")

# (photo width, height), a face in photo pixels (x1, y1, x2, y2), and where the letterbox puts that
# face in the 320x320 model input, worked out by hand: scale = min(320 / h, 320 / w), padding centred.
CASES = {
    # portrait 120x160: scale 2, resized 240x320, 40 px grey left and right
    "portrait-x2": ((120, 160), (30, 40, 90, 120), (100, 80, 220, 240)),
    # portrait 480x640: scale 0.5, resized 240x320, 40 px left and right
    "portrait-x0.5": ((480, 640), (60, 100, 300, 500), (70, 50, 190, 250)),
    # portrait 200x300: scale 16/15, resized 213x320, 53 px left (107 in all, the odd pixel on the right)
    "portrait-x1.07": ((200, 300), (30, 60, 150, 240), (85, 64, 213, 256)),
    # landscape 160x120: scale 2, resized 320x240, 40 px top and bottom
    "landscape-x2": ((160, 120), (30, 20, 110, 100), (60, 80, 220, 240)),
    # landscape 640x480: scale 0.5, resized 320x240, 40 px top and bottom
    "landscape-x0.5": ((640, 480), (100, 60, 400, 300), (50, 70, 200, 190)),
    # square 100x100: scale 3.2, no padding
    "square-x3.2": ((100, 100), (10, 20, 60, 90), (32, 64, 192, 288)),
    # square 320x320: scale 1, no padding, no resize
    "square-x1": ((320, 320), (10, 20, 60, 90), (10, 20, 60, 90)),
}


def photo(wh: tuple[int, int]) -> np.ndarray:
    w, h = wh
    return np.random.default_rng(w * h).integers(0, 256, (h, w, 3), np.uint8)


# --- the letterbox itself ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_letterbox_puts_the_face_where_the_hand_computed_box_says(case):
    (w, h), face, in_model = CASES[case]
    image = np.full((h, w, 3), 30, np.uint8)
    x1, y1, x2, y2 = face
    image[y1:y2, x1:x2] = 250  # a bright face on a dark photo
    padded, scale, (left, top) = letterbox(image, IMGSZ)
    assert padded.shape == (IMGSZ, IMGSZ, 3)
    assert scale == pytest.approx(min(IMGSZ / h, IMGSZ / w))
    ys, xs = np.nonzero(padded[..., 0] > 200)
    mx1, my1, mx2, my2 = in_model
    # The bright block covers the expected box, to within the one pixel that interpolation blurs.
    assert abs(xs.min() - mx1) <= 1 and abs(xs.max() + 1 - mx2) <= 1, (xs.min(), xs.max())
    assert abs(ys.min() - my1) <= 1 and abs(ys.max() + 1 - my2) <= 1, (ys.min(), ys.max())
    # The padding is grey 114 and the photo starts right after it.
    photo_cols = np.nonzero((padded[..., 0] != 114).any(axis=0))[0]
    photo_rows = np.nonzero((padded[..., 0] != 114).any(axis=1))[0]
    assert (photo_cols.min(), photo_rows.min()) == (left, top)
    assert (photo_cols.max() + 1 - left, photo_rows.max() + 1 - top) == (round(w * scale), round(h * scale))


def test_the_letterbox_of_a_photo_already_at_model_size_is_the_photo():
    image = photo((IMGSZ, IMGSZ))
    padded, scale, pad = letterbox(image, IMGSZ)
    assert scale == 1 and pad == (0, 0)
    assert np.array_equal(padded, image)


# --- the .onnx path ----------------------------------------------------------------------------


def onnx_detector(tmp_path, kit, boxes, layout: str = "classic", **settings):
    """A real OnnxDetector on a scripted model that outputs `boxes` (model pixels) for any photo."""
    write = kit.write_scripted_onnx if layout == "classic" else kit.write_scripted_end2end_onnx
    path = write(tmp_path / f"{layout}.onnx", boxes, IMGSZ)
    return load_detector(path, DetectSettings(**settings))


@pytest.mark.parametrize("layout", ["classic", "end2end"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_onnx_boxes_come_back_in_photo_pixels_exactly(tmp_path, kit, case, layout):
    wh, face, in_model = CASES[case]
    detector = onnx_detector(tmp_path, kit, [(*in_model, 1, 0.9)], layout)
    det = detector(photo(wh))
    assert det.xyxy.shape == (1, 4)
    np.testing.assert_allclose(det.xyxy[0], face, atol=1e-3)
    assert det.class_id.tolist() == [1] and det.confidence[0] == pytest.approx(0.9)


def test_a_face_on_a_portrait_photo_is_not_shifted_by_the_padding(tmp_path, kit):
    # The issue's own example: 120x160, the face at (30, 40, 90, 120); forgetting the 40 px pad gives (50, 40, 110, 120).
    detector = onnx_detector(tmp_path, kit, [(100, 80, 220, 240, 0, 0.9)])
    np.testing.assert_allclose(detector(photo((120, 160))).xyxy[0], (30, 40, 90, 120), atol=1e-3)


@pytest.mark.parametrize("layout", ["classic", "end2end"])
def test_boxes_reaching_into_the_padding_are_clipped_to_the_photo(tmp_path, kit, layout):
    # Portrait 120x160 (pad 40 px left and right): a box from the left pad to past the right edge, and one
    # from above the input to below it, come back clipped to the photo's 120x160.
    boxes = [(10, 100, 300, 200, 0, 0.9), (120, -20, 160, 340, 1, 0.8)]
    det = onnx_detector(tmp_path, kit, boxes, layout)(photo((120, 160)))
    np.testing.assert_allclose(det.xyxy, [(0, 50, 120, 100), (40, 0, 60, 160)], atol=1e-3)


def test_several_boxes_on_one_landscape_photo_each_come_back(tmp_path, kit):
    (w, h), face, in_model = CASES["landscape-x0.5"]
    other = (500, 100, 620, 460)  # in photo pixels; x0.5 and 40 px down: (250, 90, 310, 270)
    det = onnx_detector(tmp_path, kit, [(*in_model, 0, 0.9), (250, 90, 310, 270, 2, 0.7)])(photo((w, h)))
    np.testing.assert_allclose(det.xyxy, [face, other], atol=1e-3)
    assert det.class_id.tolist() == [0, 2]


# --- the .pt path ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_model():
    pytest.importorskip("ultralytics", reason="the .pt path needs requirements-train.txt")
    pt = ROOT / "models" / "best.pt"
    if not pt.exists():
        pytest.skip(f"{pt} is not here")
    return pt


@pytest.fixture
def scripted_network(monkeypatch):
    """Replace the network's output (Ultralytics' AutoBackend.forward) by known faces.

    scripted_network(photo_wh, faces) makes every forward pass report `faces` ((x1, y1, x2, y2, class,
    score) in photo pixels) where a letterbox of the input tensor's own shape puts them, so the test
    checks what Ultralytics' predictor and our TorchDetector do with the output, not the network."""
    import torch
    from ultralytics.nn.autobackend import AutoBackend

    script: dict = {}

    def forward(self, im, *args, **kwargs):
        h_in, w_in = im.shape[2:]
        out = torch.zeros((im.shape[0], 4 + len(NAMES), max(1, len(script.get("faces", [])))))
        if "wh" in script:
            w, h = script["wh"]
            scale = min(h_in / h, w_in / w)
            left, top = (w_in - round(w * scale)) / 2, (h_in - round(h * scale)) / 2
            for j, (x1, y1, x2, y2, cls, score) in enumerate(script["faces"]):
                mx1, my1, mx2, my2 = x1 * scale + left, y1 * scale + top, x2 * scale + left, y2 * scale + top
                out[:, :4, j] = torch.tensor([(mx1 + mx2) / 2, (my1 + my2) / 2, mx2 - mx1, my2 - my1])
                out[:, 4 + cls, j] = score
        return out.to(im.device)

    monkeypatch.setattr(AutoBackend, "forward", forward)

    def set_faces(wh: tuple[int, int], faces: list[tuple]) -> None:
        script.update(wh=wh, faces=faces)

    return set_faces


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pt_boxes_come_back_in_photo_pixels(torch_model, scripted_network, case):
    wh, face, _in_model = CASES[case]
    detector = load_detector(torch_model, DetectSettings(), imgsz=IMGSZ)
    scripted_network(wh, [(*face, 1, 0.9)])
    det = detector(photo(wh))
    assert det.xyxy.shape == (1, 4)
    # Ultralytics rounds its padding to whole pixels: within a pixel (the padding bug is 40 px).
    np.testing.assert_allclose(det.xyxy[0], face, atol=1.0)
    assert det.class_id.tolist() == [1] and det.confidence[0] == pytest.approx(0.9)


# --- class-agnostic NMS obeys --iou --------------------------------------------------------------

# Two faces of different classes, the second 20 px to the right: overlap 80x100, union 12,000, IoU 2/3.
FACE_A = (0, 0, 100, 100)
FACE_B = (20, 0, 120, 100)
IOU_AB = 2 / 3
# --iou under the overlap: the weaker box goes; over it: both stay (the default 0.45 would drop one).
AGNOSTIC = [(0.5, 1), (0.8, 2)]


def test_the_two_agnostic_test_faces_overlap_with_iou_two_thirds():
    ix = min(FACE_A[2], FACE_B[2]) - max(FACE_A[0], FACE_B[0])
    inter = ix * (FACE_A[3] - FACE_A[1])
    assert inter / (2 * 100 * 100 - inter) == pytest.approx(IOU_AB)
    assert AGNOSTIC[0][0] < IOU_AB < AGNOSTIC[1][0] and DetectSettings().iou < IOU_AB


@pytest.mark.parametrize("iou, kept", AGNOSTIC)
def test_agnostic_nms_obeys_iou(iou, kept):
    boxes = np.array([FACE_A, FACE_B], np.float32)
    keep = nms(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), DetectSettings(iou=iou, agnostic_nms=True))
    assert keep.tolist() == [0, 1][:kept]  # the better one first, the weaker one only when it may stay


@pytest.mark.parametrize("iou, kept", AGNOSTIC)
def test_agnostic_nms_in_the_onnx_detector_obeys_iou(tmp_path, kit, iou, kept):
    faces = [(*FACE_A, 0, 0.9), (*FACE_B, 1, 0.8)]
    det = onnx_detector(tmp_path, kit, faces, iou=iou, agnostic_nms=True)(photo((IMGSZ, IMGSZ)))
    assert det.class_id.tolist() == [0, 1][:kept]
    np.testing.assert_allclose(det.xyxy, [FACE_A, FACE_B][:kept], atol=1e-3)


@pytest.mark.parametrize("iou, kept", AGNOSTIC)
def test_agnostic_nms_in_the_pt_detector_obeys_iou(torch_model, scripted_network, iou, kept):
    detector = load_detector(torch_model, DetectSettings(iou=iou, agnostic_nms=True), imgsz=IMGSZ)
    scripted_network((IMGSZ, IMGSZ), [(*FACE_A, 0, 0.9), (*FACE_B, 1, 0.8)])
    det = detector(photo((IMGSZ, IMGSZ)))
    assert det.class_id.tolist() == [0, 1][:kept]


@pytest.mark.parametrize("iou", [0.5, 0.8])
def test_without_agnostic_nms_faces_of_different_classes_never_suppress_each_other(tmp_path, kit, iou):
    faces = [(*FACE_A, 0, 0.9), (*FACE_B, 1, 0.8)]
    det = onnx_detector(tmp_path, kit, faces, iou=iou)(photo((IMGSZ, IMGSZ)))
    assert det.class_id.tolist() == [0, 1]
