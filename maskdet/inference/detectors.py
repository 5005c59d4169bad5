"""Turn a frame into Detections: PyTorch weights through Ultralytics, or ONNX Runtime.

The ONNX path is the fast one on a CPU: ONNX Runtime runs the network, OpenCV letterboxes
and runs NMS, and torch is never imported (which also makes startup quicker). Both kinds of
Ultralytics export are read: the classic (1, 4 + classes, anchors) output, which needs NMS, and
YOLO26's end-to-end (1, max_det, 6) output from its NMS-free head, which does not.
"""

from __future__ import annotations

import ast
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maskdet.config import INFERENCE_IMGSZ
from maskdet.errors import UserError
from maskdet.inference.detections import Detections


@dataclass(frozen=True)
class DetectSettings:
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 1000
    classes: tuple[int, ...] | None = None
    agnostic_nms: bool = False


class Detector(Protocol):
    names: tuple[str, ...]
    imgsz: int

    def __call__(self, image: np.ndarray) -> Detections: ...


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to size x size with grey, as YOLO was trained."""
    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = round(h * scale), round(w * scale)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else image
    top, left = (size - nh) // 2, (size - nw) // 2
    padded = cv2.copyMakeBorder(resized, top, size - nh - top, left, size - nw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return padded, scale, (left, top)


def to_blob(image: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """HWC BGR uint8 -> 1x3xHxW RGB in [0, 1]. Channel by channel: 15x faster than cv2.dnn.blobFromImage."""
    h, w = image.shape[:2]
    blob = np.empty((1, 3, h, w), np.float32)
    for i, channel in enumerate(cv2.split(image)[::-1]):
        blob[0, i] = channel
    blob *= 1 / 255.0
    return blob.astype(dtype, copy=False)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, settings: DetectSettings) -> np.ndarray:
    """Indices kept by OpenCV's NMS, per class unless agnostic, best first, at most max_det."""
    if len(scores) == 0:
        return np.zeros(0, int)
    xywh = np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)
    if settings.agnostic_nms:
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), settings.conf, settings.iou, top_k=settings.max_det)
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), settings.conf, settings.iou,
                                       top_k=settings.max_det)
    keep = np.asarray(keep, int).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][: settings.max_det]


class OnnxDetector:
    """An Ultralytics ONNX export run with ONNX Runtime: the classic output (NMS here) or an end-to-end one."""

    def __init__(self, path: Path, settings: DetectSettings, imgsz: int | None = None, device: str | None = None, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        providers = ["CPUExecutionProvider"]
        if device not in (None, "", "cpu"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError(f"--device {device}: ONNX Runtime here has no CUDA support (install onnxruntime-gpu "
                                "on a machine with an NVIDIA GPU), use --device cpu or leave --device out")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise UserError(f"cannot load ONNX model: {exc}", path) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task", "detect") != "detect":
            raise UserError(f"this is a {meta['task']} model, not a detector: detect.py needs a detection model "
                            "(task 'detect', boxes out)", path)
        self.names = _names_from_metadata(meta.get("names"), path)
        self.input = self.session.get_inputs()[0]
        check_output_shape(self.session.get_outputs()[0].shape, meta, len(self.names), path)
        h, w = self.input.shape[2:4]
        static = isinstance(h, int) and isinstance(w, int)
        if static and imgsz and imgsz != h:
            pt = Path(path).with_suffix(".pt")
            simpler = f"--weights {pt} --imgsz {imgsz} (the .pt takes any size)" if pt.exists() else \
                "its .pt checkpoint, which takes any size"
            raise UserError(f"this ONNX model takes {h}x{w} inputs, not --imgsz {imgsz}: use {simpler}, or "
                            f"re-export it with python export.py --imgsz {imgsz} (or --dynamic)", path)
        self.imgsz = int(h) if static else int(imgsz or ast.literal_eval(meta.get("imgsz", "[640, 640]"))[0])
        self.dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32
        self.end2end = is_end2end(meta, self.session.get_outputs()[0].shape, len(self.names))
        self.settings = settings

    def __call__(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        padded, scale, (left, top) = letterbox(image, self.imgsz)
        blob = to_blob(padded, self.dtype)
        t1 = time.perf_counter()
        (raw,) = self.session.run(None, {self.input.name: blob})
        t2 = time.perf_counter()
        decode = decode_end2end if self.end2end else decode_raw
        boxes, scores, class_ids = decode(raw[0].astype(np.float32, copy=False), self.settings)
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / scale).clip(0, image.shape[1])
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / scale).clip(0, image.shape[0])
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "nms": (t3 - t2) * 1e3}
        return Detections(boxes.astype(np.float32), scores, class_ids.astype(int), self.names, timings)


Decoded = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes x1y1x2y2 (model pixels), scores, class ids


def wanted(scores: np.ndarray, class_ids: np.ndarray, settings: DetectSettings) -> np.ndarray:
    """The boxes --conf and --classes keep, whichever head produced them."""
    mask = scores >= settings.conf
    if settings.classes is not None:
        mask &= np.isin(class_ids, settings.classes)
    return mask


def decode_raw(pred: np.ndarray, settings: DetectSettings) -> Decoded:
    """The classic head's (4 + classes, anchors) output: xywh and one score per class, then NMS."""
    pred = pred.T  # (anchors, 4 + classes)
    scores_all = pred[:, 4:]
    class_ids = scores_all.argmax(1)
    scores = scores_all[np.arange(len(pred)), class_ids]
    mask = wanted(scores, class_ids, settings)
    pred, scores, class_ids = pred[mask], scores[mask], class_ids[mask]
    xy, wh = pred[:, :2], pred[:, 2:4]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    keep = nms(boxes, scores, class_ids, settings)
    return boxes[keep], scores[keep], class_ids[keep]


def decode_end2end(pred: np.ndarray, settings: DetectSettings) -> Decoded:
    """An end-to-end export's (max_det, 6) output: x1 y1 x2 y2 score class, already free of duplicates.

    YOLO26's one-to-one head is trained to give one box per object, so there is no NMS to run
    (--iou and --agnostic-nms do not apply); the confidence, class filter and --max-det still do.
    """
    scores, class_ids = pred[:, 4], pred[:, 5].round().astype(int)
    mask = wanted(scores, class_ids, settings)
    order = np.argsort(-scores[mask], kind="stable")[: settings.max_det]
    return pred[mask][order, :4].copy(), scores[mask][order], class_ids[mask][order]


def check_output_shape(shape: list, meta: dict[str, str], classes: int, path: Path) -> None:
    """Refuse, in one line, an ONNX model whose output is not Ultralytics' detection layout for its own
    class list: (1, 4 + classes, anchors), or (1, k, 6) end-to-end. A classifier's (1, classes) or a
    graph edited after export would otherwise fail on the first frame with an IndexError."""
    dims = [d if isinstance(d, int) else None for d in shape]
    if len(dims) == 3 and (dims[1] in (None, 4 + classes) or (is_end2end(meta, shape, classes) and dims[2] in (None, 6))):
        return
    raise UserError(f"not a detection model for its {classes} classes: its output is {list(shape)}, "
                    f"expected (1, {4 + classes}, anchors) or an end-to-end (1, k, 6)", path)


def is_end2end(meta: dict[str, str], output_shape: list, classes: int) -> bool:
    """Whether an Ultralytics ONNX export ends in the NMS-free head (YOLO26 exported with nms=False).

    Ultralytics writes `end2end` into the metadata; for exports that lack it, the output shape
    tells: (1, max_det, 6) rows of boxes, not (1, 4 + classes, anchors) columns of scores.
    """
    if "end2end" in meta:
        return meta["end2end"].strip().lower() == "true"
    return len(output_shape) == 3 and output_shape[2] == 6 and output_shape[1] != 4 + classes


class TorchDetector:
    """A .pt checkpoint through Ultralytics' own predictor (its NMS, its preprocessing)."""

    def __init__(self, path: Path, settings: DetectSettings, imgsz: int | None = None, device: str | None = None,
                 half: bool = False):
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(path), task="detect")
        except Exception as exc:  # a broken checkpoint raises whatever torch.load raises
            raise UserError(f"cannot load weights: {exc}", path) from None
        if self.model.task != "detect":
            raise UserError(f"this is a {self.model.task} model, not a detector: detect.py needs a detection model "
                            "(task 'detect', boxes out)", path)
        names = self.model.names
        self.names = tuple(names[i] for i in sorted(names))
        head_classes = getattr(getattr(self.model.model, "model", [None])[-1], "nc", len(self.names))
        if head_classes != len(self.names):
            raise UserError(f"its head predicts {head_classes} classes but it names {len(self.names)}", path)
        # The size the shipped model was chosen at on val, not each checkpoint's own training size
        # (stage 2 trained at 640 px did best at 768: small faces are found better upscaled; models/README.md).
        self.imgsz = int(imgsz or INFERENCE_IMGSZ)
        self.kwargs = dict(conf=settings.conf, iou=settings.iou, max_det=settings.max_det, imgsz=self.imgsz,
                           classes=list(settings.classes) if settings.classes is not None else None,
                           agnostic_nms=settings.agnostic_nms, verbose=False)
        if device not in (None, "", "cpu"):
            check_torch_device(device)
        if half:
            if device in (None, "") and not _cuda_available():
                raise UserError("--half needs a CUDA GPU, and there is none here (FP16 on a CPU is not supported)")
            if device == "cpu":
                raise UserError("--half needs a CUDA GPU: leave out --device cpu or --half")
            self.kwargs["quantize"] = "fp16"  # Ultralytics 8.4's name for the deprecated half=True
        if device:
            self.kwargs["device"] = device

    def __call__(self, image: np.ndarray) -> Detections:
        result = self.model.predict(image, **self.kwargs)[0]
        boxes = result.boxes
        speed = result.speed
        return Detections(boxes.xyxy.cpu().numpy().astype(np.float32), boxes.conf.cpu().numpy().astype(np.float32),
                          boxes.cls.cpu().numpy().astype(int), self.names,
                          {"preprocess": speed["preprocess"], "inference": speed["inference"], "nms": speed["postprocess"]})


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_torch_device(device: str) -> None:
    """A one-line error for a --device PyTorch cannot use here ('0' on a machine without a GPU), instead of
    Ultralytics' traceback on the first frame."""
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--device mps: no Apple GPU here; use --device cpu or leave --device out")
        return
    ids = [d.strip() for d in str(device).removeprefix("cuda:").split(",") if d.strip()]
    if not ids or not all(d.isdigit() for d in ids):
        raise UserError(f"--device must be 'cpu', 'mps' or CUDA device numbers such as 0 or 0,1; got {device!r}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise UserError(f"--device {device}: no CUDA GPU here; use --device cpu or leave --device out")
    if any(int(d) >= count for d in ids):
        raise UserError(f"--device {device}: this machine has {count} CUDA GPU(s), numbered 0..{count - 1}")


def _names_from_metadata(raw: str | None, path: Path) -> tuple[str, ...]:
    if not raw:
        raise UserError("this ONNX file has no class names in its metadata: export it with python export.py", path)
    names = ast.literal_eval(raw)
    return tuple(names[i] for i in sorted(names)) if isinstance(names, dict) else tuple(names)


def load_detector(weights: str | Path, settings: DetectSettings, imgsz: int | None = None, device: str | None = None,
                  half: bool = False) -> Detector:
    path = Path(weights)
    if not path.exists():
        from maskdet.training.trainer import resolve_model

        # A hub name (yolo11n.pt) is downloaded by Ultralytics online; offline this says what to do instead.
        path = Path(resolve_model(str(weights), "Use the shipped model (leave out --weights) or a local .pt/.onnx file"))
    if path.suffix == ".onnx":
        if half:
            raise UserError("--half is for .pt models on a CUDA GPU; an .onnx runs at the precision it was exported "
                            "with (python export.py --half)", path)
        detector = OnnxDetector(path, settings, imgsz, device)
    elif path.suffix == ".pt":
        detector = TorchDetector(path, settings, imgsz, device, half)
    else:
        raise UserError("weights must be a .pt or .onnx file", path)
    warmup(detector)
    return detector


def warmup(detector: Detector) -> None:
    """One pass on a blank image, so one-off setup (graph optimisation, fusing) is not billed to frame 1."""
    detector(np.full((detector.imgsz, detector.imgsz, 3), 114, np.uint8))
