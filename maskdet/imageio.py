"""Reading an image whose size is known before it is decoded.

A small file can hold a huge image (a 1 MB PNG of 20000 x 20000 blank pixels decodes to 1.2 GB), and
the decoders do not agree on what they can parse: Pillow refuses a PNG with a bad ancillary-chunk CRC
that OpenCV decodes anyway. So the size is read ONCE, here, from the container header of the formats
we accept (PNG, JPEG, BMP, WebP, TIFF), and the bytes reach cv2.imdecode only when that size is known
and within the limit. Whatever this reader cannot measure it refuses; it never falls back to decoding.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from maskdet.fileio import read_bytes_bounded
from maskdet.settings import MAX_PIXELS, image_file_limit  # the limits live with the other settings; importable from here too

JPEG_START = b"\xff\xd8\xff"  # SOI and the next marker's FF
TIFF_STARTS = (b"II*\x00", b"MM\x00*")  # little- and big-endian
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (DHT, JPG, DAC excluded)
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn stand alone
# A progressive JPEG comes in a few scans (encoders write 10 or so); libjpeg passes over the whole image for
# each, so 20,000 empty scans in a 650 KB file take 45 s to decode an 8000x8000 photo. Far past any encoder:
MAX_JPEG_SCANS = 256
TIFF_WIDTH, TIFF_LENGTH, TIFF_TILE_WIDTH, TIFF_TILE_LENGTH = 256, 257, 322, 323
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey + alpha, RGBA
UNDECODABLE = "the image is corrupt (it cannot be decoded)"
PNG_DAMAGED = "the image is corrupt (a damaged or truncated PNG)"  # a chunk cut short, a critical chunk's CRC wrong, or no IEND
# A PNG's pixels come in IDAT chunks of 8 KB or more (a 100-megapixel photo: tens of thousands at most); the walk
# over them takes time and keeps a little for each, so a file of millions of empty chunks is refused as it is walked.
MAX_PNG_CHUNKS = 200_000
PNG_MISMATCH = "its compressed pixels do not match its size"  # an internal verdict: such a PNG is decoded by Pillow
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # x0 y0 dx dy


class ImageError(ValueError):
    """An image refused before decoding; the message says why (no file name: the caller adds it)."""


class ImageTooLarge(ImageError):
    """The header says the image has more pixels than allowed."""


class ImageUnreadable(ImageError):
    """Not a format this reader measures, a header it cannot parse, or pixels that do not decode."""


def _png(data: bytes) -> tuple[int, int] | None:
    # The first chunk must be IHDR (13 bytes): libpng refuses anything else, and reads the size from it.
    if len(data) < 24 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments from SOI to the first SOF; strict where libjpeg is lenient (garbage
    # between segments), so both always agree on which segment is the frame header.
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        while i < len(data) and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= len(data):
            return None
        marker = data[i]
        i += 1
        if marker in _JPEG_NO_LENGTH:
            continue
        if marker in (0xD8, 0xD9, 0xDA) or i + 2 > len(data):  # SOI again, EOI or scan data before any frame header
            return None
        length = struct.unpack(">H", data[i:i + 2])[0]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if length < 7 or i + 7 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 3:i + 7])
            return (width, height) if height else None  # height 0: given later by a DNL marker, unmeasurable
        i += length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    header = struct.unpack("<I", data[14:18])[0]
    if header == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    if header >= 40:
        width, height = struct.unpack("<ii", data[18:26])
        return (width, abs(height)) if width > 0 else None  # a negative height is a top-down bitmap
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:  # extended: the canvas size
        return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:  # lossless: 14 bits each, minus one
        bits = int.from_bytes(data[21:25], "little")
        return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", data[26:30])
        return (width & 0x3FFF, height & 0x3FFF)
    return None


def _tiff_tags(data: bytes, wanted: tuple[int, ...]) -> dict[int, int] | None:
    """The wanted one-number tags of a TIFF's first directory (IFD), the one OpenCV decodes; None if the
    directory is cut short or names a wanted tag twice or as anything but one SHORT/LONG (do not guess)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    offset = struct.unpack(order + "I", data[4:8])[0]
    if offset + 2 > len(data):
        return None
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    if offset + 2 + 12 * count > len(data):
        return None
    found: dict[int, int] = {}
    for k in range(count):
        tag, kind, n = struct.unpack(order + "HHI", data[offset + 2 + 12 * k:offset + 10 + 12 * k])
        if tag not in wanted:
            continue
        value = data[offset + 10 + 12 * k:offset + 14 + 12 * k]
        if tag in found or n != 1 or kind not in (3, 4):
            return None
        found[tag] = struct.unpack(order + "H", value[:2])[0] if kind == 3 else struct.unpack(order + "I", value)[0]
    return found


def _tiff(data: bytes) -> tuple[int, int] | None:
    found = _tiff_tags(data, (TIFF_WIDTH, TIFF_LENGTH))  # ImageWidth and ImageLength
    return (found[TIFF_WIDTH], found[TIFF_LENGTH]) if found and len(found) == 2 else None


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header of a PNG, JPEG, BMP, WebP or TIFF; ImageUnreadable for anything else."""
    if not data:  # said as the server says it, not as a format it is not
        raise ImageUnreadable("the file is empty")
    if data[:8] == PNG_SIGNATURE:
        size = _png(data)
    elif data[:3] == JPEG_START:
        size = _jpeg(data)
    elif data[:2] == b"BM":
        size = _bmp(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp(data)
    elif data[:4] in TIFF_STARTS:
        size = _tiff(data)
    else:
        raise ImageUnreadable("not a JPEG, PNG, BMP, WebP or TIFF image")
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise ImageUnreadable("the image is corrupt (its size cannot be read from its header)")
    return int(size[0]), int(size[1])


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} pixels, over the {max_pixels / 1e6:g} megapixel limit")


def check_decoding_cost(data: bytes, max_pixels: int) -> None:
    """What the header's size does not bound: the work and memory a decoder spends beyond the pixels.
    Raises ImageTooLarge for a TIFF tile over max_pixels (the decoder allocates a whole tile however small
    the image), ImageUnreadable for a JPEG of more scans than any encoder writes."""
    if data[:3] == JPEG_START:
        # Entropy-coded data never holds FF DA (an FF there is followed by 00 or a restart marker), so this
        # counts the scans, plus any in an embedded thumbnail.
        scans = data.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise ImageUnreadable(f"a JPEG of {scans:,} scans (encoders write a dozen; over {MAX_JPEG_SCANS} "
                                  "would take minutes to decode)")
    elif data[:4] in TIFF_STARTS:
        tile = _tiff_tags(data, (TIFF_TILE_WIDTH, TIFF_TILE_LENGTH)) or {}
        width, length = tile.get(TIFF_TILE_WIDTH, 0), tile.get(TIFF_TILE_LENGTH, 0)
        if width * length > max_pixels:
            raise ImageTooLarge(f"its {width}x{length}-pixel tiles are over the {max_pixels / 1e6:g} megapixel limit")


def _png_filtered_size(data: bytes, width: int, height: int) -> int | None:
    """Bytes the IDAT stream of a PNG must inflate to (each row of each interlace pass: a filter byte and the
    packed pixels), from its IHDR; None for a colour type libpng refuses anyway."""
    bit_depth, color_type, interlace = data[24], data[25], data[28]
    if color_type not in PNG_CHANNELS:
        return None
    bits = bit_depth * PNG_CHANNELS[color_type]
    total = 0
    for x0, y0, dx, dy in ADAM7 if interlace == 1 else ((0, 0, 1, 1),):
        pass_width, pass_height = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if pass_width > 0 and pass_height > 0:
            total += pass_height * (1 + (pass_width * bits + 7) // 8)
    return total


class _IdatStream:
    """Checks that a PNG's IDAT payloads, fed in order, are one zlib stream that inflates to exactly `expected` bytes
    (the image its header describes); `problem` says why not (None while they are, or may still be).

    libpng decodes one that holds more, or less, or bytes after the stream, but prints its own 'libpng warning:
    IDAT: Too much image data' on stderr (fd 2, among a run's own lines; no OpenCV setting stops it, and
    redirecting fd 2 around the decoder would swallow other threads' lines). Inflating first, in 64 KB steps
    with the output thrown away (memory stays small), costs about half the decoding's time on a large PNG."""

    def __init__(self, expected: int | None):
        self.expected = expected  # None: a colour type the decoder refuses anyway, in our words: nothing to check
        self.inflater, self.produced = zlib.decompressobj(), 0
        self.problem: str | None = None

    def feed(self, payload: memoryview) -> None:
        if self.expected is None or self.problem:
            return
        if self.inflater.eof:
            self.problem = PNG_MISMATCH  # IDAT after the stream's end
            return
        for start in range(0, len(payload), 1 << 16):
            piece = payload[start:start + (1 << 16)]
            while piece:
                try:
                    self.produced += len(self.inflater.decompress(piece, 1 << 20))
                except zlib.error:
                    self.problem = UNDECODABLE
                    return
                if self.produced > self.expected:
                    self.problem = PNG_MISMATCH
                    return
                piece = self.inflater.unconsumed_tail
        if self.inflater.unused_data:
            self.problem = PNG_MISMATCH  # bytes after the stream's end

    def verdict(self) -> str | None:
        if self.expected is None or self.problem:
            return self.problem
        return None if self.inflater.eof and self.produced == self.expected else PNG_MISMATCH


def pillow_open(source):
    """PIL.Image.open as Pillow ships it. Ultralytics, once imported, replaces it with an opener that, on a file Pillow
    cannot identify, tries to pip-install a HEIC plugin (pi-heif) and then raises ModuleNotFoundError: a text file
    named .jpg became 'corrupt image: No module named pi_heif', after an install attempt. The formats read here
    (IMAGE_SUFFIXES) need no plugin."""
    import sys

    from PIL import Image

    patched = sys.modules.get("ultralytics.utils.patches")
    return getattr(patched, "_image_open", Image.open)(source)


def _decode_png_quietly(data: bytes) -> np.ndarray:
    """BGR pixels of a PNG whose compressed pixels do not match its size (some encoders pad the stream), decoded
    by Pillow, which prints nothing; one with too few pixels is refused as corrupt, as Pillow refuses it. Its size
    was checked against the limit before this."""
    import io
    import warnings


    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its DecompressionBombWarning: the size was already bounded here
            with pillow_open(io.BytesIO(data)) as im:
                rgb = np.asarray(im.convert("RGB"))
    except Exception:  # Pillow raises many types for a damaged file
        raise ImageUnreadable(UNDECODABLE) from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


# The ancillary chunks OpenCV's PNG decoder uses: transparency, the EXIF orientation it turns the image by, and an
# animation's frames (APNG). Every other one (colour profile, gamma, text, time...) changes no pixel it gives.
PNG_CHUNKS_USED = frozenset({b"tRNS", b"eXIf", b"acTL", b"fcTL", b"fdAT"})


def check_png(data: bytes, width: int, height: int) -> tuple[bytes, str | None]:
    """One walk over a PNG's chunks before anything decodes it: (the PNG with only the chunks OpenCV makes its pixels
    from, why its compressed pixels are not exactly the image its header describes: None, UNDECODABLE or
    PNG_MISMATCH). Raises ImageUnreadable(PNG_DAMAGED) when a chunk is cut short, a critical chunk's CRC is wrong or
    IEND never comes, and ImageUnreadable for more than MAX_PNG_CHUNKS chunks.

    Damaged: libpng prints its own 'libpng error: ...' line on stderr before OpenCV gives up; refused here, a
    damaged file is reported in our words whichever path it came by (detect.py, server uploads, prelabel.py).
    Kept: the critical chunks (IHDR, PLTE, IDAT, IEND, and any other, for the decoder to judge) and
    PNG_CHUNKS_USED whose CRC is right. Dropped: every other ancillary chunk, and a used one whose CRC is wrong
    (libpng skips it anyway). libpng checks the ancillary chunks it reads (colour profiles, text, their checksums)
    and prints its own warnings about them on stderr, such as 'libpng warning: iCCP: known incorrect sRGB
    profile' or 'tEXt: CRC error', among a run's own lines or a server's; OpenCV applies none of them (no gamma,
    colour profile or background), so the pixels are the same without them. Every viewer shows a photo whose text
    chunk is damaged: so does this."""
    view, pos, chunks, dropped = memoryview(data), len(PNG_SIGNATURE), 0, []
    pixels = _IdatStream(_png_filtered_size(data, width, height))
    while True:
        if pos + 12 > len(data):
            raise ImageUnreadable(PNG_DAMAGED)  # no IEND
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise ImageUnreadable(f"a PNG of over {MAX_PNG_CHUNKS:,} chunks (a 100-megapixel photo has tens of thousands at most)")
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ImageUnreadable(PNG_DAMAGED)  # cut short
        ancillary = kind[0] & 0x20  # a lower-case first letter
        drop = ancillary and kind not in PNG_CHUNKS_USED
        if not drop and zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            if not ancillary:
                raise ImageUnreadable(PNG_DAMAGED)
            drop = True
        if drop:
            if dropped and dropped[-1][1] == pos:
                dropped[-1] = (dropped[-1][0], end)  # one range for a run of dropped chunks
            else:
                dropped.append((pos, end))
        elif kind == b"IDAT":
            pixels.feed(view[pos + 8:end - 4])
        if kind == b"IEND":
            break
        pos = end
    if not dropped:
        return data, pixels.verdict()
    kept, start = [], 0
    for begin, end in dropped:
        kept.append(view[start:begin])
        start = end
    kept.append(view[start:])
    return b"".join(kept), pixels.verdict()


def read_image_bounded(source: bytes | str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR pixels of an image file or its bytes, decoded only once its header says it fits `max_pixels`.

    Raises ImageTooLarge (over the limit) or ImageUnreadable (not measurable, or not decodable);
    OSError when a path cannot be read (FileTooLarge past image_file_limit).
    """
    data = read_bytes_bounded(source, image_file_limit(max_pixels)) if isinstance(source, (str, Path)) else bytes(source)
    width, height = image_size(data)
    check_pixels(width, height, max_pixels)
    check_decoding_cost(data, max_pixels)
    problem = None
    if data[:8] == PNG_SIGNATURE:
        data, problem = check_png(data, width, height)
    if problem == PNG_MISMATCH:  # decodable, but libpng would print its own warning: Pillow decodes it quietly
        return _decode_png_quietly(data)
    if problem:
        raise ImageUnreadable(problem)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageUnreadable(UNDECODABLE)
    if image.shape[0] * image.shape[1] > max_pixels:  # never expected: the decoder disagreed with the header
        raise ImageTooLarge(f"{image.shape[1]}x{image.shape[0]} pixels, over the {max_pixels / 1e6:g} megapixel limit")
    return image
