"""Small labelled datasets the tests draw themselves (cartoon faces from samples/make_sample.py)."""

from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")

_spec = importlib.util.spec_from_file_location("make_sample", ROOT / "samples" / "make_sample.py")
make_sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_sample)


def write_yolo_dataset(root: Path, counts: dict[str, int] | None = None, size: tuple[int, int] = (160, 120)) -> Path:
    """data/{split}/{images,labels} with a data.yaml beside it; returns the yaml path."""
    counts = counts or {"train": 8, "val": 4, "test": 4}
    seed = 0
    for split, n in counts.items():
        for _ in range(n):
            img, boxes = make_sample.make_image(seed, size=(480, 320))
            img = cv2.resize(img, size)
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            (root / split / "labels").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / "images" / f"im{seed:03d}.png"), img)
            (root / split / "labels" / f"im{seed:03d}.txt").write_text("".join(f"{b.to_line()}\n" for b in boxes))
            seed += 1
    yaml = root / "data.yaml"
    yaml.write_text("path: .\n" + "".join(f"{s}: {s}/images\n" for s in counts) +
                    "names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES)))
    return yaml


def write_voc_dataset(root: Path, n: int = 12) -> Path:
    """images/, annotations/ (Pascal VOC, as Kaggle ships it) and splits/ lists, like the Kaggle data."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "splits").mkdir()
    stems = []
    for i in range(n):
        img, boxes = make_sample.make_image(i)
        h, w = img.shape[:2]
        stem = f"face{i}"
        stems.append(stem)
        cv2.imwrite(str(root / "images" / f"{stem}.png"), img)
        objects = "".join(
            f"<object><name>{NAMES[b.cls]}</name><bndbox><xmin>{int(x1 * w)}</xmin><ymin>{int(y1 * h)}</ymin>"
            f"<xmax>{int(x2 * w)}</xmax><ymax>{int(y2 * h)}</ymax></bndbox></object>"
            for b in boxes for x1, y1, x2, y2 in [b.edges]
        )
        (root / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    cut = [0, n // 2, 3 * n // 4, n]
    for k, split in enumerate(("train", "val", "test")):
        (root / "splits" / f"{split}.txt").write_text("\n".join(stems[cut[k]:cut[k + 1]]) + "\n")
    return root


def write_scripted_onnx(path: Path, boxes: Sequence[tuple[float, float, float, float, int, float]], imgsz: int,
                        names: Sequence[str] = NAMES) -> Path:
    """An ONNX model in Ultralytics' output layout (1, 4 + classes, anchors) that always predicts `boxes`.

    Each box is (x1, y1, x2, y2, class_id, score) in model-input pixels; metadata carries the names,
    exactly as export.py writes them, so OnnxDetector and detect.py load it like any export.
    """
    out = np.zeros((1, 4 + len(names), max(len(boxes), 1)), np.float32)
    for j, (x1, y1, x2, y2, cls, score) in enumerate(boxes):
        out[0, :4, j] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[0, 4 + cls, j] = score
    return _constant_onnx(path, out, imgsz, names, {})


def write_scripted_end2end_onnx(path: Path, boxes: Sequence[tuple[float, float, float, float, int, float]], imgsz: int,
                                names: Sequence[str] = NAMES, rows: int = 300) -> Path:
    """An ONNX model in the end-to-end layout of a YOLO26 export (1, rows, 6) = x1 y1 x2 y2 score class,
    always predicting `boxes` (padded with zero rows, as the NMS-free head pads its top-k), with the
    metadata Ultralytics writes (`end2end`, names, imgsz, stride, task)."""
    out = np.zeros((1, rows, 6), np.float32)
    for j, (x1, y1, x2, y2, cls, score) in enumerate(boxes):
        out[0, j] = [x1, y1, x2, y2, score, cls]
    return _constant_onnx(path, out, imgsz, names,
                          {"end2end": "True", "stride": "32", "task": "detect", "batch": "1", "channels": "3"})


def _constant_onnx(path: Path, out: np.ndarray, imgsz: int, names: Sequence[str], metadata: dict[str, str]) -> Path:
    """A one-node ONNX graph that returns `out` for any image, with export.py's metadata (names, imgsz)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(out, "value"))
    graph = helper.make_graph([node], "scripted",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    helper.set_model_props(proto, {"names": str(dict(enumerate(names))), "imgsz": str([imgsz, imgsz]), **metadata})
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def to_model_pixels(box_xyxy: Sequence[float], image_wh: tuple[int, int], imgsz: int) -> tuple[float, ...]:
    """Where a box in image pixels lands after detect's letterbox (resize to fit, centred grey padding)."""
    w, h = image_wh
    scale = min(imgsz / h, imgsz / w)
    left, top = (imgsz - round(w * scale)) // 2, (imgsz - round(h * scale)) // 2
    x1, y1, x2, y2 = box_xyxy
    return x1 * scale + left, y1 * scale + top, x2 * scale + left, y2 * scale + top


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid black 1-bit PNG of width x height: a few hundred kilobytes on disk, gigabytes decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pack = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def colour_classifier(path: Path, weight: float = 0.4, size: int = 32) -> Path:
    """An ONNX crop classifier, Ultralytics' layout (N,3,size,size RGB in [0,1] -> N,3 softmax), whose rule is the
    crop's mean colour; second_stage.json beside it."""
    import pytest

    from maskdet.inference.second_stage import SIDECAR

    onnx = pytest.importorskip("onnx", reason="needs onnx (requirements-train.txt) to write the test classifier")
    from onnx import TensorProto, helper

    # logits = 12 * (mean RGB) @ W: red (r high) -> class 2, blue (b high) -> class 1, grey -> nearly even
    w = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32) * 12  # rows: R, G, B
    nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["output0"], axis=1)]
    graph = helper.make_graph(nodes, "colour", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 3])],
                              [helper.make_tensor("w", TensorProto.FLOAT, [3, 3], w.flatten().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in {"task": "classify", "names": str(dict(enumerate(NAMES)))}.items():
        model.metadata_props.add(key=key, value=value)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    path.with_name(SIDECAR).write_text(json.dumps({"weight": weight, "margin": 0.0, "size": size}), encoding="utf-8")
    return path


# The sample photo's face, as the shipped model boxes it (without_mask), and the height small_face_scene shrinks it to.
SAMPLE_FACE = (181, 89, 269, 180)
SMALL_FACE_PX = 22


def small_face_scene() -> tuple[np.ndarray, np.ndarray]:
    """A grey 1920x1080 frame with 12 copies of the sample's face, each about 22 px high (too small for the whole frame
    letterboxed to 704 px; found in 480-px tiles); returns the frame and their true boxes."""
    photo = cv2.imread(str(ROOT / "samples" / "images" / "astronaut.jpg"))
    x1, y1, x2, y2 = SAMPLE_FACE
    mx, my = int(0.4 * (x2 - x1)), int(0.4 * (y2 - y1))
    crop = photo[y1 - my:y2 + my, x1 - mx:x2 + mx]
    scale = SMALL_FACE_PX / (y2 - y1)
    face = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(128, 6, (1080, 1920, 3)), 0, 255).astype(np.uint8)
    # 480-px tiles start at x 0, 360, 720, 1080, 1440 and y 0, 300, 600: several faces straddle seams.
    corners = [(100, 100), (350, 150), (1050, 120), (1430, 290), (1800, 90), (300, 620),
               (710, 590), (900, 700), (1070, 640), (1600, 900), (200, 960), (1100, 430)]
    truth = []
    for cx, cy in corners:
        h, w = face.shape[:2]
        frame[cy:cy + h, cx:cx + w] = face
        truth.append([cx + mx * scale, cy + my * scale, cx + mx * scale + (x2 - x1) * scale, cy + h - my * scale])
    return frame, np.array(truth, np.float32)


def boxes_on_each_face(found_xyxy: np.ndarray, truth: np.ndarray, min_iou: float = 0.3) -> list[int]:
    """For each true face (x1, y1, x2, y2), how many of the boxes found overlap it (IoU >= min_iou): 1 each is
    every face found once; 0 a face missed, 2 a face reported twice."""
    from maskdet.inference.detections import box_iou

    found = np.asarray(found_xyxy, np.float32).reshape(-1, 4)
    if not len(found):
        return [0] * len(truth)
    return [int((row >= min_iou).sum()) for row in box_iou(np.asarray(truth, np.float32), found)]


def write_boxes_dataset(root: Path, boxes, photos: int = 2, side: int = 160) -> Path:
    """A val split of `photos` plain grey side x side photos, each labelled with the same boxes
    (x1, y1, x2, y2, class id, score: the form write_scripted_onnx takes, so a scripted model can find exactly
    them); returns its data.yaml."""
    for sub in ("images", "labels"):
        (root / "val" / sub).mkdir(parents=True)
    lines = "".join(f"{c} {(x1 + x2) / (2 * side)} {(y1 + y2) / (2 * side)} {(x2 - x1) / side} {(y2 - y1) / side}\n"
                    for x1, y1, x2, y2, c, _ in boxes)
    for i in range(photos):
        cv2.imwrite(str(root / "val" / "images" / f"p{i}.png"), np.full((side, side, 3), 90 + i, np.uint8))
        (root / "val" / "labels" / f"p{i}.txt").write_text(lines)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: val/images\nval: val/images\nnames: [{', '.join(NAMES)}]\n")
    return root / "data.yaml"


def h264_video(path: Path, frames: int = 10, size: tuple[int, int] = (160, 120)) -> Path:
    """An H.264 video (PyAV's libx264), the codec of most cameras, in the container its suffix names (.mp4,
    .ts): its frame size is in the container's header. Frame i is grey level 20 i, its top-left corner white."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mpegts" if path.suffix == ".ts" else None) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        for i in range(frames):
            image = np.full((size[1], size[0], 3), 20 * i % 255, np.uint8)
            image[: size[1] // 4, : size[0] // 4] = 255  # a white top-left corner: which way is up
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def video_frames(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from a video (the reference the project's own readers are held to)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames
