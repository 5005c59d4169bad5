"""label.py's paths: a file given as --images is said to be a file, not "not found"; an empty --images or --labels
(which would silently be the current folder) is refused. Each a one-line error, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_label(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "labeling" / "label.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def test_a_file_given_as_images_is_said_to_be_a_file(tmp_path, tools):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    tools.assert_one_line_error(run_label("--images", photo), "is a file, not a folder", photo)


def test_an_empty_images_path_is_refused(tmp_path, tools):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")  # the current folder has images: '' must not open it
    tools.assert_one_line_error(run_label("--images", "", cwd=tmp_path), "--images", "empty path")


def test_an_empty_labels_path_is_refused(tmp_path, tools):
    images = tmp_path / "photos"
    images.mkdir()
    (images / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    tools.assert_one_line_error(run_label("--images", images, "--labels", "", cwd=tmp_path), "--labels", "empty path")
    assert not (tmp_path / "classes.txt").exists()
