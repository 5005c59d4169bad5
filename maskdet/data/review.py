"""The review order: which pre-labelled photo a person should check first.

A box whose confidence sits right at the threshold is the model's closest call: just above, it may
be a false face to delete or a wrong class to fix; just below, a real face left for the person to
draw. A photo is as doubtful as its closest call, and the most doubtful photos are reviewed first,
while the person is fresh and where a correction is most likely.

prelabel.py writes the order as it goes (ReviewLog): a row per photo, appended just before its label file is
written, so even a killed run leaves a valid order of every photo it did; the sorted order replaces it, in one
step, when the run ends. Each row records the digest of the label file prelabel.py wrote, and the header the
images and labels folders: a later run tells a label file the model wrote, and nobody changed since, from a
person's work (earlier_rows).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from maskdet.fileio import atomic_write_text, list_entries, read_user_text

ORDER_HEADER = ("# review order written by labeling/prelabel.py: the photos the model was least sure about first.\n"
                "# Open them so: python labeling/label.py --images IMAGES --order THIS_FILE\n")
RUNNING_TITLE = ("# review order being written by labeling/prelabel.py: the photos in the order they were done "
                 "(sorted, least sure first, when the run ends).\n")
OPEN_PREFIX = "# Open them so: "


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
    label_digest: str = ""  # hex digest of the label file prelabel.py wrote for it ("" when not known)

    def line(self) -> str:
        why = f"closest call {self.closest}" if self.closest else "no candidate face"
        digest = f"; label digest {self.label_digest}" if self.label_digest else ""
        return f"{self.photo}  # doubt {self.doubt:.2f}; {self.boxes} boxes; {why}{digest}"

    @classmethod
    def parse(cls, line: str) -> ReviewItem | None:
        """The item a line() wrote, or None for any other line (a comment, a hand-written name, a cut-off row)."""
        match = _ROW.match(line)
        if match is None:
            return None
        return cls(match["photo"], float(match["doubt"]), int(match["boxes"]), match["closest"] or "", match["digest"] or "")


_ROW = re.compile(r"^(?P<photo>.*?\S)  # doubt (?P<doubt>\d+\.\d+); (?P<boxes>\d+) boxes; "
                  r"(?:closest call (?P<closest>[^;]+)|no candidate face)(?:; label digest (?P<digest>[0-9a-f]{32}))?$")


def review_order(items: list[ReviewItem]) -> list[ReviewItem]:
    """Most doubtful first; ties by name, so the order is reproducible."""
    return sorted(items, key=lambda item: (-item.doubt, item.photo))


def order_header(images_dir: Path | None = None, labels_dir: Path | None = None, title: str = "") -> str:
    """The file's comment lines; with the folders, the second is the label.py command for them (and tells a later
    prelabel.py run which folders the rows' label digests are about)."""
    header = title or ORDER_HEADER.splitlines(keepends=True)[0]
    if images_dir is None or labels_dir is None:
        return header + ORDER_HEADER.splitlines(keepends=True)[1]
    command = ["python", "labeling/label.py", "--images", str(Path(images_dir).resolve()),
               "--labels", str(Path(labels_dir).resolve()), "--order", "THIS_FILE"]
    return f"{header}{OPEN_PREFIX}{shlex.join(command)}\n"


def write_review_order(path: Path, items: list[ReviewItem], images_dir: Path | None = None,
                       labels_dir: Path | None = None) -> None:
    atomic_write_text(path, order_header(images_dir, labels_dir) + "".join(f"{item.line()}\n" for item in review_order(items)))


class ReviewLog:
    """The review order while prelabel.py runs: the header at once, then each photo's row appended (one write
    each, no buffer) as soon as it is done, so Ctrl-C or even kill -9 leaves a valid order of every photo done.
    finish() replaces it, atomically, by the sorted order."""

    def __init__(self, path: Path, images_dir: Path, labels_dir: Path):
        self.path, self.images_dir, self.labels_dir = Path(path), images_dir, labels_dir
        atomic_write_text(self.path, order_header(images_dir, labels_dir, RUNNING_TITLE))  # replaces an --exist-ok run's
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def add(self, items: list[ReviewItem]) -> None:
        data = "".join(f"{item.line()}\n" for item in items).encode("utf-8")
        while data and self._fd is not None:
            data = data[os.write(self._fd, data):]

    def finish(self, items: list[ReviewItem]) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        write_review_order(self.path, items, self.images_dir, self.labels_dir)


def earlier_rows(path: Path, images_dir: Path, labels_dir: Path) -> dict[str, ReviewItem]:
    """The rows with a label digest in an earlier run's review order (finished or not) over these same folders:
    photo -> row. Empty for an order about other folders, or written before rows had digests."""
    text = read_user_text(path, missing="review order file not found")
    folders = None
    for line in text.splitlines():
        if line.startswith(OPEN_PREFIX):
            try:
                words = shlex.split(line[len(OPEN_PREFIX):])
                folders = (words[words.index("--images") + 1], words[words.index("--labels") + 1])
            except (ValueError, IndexError):
                folders = None
            break
    if folders != (str(Path(images_dir).resolve()), str(Path(labels_dir).resolve())):
        return {}
    items = (ReviewItem.parse(line) for line in text.splitlines())
    return {item.photo: item for item in items if item is not None and item.label_digest}


def read_review_order(path: Path) -> list[str]:
    """Photo paths (relative to the images folder) in file order: a row prelabel.py wrote gives its photo exactly (a
    name with '#' or a leading space included), any other line as a list file does (fileio.read_list_lines)."""
    text = read_user_text(path, missing="review order file not found").removeprefix("\ufeff")
    rows = {number: ReviewItem.parse(line) for number, line in enumerate(text.splitlines(), 1)}
    return [row.photo if (row := rows.get(number)) else entry for number, entry in list_entries(text)]


def apply_order(images: list[str], images_dir: Path, order: list[str]) -> list[str]:
    """images (absolute paths, as labelImg lists them) with the listed ones first, in the listed order;
    the rest keep their order after them."""
    position = {str((images_dir / name).resolve()): i for i, name in reversed(list(enumerate(order)))}
    listed = sorted((p for p in images if str(Path(p).resolve()) in position), key=lambda p: position[str(Path(p).resolve())])
    return listed + [p for p in images if str(Path(p).resolve()) not in position]
