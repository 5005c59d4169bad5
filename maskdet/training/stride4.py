"""A fourth, stride-4 output (P2) added to a trained detector, every weight it has kept.

A face 10 pixels high covers one cell of the stride-8 grid (P3), the finest a YOLO11n/YOLO26n head has;
a stride-4 grid gives it four. Ultralytics' own P2 architectures rebuild the whole neck, so a model
loaded into them keeps only its backbone and half its neck (the card measured 57 % of YOLO26n's
parameters): the P3-P5 paths and the head start from random weights.

This adds P2 beside the existing outputs instead, in the FPN way: the P3 output is upsampled, joined
with the backbone's stride-4 features and passed through a copy of the P3 block's architecture. The P3,
P4 and P5 paths are untouched, and the head's stride-4 branch starts as a copy of its stride-8 branch
(same input width), with its class outputs silenced by Ultralytics' own prior for a stride-4 grid. So
the new model starts out detecting what the old one did; fine-tuning teaches the new output.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

from maskdet.errors import UserError

HEAD_BRANCHES = ("cv2", "cv3", "one2one_cv2", "one2one_cv3")  # a Detect head's per-stride lists (YOLO26: one2one too)

# A stride-4 branch starts silent: class logits at Ultralytics' Detect.bias_init prior for that grid
# (5 objects per class in a 640 px image), about 7e-5 after the sigmoid.
PRIOR_SIZE = 640


def stride4_config(config: dict, stride4_layer: int) -> dict:
    """The model's YAML dict with a P2 block added before Detect, and Detect fed by it first.

    Layer numbers up to Detect's are unchanged, so every tensor of the old model keeps its name;
    Detect moves three places on (the upsample, the concat and the block)."""
    config = copy.deepcopy(config)
    head = config["head"]
    detect = head.pop()
    sources = list(detect[0])
    first = len(config["backbone"]) + len(head)  # the index the upsample gets
    p3_block = head[sources[0] - len(config["backbone"])]
    head += [
        [sources[0], 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, stride4_layer], 1, "Concat", [1]],
        [-1, p3_block[1], p3_block[2], copy.deepcopy(p3_block[3])],  # the P3 block's kind and width
    ]
    head.append([[first + 2, *sources], *detect[1:]])
    return config


def find_stride4_layer(model, imgsz: int = 256) -> int:
    """The last backbone layer whose output is at stride 4 (YOLO11 and YOLOv8: layer 2)."""
    import torch

    backbone = len(model.yaml["backbone"])
    sizes: dict[int, int] = {}
    hooks = [layer.register_forward_hook(lambda _m, _i, out, i=i: sizes.__setitem__(i, out.shape[-1]))
             for i, layer in enumerate(model.model[:backbone])]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, model.yaml.get("channels", 3), imgsz, imgsz))
    finally:
        for hook in hooks:
            hook.remove()
    found = [i for i in range(backbone) if sizes.get(i) == imgsz // 4]
    if not found:
        raise UserError("this model's backbone has no stride-4 layer to feed a P2 output")
    return found[-1]


def add_stride4_output(model):
    """A new DetectionModel: `model` with a stride-4 output added, all its weights kept (see the module's doc)."""
    import torch
    from ultralytics.nn.modules import Detect
    from ultralytics.nn.tasks import DetectionModel

    head = model.model[-1]
    if type(model) is not DetectionModel or not isinstance(head, Detect):
        raise UserError("only a detection model (Ultralytics Detect head) can take a P2 output")
    strides = [int(s) for s in head.stride]
    if strides[0] != 8:
        raise UserError(f"this model's finest output is already at stride {strides[0]}: it needs no P2 output")
    model = model.float()
    config = stride4_config(model.yaml, find_stride4_layer(model))
    new = DetectionModel(config, nc=head.nc, ch=model.yaml.get("channels", 3), verbose=False)
    new_head = new.model[-1]
    # The head's branches, old ones first as they are (their width follows the class count they were built for)
    for name in HEAD_BRANCHES:
        branches = getattr(head, name, None)
        if branches is not None:
            setattr(new_head, name, torch.nn.ModuleList([copy.deepcopy(branches[0]), *copy.deepcopy(list(branches))]))
    detect_index = len(model.model) - 1
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")  # model.<layer>.<...>
        if int(parts[1]) == detect_index:
            parts[1] = str(len(new.model) - 1)
            if parts[2] in HEAD_BRANCHES:
                parts[3] = str(int(parts[3]) + 1)
        state[".".join(parts)] = value
    missing, unexpected = new.load_state_dict(state, strict=False)
    new_block = f"model.{detect_index + 2}."  # the P2 block; the upsample and concat hold no weights
    new_branch = re.compile(rf"model\.{len(new.model) - 1}\.(one2one_)?cv[23]\.0\.")  # copied in above
    if unexpected or any(not (key.startswith(new_block) or new_branch.match(key)) for key in missing):
        raise UserError("this model's layout is not the YOLO11/YOLOv8 one a P2 output is added to")
    for name in ("cv3", "one2one_cv3"):  # silence the new branch's classes (its box outputs stay the P3 copy)
        branches = getattr(new_head, name, None)
        if branches is not None:
            branches[0][-1].bias.data[: head.nc] = math.log(5 / head.nc / (PRIOR_SIZE / 4) ** 2)
    new.names, new.args = dict(model.names), copy.copy(getattr(model, "args", {}))
    return new.eval()


def write_stride4_checkpoint(source: str | Path, out: str | Path, model=None) -> Path:
    """The checkpoint `source` with a P2 output (`model`, when already built by add_stride4_output), written
    atomically to `out` for training to start from."""
    import torch

    from maskdet.training.trainer import load_yolo

    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    model = model if model is not None else add_stride4_output(load_yolo(source).model)
    kept = {k: v for k, v in checkpoint.items() if k not in ("model", "ema", "optimizer", "train_metrics", "train_results")}
    kept.update(model=model.half(), ema=None, optimizer=None, epoch=-1, stride4_from=str(source))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    torch.save(kept, temporary)
    temporary.replace(out)
    return out
