"""Test-time augmentation (`--augment`): the model looks at the frame and at its mirror image, and the two
views' boxes are fused.

A face the model finds in both views is more likely a face, and its class more likely right, than one it
finds in only one: each face's box is the confidence-weighted mean of the views' boxes, and its confidence
the sum of the views' confidences divided by the number of views (weighted box fusion). A face seen in one
view keeps half its confidence, so it ranks below the faces seen in both; where the views disagree on the
class, the face carries both classes, each at its share. That ranking is what raises mAP (the model card
has the figures); the price is a second inference per frame.

Only the horizontal flip is used: a face's mirror image is still a face of the same class, at the same
scale. Smaller scales (Ultralytics' `augment=True`) lose the small faces this dataset is full of.
"""

from __future__ import annotations

import numpy as np

from maskdet.inference.detections import Detections, add_timings, box_iou

FUSE_IOU = 0.55  # boxes of one class from different views overlapping this much are one face


def mirror_boxes(xyxy: np.ndarray, width: int) -> np.ndarray:
    """Boxes found in the mirrored frame, put back in the frame's coordinates."""
    out = xyxy.astype(np.float32, copy=True)
    out[:, 0], out[:, 2] = width - xyxy[:, 2], width - xyxy[:, 0]
    return out


def fuse_views(views: list[Detections], fuse_iou: float = FUSE_IOU, max_det: int = 1000,
               agnostic: bool = False) -> Detections:
    """One Detections from several views of one frame (boxes already in the frame's coordinates).

    Greedy, best confidence first: each box not yet taken gathers, from every other view, that view's best
    untaken box of the same class (any class when `agnostic`) overlapping it by fuse_iou or more. The group
    becomes one box: coordinates averaged by confidence, confidence summed over the group and divided by
    the number of views, the class of the best box.
    """
    names = views[0].names
    xyxy = np.concatenate([v.xyxy for v in views]).astype(np.float32).reshape(-1, 4)
    confidence = np.concatenate([v.confidence for v in views]).astype(np.float32)
    class_id = np.concatenate([v.class_id for v in views]).astype(int)
    view = np.concatenate([np.full(len(v), i) for i, v in enumerate(views)]).astype(int)
    order = np.argsort(-confidence, kind="stable")
    taken = np.zeros(len(confidence), bool)
    boxes, scores, classes = [], [], []
    for i in order:
        if taken[i]:
            continue
        group = [i]
        taken[i] = True
        candidates = np.flatnonzero(~taken & (view != view[i]) & (agnostic | (class_id == class_id[i])))
        overlapping = candidates[box_iou(xyxy[i:i + 1], xyxy[candidates])[0] >= fuse_iou]
        for other in np.unique(view[overlapping]):  # each other view's best overlapping box joins
            mine = overlapping[view[overlapping] == other]
            best = int(mine[np.argmax(confidence[mine])])
            group.append(best)
            taken[best] = True
        weights = confidence[group]
        boxes.append((xyxy[group] * weights[:, None]).sum(0) / max(float(weights.sum()), 1e-9))
        scores.append(float(weights.sum()) / len(views))
        classes.append(int(class_id[i]))
    if not boxes:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), names)
    scores_arr = np.asarray(scores, np.float32)
    keep = np.argsort(-scores_arr, kind="stable")[:max_det]
    return Detections(np.asarray(boxes, np.float32)[keep], scores_arr[keep], np.asarray(classes, int)[keep], names)


class FlipAugmentedDetector:
    """Any Detector run on the frame and on its mirror image, the two views fused (see the module docstring)."""

    def __init__(self, detector, conf: float = 0.0, max_det: int = 1000, agnostic: bool = False,
                 fuse_iou: float = FUSE_IOU):
        """conf applies to the fused confidence too: a face one view saw at 0.4 is kept only from --conf 0.2."""
        self.detector = detector
        self.conf = conf
        self.max_det = max_det
        self.agnostic = agnostic
        self.fuse_iou = fuse_iou
        self.names = detector.names
        self.imgsz = detector.imgsz

    def __call__(self, image: np.ndarray) -> Detections:
        direct = self.detector(image)
        mirrored = self.detector(np.ascontiguousarray(image[:, ::-1]))
        back = Detections(mirror_boxes(mirrored.xyxy, image.shape[1]), mirrored.confidence, mirrored.class_id, self.names)
        fused = fuse_views([direct, back], self.fuse_iou, self.max_det, self.agnostic)
        keep = fused.confidence >= self.conf
        fused = Detections(fused.xyxy[keep], fused.confidence[keep], fused.class_id[keep], self.names)
        add_timings(fused.timings_ms, direct.timings_ms)  # both inferences' cost
        add_timings(fused.timings_ms, mirrored.timings_ms)
        return fused
