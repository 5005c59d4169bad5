"""The review order: which pre-labelled photo a person should check first.

A box whose confidence sits right at the threshold is the model's closest call: just above, it may
be a false face to delete or a wrong class to fix; just below, a real face left for the person to
draw. A photo is as doubtful as its closest call, and the most doubtful photos are reviewed first,
while the person is fresh and where a correction is most likely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskdet.fileio import atomic_write_text, read_user_text

ORDER_HEADER = ("# review order written by labeling/prelabel.py: the photos the model was least sure about first.\n"
                "# Open them so: python labeling/label.py --images IMAGES --order THIS_FILE\n")


def box_doubt(confidence: float, threshold: float) -> float:
    """1 for a box exactly at the threshold, falling linearly to 0 at confidence 0 and 1."""
    span = threshold if confidence < threshold else 1.0 - threshold
    return max(0.0, 1.0 - abs(confidence - threshold) / span) if span > 0 else 0.0


@dataclass(frozen=True)
class ReviewItem:
    """One pre-labelled photo: its path relative to the images folder and its closest call."""

    photo: str
    doubt: float
    boxes: int
    closest: str = ""  # e.g. "without_mask 0.27", or "" when the model saw no candidate face at all

    def line(self) -> str:
        why = f"closest call {self.closest}" if self.closest else "no candidate face"
        return f"{self.photo}  # doubt {self.doubt:.2f}; {self.boxes} boxes; {why}"


def review_order(items: list[ReviewItem]) -> list[ReviewItem]:
    """Most doubtful first; ties by name, so the order is reproducible."""
    return sorted(items, key=lambda item: (-item.doubt, item.photo))


def write_review_order(path: Path, items: list[ReviewItem]) -> None:
    atomic_write_text(path, ORDER_HEADER + "".join(f"{item.line()}\n" for item in review_order(items)))


def read_review_order(path: Path) -> list[str]:
    """Photo paths (relative to the images folder) in file order; '#' starts a comment."""
    text = read_user_text(path, missing="review order file not found")
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def apply_order(images: list[str], images_dir: Path, order: list[str]) -> list[str]:
    """images (absolute paths, as labelImg lists them) with the listed ones first, in the listed order;
    the rest keep their order after them."""
    position = {str((images_dir / name).resolve()): i for i, name in reversed(list(enumerate(order)))}
    listed = sorted((p for p in images if str(Path(p).resolve()) in position), key=lambda p: position[str(Path(p).resolve())])
    return listed + [p for p in images if str(Path(p).resolve()) not in position]
