"""The one image reader: the size comes from the header, and what cannot be measured is never decoded."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskdet.imageio import ImageError, ImageTooLarge, ImageUnreadable, image_size, read_image_bounded

PIXELS = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)  # odd sides: width and height never swap unseen


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_every_format_opencv_writes_is_measured_from_its_header(suffix):
    data = cv2.imencode(suffix, PIXELS)[1].tobytes()
    assert image_size(data) == (53, 37)
    assert read_image_bounded(data).shape == (37, 53, 3)


@pytest.mark.parametrize(("fmt", "options"), [("JPEG", {"progressive": True}), ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 60_000}),
                                              ("WEBP", {"lossless": True}), ("WEBP", {"quality": 50}), ("WEBP", {"exif": b"Exif\x00\x00"}),
                                              ("TIFF", {"compression": "tiff_lzw"}), ("BMP", {}), ("PNG", {"optimize": True})])
def test_what_other_programs_write_is_measured_too(fmt, options):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, fmt, **options)
    assert image_size(buffer.getvalue()) == (53, 37)


def test_a_png_with_a_bad_ancillary_crc_is_measured_where_pillow_gives_up(tmp_path):
    data = cv2.imencode(".png", PIXELS)[1].tobytes()
    bad_text = struct.pack(">I", 5) + b"tEXtab\x00cd" + b"\x00\x00\x00\x00"  # a wrong CRC: libpng warns, Pillow refuses
    data = data[:33] + bad_text + data[33:]
    assert read_image_bounded(data).shape == (37, 53, 3)
    assert image_size(data) == (53, 37)
    with pytest.raises(ImageTooLarge, match="53x37 pixels, over the 0.001 megapixel limit"):
        read_image_bounded(data, max_pixels=1000)
    (tmp_path / "a.png").write_bytes(data)
    assert read_image_bounded(tmp_path / "a.png").shape == (37, 53, 3)  # a path reads the same


@pytest.mark.parametrize("data", [
    b"", b"GIF89a" + b"\x00" * 20, b"P6\n53 37\n255\n" + b"\x00" * 5883,  # formats it does not measure: refused
    b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIDAT" + b"\x00" * 20,  # first chunk not IHDR
    b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 10,  # scan data before any frame header
    b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x20" + b"\x00" * 20,  # height 0 (given later by DNL)
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 9 + b"junk\xff\xc0\x00\x11\x08\x00\x10\x00\x10",  # garbage between segments
    b"II*\x00\x08\x00\x00\x00\x01\x00\x00\x01\x03\x00\x01\x00\x00\x00\x10\x00\x00\x00",  # TIFF without ImageLength
    b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # lossy without its start code
])
def test_what_it_cannot_measure_it_refuses_without_decoding(data):
    with pytest.raises(ImageUnreadable):
        read_image_bounded(data)


def test_a_huge_image_in_a_small_file_is_refused_by_its_header():
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(ImageTooLarge, match="50000x50000 pixels, over the 100 megapixel limit"):
        read_image_bounded(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([cv2.imencode(s, PIXELS)[1].tobytes() for s in (".jpg", ".png", ".bmp", ".webp", ".tif")]),
       st.integers(0, 400), st.binary(min_size=1, max_size=8))
def test_mangled_headers_are_refused_or_decode_within_the_limit(data, at, junk):
    mangled = data[:at] + junk + data[at + len(junk):]
    try:
        image = read_image_bounded(mangled, max_pixels=4000)
    except ImageError:
        return
    assert image.shape[0] * image.shape[1] <= 4000
