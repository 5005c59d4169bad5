"""Upload checks: the kind of a file comes from its bytes; a client's name is only ever displayed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maskdet.serving.uploads import UploadError, check_kind, display_name, sniff


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_every_image_format_opencv_writes_is_recognised_by_its_bytes(suffix):
    ok, data = cv2.imencode(suffix, np.zeros((8, 8, 3), np.uint8))
    assert ok and sniff(data.tobytes()[:512]) == ("image", suffix)


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x00\x00\x00\x18ftypmp42", ("video", ".mp4")),
    (b"\x00\x00\x00\x14ftypqt  ", ("video", ".mp4")),  # QuickTime .mov
    (b"\x1a\x45\xdf\xa3\x01\x00", ("video", ".mkv")),  # Matroska and WebM
    (b"RIFF\x00\x00\x00\x00AVI LIST", ("video", ".avi")),
    (b"G" + b"\x00" * 187 + b"G" + b"\x00" * 10, ("video", ".ts")),
    (b"\x00\x00\x01\xba\x44", ("video", ".mpg")),
])
def test_video_containers_are_recognised_by_their_bytes(head, kind):
    assert sniff(head) == kind


@given(st.binary(max_size=600))
def test_any_bytes_are_either_accepted_as_what_they_are_or_refused_with_415(data):
    try:
        suffix = check_kind(data, "image", "x.jpg")
    except UploadError as exc:
        assert exc.status == 415 and exc.message.startswith("x.jpg: ")
    else:
        assert sniff(data) == ("image", suffix)


@pytest.mark.parametrize(("given_name", "shown"), [
    ("../../x.png", "x.png"), ("..\\..\\windows\\x.png", "x.png"), ("/etc/passwd", "passwd"), ("..", "upload"),
    ("", "upload"), (None, "upload"), ("a\nb\x00.png", "ab.png"), ("é" * 300, "é" * 120),
])
def test_a_client_file_name_is_cut_to_a_short_printable_last_part(given_name, shown):
    assert display_name(given_name) == shown
