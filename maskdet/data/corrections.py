"""What a person must do to turn the model's boxes into the true labels, counted in clicks.

Each predicted box is matched to a true box (greedily, most confident first). A match with
IoU >= 0.5 and the right class is kept as it is; with the wrong class it is fixed by picking
another class. A box that overlaps a true face but poorly (0.1 <= IoU < 0.5) is fixed by dragging
it into place. Any other predicted box is deleted, and every true box left unmatched is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from maskdet.data.labels import Box

KEEP_IOU = 0.5  # the usual detection match (mAP50)
MOVE_IOU = 0.1  # below this a box is not "on" that face: deleting it and drawing the face is the fix

# Actions per correction in labelImg (the cost model the default --conf minimises):
DRAW = 2  # press w and drag a box, then pick its class
FIX_CLASS = 1  # double-click the box, pick another class
FIX_BOX = 2  # drag two corners into place
DELETE = 1  # click the box, press Delete


@dataclass
class Corrections:
    kept: int = 0
    fixed_class: int = 0
    fixed_box: int = 0  # moved (and maybe its class changed too: counted in fixed_class as well)
    deleted: int = 0
    drawn: int = 0
    true_boxes: int = 0

    def add(self, other: Corrections) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def fixed(self) -> int:
        """Boxes that need any fix (a moved box whose class is wrong too counts once)."""
        return self.true_boxes - self.kept - self.drawn

    @property
    def actions(self) -> int:
        return DRAW * self.drawn + FIX_CLASS * self.fixed_class + FIX_BOX * self.fixed_box + DELETE * self.deleted

    @property
    def by_hand(self) -> int:
        """Drawing every true box from scratch."""
        return DRAW * self.true_boxes

    @property
    def saved(self) -> float:
        """Share of the by-hand work saved (negative when correcting costs more than drawing)."""
        return 1.0 - self.actions / self.by_hand if self.by_hand else 0.0


def iou(a: Box, b: Box) -> float:
    ax1, ay1, ax2, ay2 = a.edges
    bx1, by1, bx2, by2 = b.edges
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def count_corrections(predicted: Iterable[tuple[Box, float]], truth: list[Box], threshold: float) -> Corrections:
    """The corrections for one photo, keeping the predicted boxes with confidence >= threshold."""
    boxes = [box for box, conf in sorted(predicted, key=lambda pc: -pc[1]) if conf >= threshold]
    result = Corrections(true_boxes=len(truth))
    free = set(range(len(truth)))
    unmatched = []
    for box in boxes:  # first pass: boxes on a face (IoU >= 0.5)
        best = max(free, key=lambda j: iou(box, truth[j]), default=None)
        if best is not None and iou(box, truth[best]) >= KEEP_IOU:
            free.discard(best)
            if truth[best].cls == box.cls:
                result.kept += 1
            else:
                result.fixed_class += 1
        else:
            unmatched.append(box)
    for box in unmatched:  # second pass: boxes near a face left over, moved into place
        best = max(free, key=lambda j: iou(box, truth[j]), default=None)
        if best is not None and iou(box, truth[best]) >= MOVE_IOU:
            free.discard(best)
            result.fixed_box += 1
            result.fixed_class += truth[best].cls != box.cls
        else:
            result.deleted += 1
    result.drawn = len(free)
    return result
