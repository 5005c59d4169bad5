"""Upload checks at their edges: which bytes are which kind, where each kind must go, the pixel limit
to the pixel, corrupt images and videos (found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from maskdet.serving.uploads import UploadError, check_kind, check_video, decode_image, display_name, sniff

TS = b"G" + b"\x00" * 187 + b"G"  # two MPEG-TS sync bytes 188 apart: 189 bytes


@pytest.mark.parametrize(("head", "found"), [
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", ("image", ".webp")),
    (b"RIFF\x10\x00\x00\x00AVI LIST", ("video", ".avi")),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),  # a RIFF that is neither
    (b"RIFX\x10\x00\x00\x00WEBPVP8 ", None),
    (b"RIFX\x10\x00\x00\x00AVI LIST", None),
    (b"\x00\x00\x00\x00WEBPRIFF....", None),
    (b"\x00\x00\x00\x00AVI RIFF....", None),
    (TS, ("video", ".ts")),
    (TS + b"\x00" * 10, ("video", ".ts")),
    (TS[:-1], None),  # 188 bytes: no second sync byte to see
    (b"G" + b"\x00" * 187 + b"H", None),
    (b"H" + b"\x00" * 187 + b"G", None),
    (b"\xff\xd8\xff\xe0", ("image", ".jpg")),
    (b"\xff\xd8\x00\xe0", None),
    (b"\x89PNG\r\n\x1a\n", ("image", ".png")),
    (b"BM\x00\x00", ("image", ".bmp")),
    (b"II*\x00", ("image", ".tif")),
    (b"MM\x00*", ("image", ".tif")),
    (b"\x00\x00\x00\x18ftyp", ("video", ".mp4")),
    (b"ftyp\x00\x00\x00\x18", None),  # ftyp at offset 4, not 0
    (b"\x1a\x45\xdf\xa3", ("video", ".mkv")),
    (b"\x00\x00\x01\xba", ("video", ".mpg")),
    (b"\x00\x00\x01\xbb", None),
    (b"", None),
    (b"GIF89a", None),
])
def test_the_kind_of_a_file_is_read_from_its_first_bytes(head, found):
    assert sniff(head) == found


def test_a_file_that_is_neither_an_image_nor_a_video_is_415_naming_it_and_the_kinds_taken():
    with pytest.raises(UploadError) as err:
        check_kind(b"%PDF-1.7", "image", "scan.pdf")
    assert err.value.status == 415
    assert err.value.message == ("scan.pdf: not an image or a video (JPEG, PNG, BMP, WebP, TIFF; MP4, MOV, MKV, WebM, AVI, MPEG)")


@pytest.mark.parametrize(("head", "wanted", "message"), [
    (b"\x00\x00\x00\x18ftypmp42", "image", "clip.bin: this is a video: send it to POST /api/videos"),
    (b"\x89PNG\r\n\x1a\n", "video", "clip.bin: this is an image: send it to POST /api/detect"),
])
def test_a_file_sent_to_the_wrong_endpoint_is_415_saying_where_it_goes(head, wanted, message):
    with pytest.raises(UploadError) as err:
        check_kind(head, wanted, "clip.bin")
    assert (err.value.status, err.value.message) == (415, message)
    assert str(err.value) == message


@pytest.mark.parametrize(("head", "wanted", "suffix"), [
    (b"\x89PNG\r\n\x1a\n", "image", ".png"), (b"\x00\x00\x00\x18ftypmp42", "video", ".mp4"), (TS, "video", ".ts")])
def test_a_file_sent_where_it_belongs_is_stored_under_the_suffix_of_its_bytes(head, wanted, suffix):
    assert check_kind(head, wanted, "whatever.exe") == suffix


@pytest.mark.parametrize(("given_name", "shown"), [("a" * 121, "a" * 120), ("a" * 120, "a" * 120), (".", "upload"),
                                                   ("dir/", "upload"), ("x/.", "upload"), ("\t\x7f", "upload")])
def test_a_client_name_is_at_most_120_printable_characters_and_never_empty_or_a_dot(given_name, shown):
    assert display_name(given_name) == shown


# --- decoding --------------------------------------------------------------------------------------


def png(w: int, h: int) -> bytes:
    return cv2.imencode(".png", np.full((h, w, 3), 90, np.uint8))[1].tobytes()


def test_an_image_decodes_to_its_bgr_pixels():
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8)
    image = decode_image(cv2.imencode(".png", pixels)[1].tobytes(), "p.png")
    assert np.array_equal(image, pixels)


def test_a_grey_image_decodes_to_three_channels():
    image = decode_image(cv2.imencode(".png", np.zeros((8, 6), np.uint8))[1].tobytes(), "g.png")
    assert image.shape == (8, 6, 3)


def test_an_image_at_the_pixel_limit_decodes_and_one_pixel_more_is_413():
    assert decode_image(png(64, 48), "ok.png", max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(UploadError) as err:
        decode_image(png(64 * 48 + 1, 1), "wide.png", max_pixels=64 * 48)
    assert err.value.status == 413 and err.value.message.startswith("wide.png: 3073x1 pixels, over the ")


def test_the_limit_is_on_width_times_height():
    with pytest.raises(UploadError) as err:
        decode_image(png(11, 10), "p.png", max_pixels=100)  # 110 pixels, though each side is under 100
    assert "11x10 pixels" in err.value.message and err.value.status == 413


def test_the_real_limit_is_100_megapixels_read_from_the_header_before_decoding():
    # 12,000 x 9,000 grey pixels compress to a small PNG; its header alone says it is too big.
    data = cv2.imencode(".png", np.zeros((9_000, 12_000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    assert len(data) < 1_000_000
    with pytest.raises(UploadError) as err:
        decode_image(data, "big.png")
    assert err.value.message == "big.png: 12000x9000 pixels, over the 100 megapixel limit"


def test_pillows_own_bomb_limits_play_no_part(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would warn over 1,000 pixels, refuse over 2,000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert decode_image(png(64, 48), "fine.png").shape == (48, 64, 3)  # 3,072 pixels: under our limit
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.mark.parametrize(("data", "why"), [(b"", "the file is empty"), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt"),
                                         (b"\xff\xd8\xffnot really", "corrupt"), (b"BM" + b"\xff" * 30, "corrupt")])
def test_bytes_whose_size_cannot_be_read_are_400_and_never_decoded(data, why):
    with pytest.raises(UploadError) as err:
        decode_image(data, "bad.png")
    assert err.value.status == 400 and err.value.message.startswith("bad.png: ")
    assert why in err.value.message



def test_a_damaged_png_is_400_in_our_words_and_libpng_says_nothing_in_the_servers_log(capfd):
    """A PNG whose pixel chunk's checksum is wrong (a broken copy): libpng's own 'libpng error: IDAT: CRC error'
    would land in the server's log, among its request lines."""
    data = bytearray(cv2.imencode(".png", np.full((48, 64, 3), 90, np.uint8))[1].tobytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF
    with pytest.raises(UploadError) as err:
        decode_image(bytes(data), "broken.png")
    assert (err.value.status, err.value.message) == (400, "broken.png: the image is corrupt (a damaged or truncated PNG)")
    assert "libpng" not in capfd.readouterr().err

# --- videos ----------------------------------------------------------------------------------------


def write_video(path, frames: int, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (32, 32))
    for i in range(frames):
        writer.write(np.full((32, 32, 3), 20 * i, np.uint8))
    writer.release()


@pytest.mark.parametrize(("fps", "taken"), [(10.0, 10.0), (240.0, 240.0), (1000.0, 1000.0), (1001.0, 25.0)])
def test_a_video_gives_its_frame_count_and_frame_rate_a_rate_past_1000_taken_as_25(tmp_path, fps, taken):
    """240 fps is a phone's slow motion, 1000 a lab camera's; past that a header's rate is nonsense."""
    path = tmp_path / "v.mp4"
    write_video(path, 4, fps)
    frames, rate = check_video(path, "v.mp4")
    assert frames == 4 and rate == pytest.approx(taken, abs=0.01)


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200])
def test_a_video_without_a_decodable_frame_is_400_corrupt(tmp_path, content):
    path = tmp_path / "v.mp4"
    path.write_bytes(content)
    with pytest.raises(UploadError) as err:
        check_video(path, "clip.mp4")
    assert (err.value.status, err.value.message) == (400, "clip.mp4: the video is corrupt (no frame can be decoded)")


def test_a_slow_time_lapse_keeps_its_rate_under_one_frame_a_second(tmp_path):
    path = tmp_path / "lapse.mp4"
    write_video(path, 3, 0.5)
    assert check_video(path, "lapse.mp4") == (3, pytest.approx(0.5))


def test_a_video_that_opens_but_whose_frames_do_not_decode_is_400(tmp_path):
    # A real MJPEG AVI whose frame data is zeroed: the container opens, no frame decodes.
    import struct

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    for i in range(3):
        writer.write(np.full((32, 32, 3), 20 * i, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    at = data.index(b"movi") + 4
    while data[at:at + 4] == b"00dc":
        size = struct.unpack("<I", data[at + 4:at + 8])[0]
        data[at + 8:at + 8 + size] = bytes(size)
        at += 8 + size + (size & 1)
    path.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(path)).isOpened()  # the case under test: it opens
    with pytest.raises(UploadError) as err:
        check_video(path, "v.avi")
    assert err.value.status == 400
