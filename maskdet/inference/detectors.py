"""Turn a frame into Detections: PyTorch weights through Ultralytics, or ONNX Runtime.

The ONNX path is the fast one on a CPU: ONNX Runtime runs the network, OpenCV letterboxes
and runs NMS, and torch is never imported (which also makes startup quicker). Both kinds of
Ultralytics export are read: the classic (1, 4 + classes, anchors) output, which needs NMS, and
YOLO26's end-to-end (1, max_det, 6) output from its NMS-free head, which does not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maskdet.config import INFERENCE_IMGSZ, safe_load_yaml, yaml_error_line
from maskdet.errors import UserError
from maskdet.fileio import FileTooLarge, read_bytes_bounded
from maskdet.inference.detections import Detections
from maskdet.inference.model_metadata import imgsz_from_metadata, names_from_metadata
from maskdet.models import OPENVINO_SUFFIX, is_openvino, on_gpu, runtime_installed  # noqa: F401  (runtime_installed: imported from here too)
from maskdet.settings import DetectSettings  # noqa: F401  (its defaults live with every other setting)


class Detector(Protocol):
    names: tuple[str, ...]
    imgsz: int

    def __call__(self, image: np.ndarray) -> Detections: ...


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to size x size with grey, as YOLO was trained.

    Every side keeps at least a pixel: a 5000x1 strip scaled to 640 px would round to 0 rows, which OpenCV's
    resize refuses (such an image is simply looked at, and holds no face)."""
    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
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
    """Indices kept by OpenCV's NMS, per class unless agnostic, best first, at most max_det.

    max_det caps what NMS keeps, not what it looks at: OpenCV's top_k would drop candidates before suppression,
    so a crowd whose faces have more than max_det candidate boxes between them lost its least sure faces."""
    if len(scores) == 0:
        return np.zeros(0, int)
    xywh = np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)
    if settings.agnostic_nms:
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), settings.conf, settings.iou)
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), settings.conf, settings.iou)
    keep = np.asarray(keep, int).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][: settings.max_det]


class ExportedDetector:
    """What the ONNX Runtime and OpenVINO paths share: OpenCV letterboxes, the runtime runs the network
    (`infer`, one 1x3xSxS blob in, the raw output out), and the decoding and NMS happen here, so both
    runtimes give the same boxes for the same network output."""

    names: tuple[str, ...]
    imgsz: int
    dtype: type = np.float32
    end2end: bool = False
    settings: DetectSettings

    def infer(self, blob: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, padded: np.ndarray) -> np.ndarray:
        """The letterboxed BGR uint8 frame as the network's input."""
        return to_blob(padded, self.dtype)

    def __call__(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        padded, scale, (left, top) = letterbox(image, self.imgsz)
        blob = self.prepare(padded)
        t1 = time.perf_counter()
        raw = self.infer(blob)
        t2 = time.perf_counter()
        decode = decode_end2end if self.end2end else decode_raw
        boxes, scores, class_ids = decode(raw[0].astype(np.float32, copy=False), self.settings)
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / scale).clip(0, image.shape[1])
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / scale).clip(0, image.shape[0])
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "nms": (t3 - t2) * 1e3}
        return Detections(boxes.astype(np.float32), scores, class_ids.astype(int), self.names, timings)


class OnnxDetector(ExportedDetector):
    """An Ultralytics ONNX export run with ONNX Runtime (fp32, fp16 or INT8 QDQ): classic output or end-to-end."""

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
        check_task(meta, path)
        self.names = names_from_metadata(meta.get("names"), path)
        self.input = self.session.get_inputs()[0]
        output_shape = self.session.get_outputs()[0].shape
        check_output_shape(output_shape, meta, len(self.names), path)
        h, w = self.input.shape[2:4]
        static = isinstance(h, int) and isinstance(w, int)
        if static and imgsz and imgsz != h:
            raise UserError(_fixed_size_message(h, w, imgsz, Path(path).with_suffix(".pt")), path)
        self.imgsz = int(h) if static else int(imgsz or imgsz_from_metadata(meta.get("imgsz", "[640, 640]"), path))
        self.dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32
        self.end2end = is_end2end(meta, output_shape, len(self.names))
        self.settings = settings

    def infer(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input.name: blob})[0]


METADATA_LIMIT = 1 << 20  # bytes of metadata.yaml read at most: it is a few hundred


class OpenVinoDetector(ExportedDetector):
    """An Ultralytics OpenVINO export (a `*_openvino_model/` folder: model .xml + .bin + metadata.yaml),
    fp32 or INT8 (NNCF). On an Intel or AMD CPU this is the fastest runtime here (models/README.md)."""

    def __init__(self, path: Path, settings: DetectSettings, imgsz: int | None = None, device: str | None = None,
                 threads: int = 0):
        try:
            import openvino as ov
        except ImportError:
            raise UserError("an OpenVINO model needs the openvino package: pip install openvino "
                            "(or use models/best.onnx with ONNX Runtime)", path) from None
        if on_gpu(device):  # compiled for "CPU" below: a GPU asked for would be ignored without a word
            raise UserError(f"--device {device}: an OpenVINO model runs on the CPU here; on a GPU use the .pt "
                            "(--weights models/best.pt) or an .onnx with onnxruntime-gpu, or leave --device out", path)
        folder = path if path.is_dir() else path.parent
        xml = openvino_xml(path)
        meta = _read_openvino_metadata(folder / "metadata.yaml")
        check_task(meta, path)
        self.names = names_from_metadata(meta.get("names"), folder / "metadata.yaml")
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            core = ov.Core()
            model = core.read_model(str(xml))
            shape = model.inputs[0].get_partial_shape()
            output_shape = [d.get_length() if d.is_static else None for d in model.outputs[0].get_partial_shape()]
            self.compiled = core.compile_model(with_uint8_input(model), "CPU", config)
        except Exception as exc:  # openvino raises RuntimeError with long messages
            raise UserError(f"cannot load OpenVINO model: {str(exc).strip().splitlines()[0]}", xml) from None
        h, w = (shape[2].get_length(), shape[3].get_length()) if shape[2].is_static and shape[3].is_static else (None, None)
        if h and imgsz and imgsz != h:
            raise UserError(_fixed_size_message(h, w, imgsz, folder.parent / (folder.name.removesuffix(OPENVINO_SUFFIX)
                                                                             .removesuffix("_int8") + ".pt")), path)
        self.imgsz = int(h or imgsz or imgsz_from_metadata(meta.get("imgsz", [640]), folder / "metadata.yaml"))
        flags = {k: str(v) for k, v in meta.items() if k == "end2end"}  # YAML gives a bool, ONNX metadata text
        check_output_shape(output_shape, flags, len(self.names), path)
        self.end2end = is_end2end(flags, output_shape, len(self.names))
        self.request = self.compiled.create_infer_request()
        self.settings = settings

    def prepare(self, padded: np.ndarray) -> np.ndarray:
        return padded[None]  # BGR uint8 HWC: the model itself converts (with_uint8_input)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        return self.request.infer({0: blob})[0]


def with_uint8_input(model):
    """Move the BGR uint8 HWC -> RGB float NCHW / 255 conversion into the OpenVINO graph, where it fuses
    with the first convolution: one pass less over every frame in Python (to_blob's ~1.5 ms CPU at 704 px)."""
    from openvino import Layout, Type
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


def openvino_xml(path: Path) -> Path:
    """The model .xml of an OpenVINO export: the path itself, or the one .xml in the folder."""
    if path.suffix == ".xml":
        return path
    xmls = sorted(path.glob("*.xml"))
    if len(xmls) != 1:
        raise UserError(f"an OpenVINO model folder holds one .xml (and its .bin); found {len(xmls)}", path)
    return xmls[0]


def _read_openvino_metadata(path: Path) -> dict:
    """A model folder comes from outside: its metadata.yaml is bounded in bytes and read without anchors or
    aliases (a few hundred bytes of nested aliases would expand to gigabytes when the class names are walked)."""
    import yaml

    try:
        meta = safe_load_yaml(read_bytes_bounded(path, METADATA_LIMIT).decode("utf-8"))  # a link to a device too
    except FileTooLarge:
        raise UserError(f"metadata.yaml is over {METADATA_LIMIT:,} bytes: not an Ultralytics export", path) from None
    except FileNotFoundError:
        raise UserError("no metadata.yaml beside the model (class names, size): export it with "
                        "python export.py --int8 or Ultralytics' export format=openvino", path) from None
    except yaml.YAMLError as exc:
        raise UserError(f"metadata.yaml is not valid YAML: {getattr(exc, 'problem', None) or exc}", path,
                        yaml_error_line(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read metadata.yaml: {str(exc).splitlines()[0]}", path) from None
    if not isinstance(meta, dict):
        raise UserError("metadata.yaml is not a mapping: not an Ultralytics export", path)
    return meta


def _fixed_size_message(h: int, w: int, imgsz: int, pt: Path) -> str:
    simpler = f"--weights {pt} --imgsz {imgsz} (the .pt takes any size)" if pt.exists() else \
        "its .pt checkpoint, which takes any size"
    return (f"this model takes {h}x{w} inputs, not --imgsz {imgsz}: use {simpler}, or "
            f"re-export it with python export.py --imgsz {imgsz}")


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
    if settings.multi_label:  # an (anchor, class) pair for every class over conf
        anchors, class_ids = np.nonzero(scores_all >= settings.conf)
    else:
        anchors, class_ids = np.arange(len(pred)), scores_all.argmax(1)
    scores = scores_all[anchors, class_ids]
    mask = wanted(scores, class_ids, settings)
    pred, scores, class_ids = pred[anchors[mask]], scores[mask], class_ids[mask]
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


def check_task(meta: dict, path: Path) -> None:
    """Refuse, in one line and before anything else is read, an export of another task (a classifier, a
    segmenter): its metadata says so, and its class names would otherwise pass for a detector's."""
    task = str(meta.get("task", "detect")).strip()
    if task != "detect":
        raise UserError(f"this is a '{task}' model, not a detector: use a YOLO detection model "
                        "(models/best.pt, .onnx or _openvino_model/)", path)


def check_output_shape(shape: list, meta: dict[str, str], classes: int, path: Path) -> None:
    """Refuse, in one line, an ONNX or OpenVINO model whose output is not Ultralytics' detection layout for its own
    class list: (1, 4 + classes, anchors), or (1, k, 6) end-to-end. A classifier's (1, classes) or a
    graph edited after export would otherwise fail on the first frame with an IndexError."""
    dims = [d if isinstance(d, int) else None for d in shape]
    if len(dims) == 3 and (dims[1] in (None, 4 + classes) or (is_end2end(meta, shape, classes) and dims[2] in (None, 6))):
        return
    scores = f" ({dims[1] - 4} class scores)" if len(dims) == 3 and dims[1] and dims[1] > 4 else ""
    raise UserError(f"not a detection model for its {classes} classes: its output is {list(shape)}{scores}, "
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

        if settings.multi_label:
            raise UserError("scoring every class of a box (as mAP is measured) needs an exported model (.onnx or an "
                            f"OpenVINO folder): python export.py --weights {path}", path)
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


def load_detector(weights: str | Path, settings: DetectSettings, imgsz: int | None = None, device: str | None = None,
                  half: bool = False, threads: int = 0) -> Detector:
    """The detector for a .pt, an .onnx or an OpenVINO folder, warmed up. threads: inference threads of an exported
    model (0 = every core; a camera worker, one of several on a machine, takes 1)."""
    path = Path(weights)
    if not path.exists():
        from maskdet.training.trainer import resolve_model

        # A hub name (yolo11n.pt) is downloaded by Ultralytics online; offline this says what to do instead.
        path = Path(resolve_model(str(weights), "Use the shipped model (leave out --weights) or a local .pt/.onnx file"))
    if path.suffix == ".onnx":
        if half:
            raise UserError("--half is for .pt models on a CUDA GPU; an .onnx runs at the precision it was exported "
                            "with (python export.py --half)", path)
        detector = OnnxDetector(path, settings, imgsz, device, threads)
    elif is_openvino(path):
        if half:
            raise UserError("--half is for .pt models on a CUDA GPU; an OpenVINO model runs at the precision it was "
                            "exported with (INT8 for the shipped one)", path)
        detector = OpenVinoDetector(path, settings, imgsz, device, threads)
    elif path.suffix == ".pt":
        detector = TorchDetector(path, settings, imgsz, device, half)
    else:
        raise UserError(f"weights must be a .pt, an .onnx or an OpenVINO model folder (*{OPENVINO_SUFFIX}/)", path)
    warmup(detector)
    return detector


def warmup(detector: Detector) -> None:
    """One pass on a blank image, so one-off setup (graph optimisation, fusing) is not billed to frame 1."""
    detector(np.full((detector.imgsz, detector.imgsz, 3), 114, np.uint8))
