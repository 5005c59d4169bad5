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


def test_a_png_with_a_bad_ancillary_crc_is_measured_where_pillow_gives_up_and_decoded_without_libpngs_warning(
        tmp_path, capfd):
    """libpng skips a text chunk whose checksum is wrong, but says so on stderr ('libpng warning: tEXt: CRC
    error'): the chunk is dropped first, the pixels are the same, and nothing reaches stderr."""
    data = cv2.imencode(".png", PIXELS)[1].tobytes()
    bad_text = struct.pack(">I", 5) + b"tEXtab\x00cd" + b"\x00\x00\x00\x00"  # a wrong CRC: libpng warns, Pillow refuses
    data = data[:33] + bad_text + data[33:]
    assert (read_image_bounded(data) == PIXELS).all()
    assert "libpng" not in capfd.readouterr().err
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


def with_extra_scans(jpeg: bytes, copies: int) -> bytes:
    """A progressive JPEG with its first scan repeated: each copy is legal, and each is a pass over the image."""
    start = jpeg.index(b"\xff\xda")
    end = start + 2 + struct.unpack(">H", jpeg[start + 2:start + 4])[0]
    while jpeg[end] != 0xFF or jpeg[end + 1] == 0 or 0xD0 <= jpeg[end + 1] <= 0xD7:  # to the next marker
        end += 1
    return jpeg[:end] + jpeg[start:end] * copies + jpeg[end:]


def test_a_jpeg_of_more_scans_than_any_encoder_writes_is_refused_before_decoding():
    """20,000 empty scans in a 650 KB file took 45 s to decode an 8000x8000 photo: time is bounded too."""
    from PIL import Image

    from maskdet.imageio import MAX_JPEG_SCANS

    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "JPEG", progressive=True)
    assert read_image_bounded(with_extra_scans(buffer.getvalue(), 20)).shape == (37, 53, 3)  # odd, but cheap: decoded
    bomb = with_extra_scans(buffer.getvalue(), MAX_JPEG_SCANS)
    with pytest.raises(ImageUnreadable, match=r"a JPEG of 2\d\d scans"):
        read_image_bounded(bomb)


def tiled_tiff(width: int, height: int, tile: int) -> bytes:
    """An RGB TIFF of one zlib-compressed tile of tile x tile black pixels (TIFF tiles may exceed the image)."""
    pixels = zlib.compress(bytes(tile * tile * 3), 9)
    ifd = 8 + len(pixels) + len(pixels) % 2
    bits = ifd + 2 + 12 * 12 + 4
    tags = [(256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, 8), (262, 3, 2), (277, 3, 3), (284, 3, 1),
            (322, 4, tile), (323, 4, tile), (324, 4, 8), (325, 4, len(pixels)), (339, 3, 1)]
    out = b"II*\x00" + struct.pack("<I", ifd) + pixels + b"\x00" * (len(pixels) % 2) + struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        count = 3 if tag == 258 else 1
        out += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 and count == 1
                                                         else struct.pack("<I", value))
    return out + struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8)


def test_a_tiff_whose_tiles_are_over_the_limit_is_refused_however_small_the_image():
    """The decoder allocates a whole tile: a 16x16 image in one 12288x12288 tile took 650 MB from a 440 KB file."""
    assert read_image_bounded(tiled_tiff(16, 16, 16)).shape == (16, 16, 3)
    assert read_image_bounded(tiled_tiff(16, 16, 256), max_pixels=100_000).shape == (16, 16, 3)  # a usual tile size
    with pytest.raises(ImageTooLarge, match="its 2048x2048-pixel tiles are over the 1 megapixel limit"):
        read_image_bounded(tiled_tiff(16, 16, 2048), max_pixels=1_000_000)


def test_an_empty_file_is_said_to_be_empty_not_some_other_format():
    with pytest.raises(ImageUnreadable, match="^the file is empty$"):
        read_image_bounded(b"")


def chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG chunk, its CRC right."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_of(rows: bytes, width: int, height: int, color_type: int = 2, interlace: int = 0, depth: int = 8) -> bytes:
    """A PNG whose IDAT is `rows` (filter bytes and pixels, as the encoder lays them out) deflated, as written."""
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def test_a_png_holding_more_image_data_than_its_size_decodes_without_libpngs_own_warning(capfd):
    """libpng decodes it but writes 'libpng warning: IDAT: Too much image data' straight to stderr, among the
    run's own lines: such a PNG (some encoders pad the stream) is decoded quietly to the same pixels; one with
    too little is corrupt, in our words, and nothing reaches stderr."""
    rows = b"".join(b"\x00" + bytes(PIXELS[y, :, ::-1].tobytes()) for y in range(37))  # RGB, as PNG stores it
    padded = read_image_bounded(png_of(rows + b"\x00" * 1_000_000, 53, 37))
    assert (padded == read_image_bounded(png_of(rows, 53, 37))).all() and (padded == PIXELS).all()
    with pytest.raises(ImageUnreadable, match="^the image is corrupt"):
        read_image_bounded(png_of(rows[:-10], 53, 37))  # too little: libpng warns too
    assert "libpng" not in capfd.readouterr().err


@pytest.mark.parametrize("extra", [
    chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(b"\x00" * 200)),  # libpng: 'iCCP: too short'
    chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"sRGB", b"\x00") + chunk(b"pHYs", b"\x00" * 9),
    chunk(b"tRNS", b"\x00\x01\x00\x02\x00\x03"),  # a colour key: kept (it is about pixels), same pixels in BGR
    chunk(b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"),
], ids=["bad colour profile", "gamma and srgb", "transparency", "exif orientation 6"])
def test_a_pngs_other_chunks_change_no_pixel_and_libpngs_warnings_about_them_never_reach_stderr(extra, capfd):
    """What OpenCV gives for the whole file, every chunk read (EXIF's turn included), is what it gives: only
    libpng's own lines about the chunks it does not use are gone."""
    plain = cv2.imencode(".png", PIXELS)[1].tobytes()
    data = plain[:33] + extra + plain[33:]
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # libpng may warn here: not ours
    capfd.readouterr()
    assert np.array_equal(read_image_bounded(data), opencv)
    assert "libpng" not in capfd.readouterr().err


def damaged_pngs() -> dict[str, bytes]:
    """A whole PNG made damaged the ways a broken copy or a tagging tool damages one."""
    whole = cv2.imencode(".png", PIXELS)[1].tobytes()
    idat = whole.index(b"IDAT")
    flipped = bytearray(whole)
    flipped[idat + 10] ^= 0xFF  # a pixel byte changed: IDAT's CRC no longer matches
    return {"IDAT checksum wrong": bytes(flipped), "cut inside IDAT": whole[:idat + 20],
            "no IEND": whole[:-12], "a chunk longer than the file": whole[:-12] + struct.pack(">I", 1 << 20) + b"tEXt"}


@pytest.mark.parametrize("name", list(damaged_pngs()))
def test_a_damaged_png_is_refused_in_our_words_before_libpng_can_say_so(name, capfd):
    """libpng prints 'libpng error: IDAT: CRC error' (or 'Not enough image data') on stderr before OpenCV gives up:
    the chunks are checked first, on every path that decodes an image (a server's uploads too)."""
    with pytest.raises(ImageUnreadable, match=r"^the image is corrupt \(a damaged or truncated PNG\)$"):
        read_image_bounded(damaged_pngs()[name])
    assert "libpng" not in capfd.readouterr().err


def test_a_png_of_a_million_empty_chunks_is_refused_as_it_is_walked_in_little_time_and_memory():
    """12 MB of 12-byte chunks (an upload's size): each chunk walked costs time, and each kept or dropped one a little
    memory; a hostile file is refused past MAX_PNG_CHUNKS, long before the end."""
    import time
    import tracemalloc

    from maskdet.imageio import MAX_PNG_CHUNKS

    whole = cv2.imencode(".png", PIXELS)[1].tobytes()
    empty = chunk(b"IDAT", b"") + chunk(b"zzZz", b"")  # an empty pixel chunk, then one OpenCV does not use
    data = whole[:33] + empty * 500_000 + whole[33:]
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(ImageUnreadable, match=f"^a PNG of over {MAX_PNG_CHUNKS:,} chunks"):
            read_image_bounded(data)
        took, peak = time.process_time() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / 2**20:.0f} MB held for a {len(data) / 2**20:.0f} MB file"
    assert took < 5, took  # about 1 s here under tracemalloc: a generous bound, not a benchmark


def test_what_follows_iend_is_not_read():
    """Some programs append data after IEND (a second image, a signature); libpng stops at IEND, and so does this."""
    data = cv2.imencode(".png", PIXELS)[1].tobytes()
    assert (read_image_bounded(data + b"trailing bytes\x00" * 10) == PIXELS).all()


def adam7_rows(image: np.ndarray) -> bytes:
    """An RGB image's rows in the seven passes of an interlaced PNG, each row with filter byte 0."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    out = b""
    for x0, y0, dx, dy in passes:
        sub = image[y0::dy, x0::dx]
        if sub.size:
            out += b"".join(b"\x00" + row.tobytes() for row in sub)
    return out


@pytest.mark.parametrize("height, width", [(37, 53), (1, 1), (3, 5), (9, 2)])
def test_an_interlaced_png_decodes_to_its_pixels(height, width):
    rgb = PIXELS[:height, :width, ::-1]
    data = png_of(adam7_rows(np.ascontiguousarray(rgb)), width, height, interlace=1)
    assert (read_image_bounded(data) == PIXELS[:height, :width]).all()


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "RGBA", "I;16"])
def test_pngs_of_every_colour_type_and_depth_decode(mode):
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(PIXELS)
    (image.convert("I").convert("I;16") if mode == "I;16" else image.convert(mode)).save(buffer, "PNG")
    assert read_image_bounded(buffer.getvalue()).shape == (37, 53, 3)
