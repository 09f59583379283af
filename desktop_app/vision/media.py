"""Reading images and videos: one guarded image reader for every still the app reads, clear messages instead of
exceptions or ``None``.

Every image file the app reads (the CLI's detect / identify / enroll / run, the capture's image-folder source,
enrolment from files in the GUI) goes through :func:`read_image`: it checks the file's size and the pixel
dimensions its header declares *before* decoding (a 69-byte PNG may declare 100000 x 100000 pixels, which
OpenCV would try to allocate or refuse with an exception), and turns every decoding failure into an
:class:`ImageReadError` that names the file and says why in plain words. The limits are written down in
docs/INPUT.md.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

# The suffixes the app treats as still images / videos, everywhere (file dialogs, folders, the CLI).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})

MAX_IMAGE_PIXELS = 50_000_000  # width x height a still may declare (a 48 MP phone photo fits); see docs/INPUT.md
# OpenCV's own decoder limit, the last line of defence for a header this module cannot read: set before the first
# decode (OpenCV reads it then), unless the user set it
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
MAX_IMAGE_BYTES = 512 * 1024 * 1024  # file size read into memory at most


class MediaError(ValueError):
    """A file that cannot be read as the image or video it should be; the message says which and why."""


class ImageReadError(MediaError):
    """An image file that was refused: ``path`` names it, ``reason`` says why in the user's words (without the
    file name, for lists that already show it); ``str()`` is ``"PATH: REASON"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _megapixels(n: int) -> str:
    return f"{n / 1e6:g} megapixels"


def image_header_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) declared by the header of a PNG, JPEG, BMP, WebP, TIFF or PGM/PPM file, without decoding
    it; None when the format is not one of these or the header cannot be parsed (the decoder then decides)."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray | memoryview) else data
    b = bytes(buf[:4096])
    try:
        if b.startswith(b"\x89PNG\r\n\x1a\n") and b[12:16] == b"IHDR":
            return struct.unpack(">II", b[16:24])
        if b.startswith(b"\xff\xd8"):
            return _jpeg_size(buf)
        if b.startswith(b"BM") and len(b) >= 26:
            if struct.unpack("<I", b[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", b[18:22])
            w, h = struct.unpack("<ii", b[18:26])
            return abs(w), abs(h)
        if b.startswith(b"RIFF") and b[8:12] == b"WEBP":
            return _webp_size(b)
        if b[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(buf)
        if len(b) > 2 and b[0:1] == b"P" and b[1:2] in b"123456" and b[2:3].isspace():
            return _pnm_size(b)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(buf: np.ndarray) -> tuple[int, int] | None:
    """From the first start-of-frame marker, walking the segments (EXIF, ICC, ... may come first)."""
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:  # stray bytes between segments: a decoder skips them to the next marker, so must we
            i += 1
            continue
        marker = int(buf[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", bytes(buf[i + 2:i + 4]))
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", bytes(buf[i + 5:i + 9]))
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def _webp_size(b: bytes) -> tuple[int, int] | None:
    chunk = b[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(b[24:27], "little") + 1, int.from_bytes(b[27:30], "little") + 1
    if chunk == b"VP8L":
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(buf: np.ndarray) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    e = "<" if bytes(buf[:2]) == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", bytes(buf[4:8]))
    (n,) = struct.unpack(e + "H", bytes(buf[ifd:ifd + 2]))
    entries = bytes(buf[ifd + 2:ifd + 2 + 12 * n])
    size: dict[int, int] = {}
    for k in range(n):
        tag, typ, _count = struct.unpack_from(e + "HHI", entries, 12 * k)
        if tag in (256, 257):
            size[tag] = struct.unpack_from(e + ("H" if typ == 3 else "I"), entries, 12 * k + 8)[0]
    return (size[256], size[257]) if len(size) == 2 else None


def _pnm_size(b: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in b[2:].split(b"\n"):
        for tok in line.split(b"#", 1)[0].split():
            tokens.append(int(tok))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None


def decode_image(data: bytes | np.ndarray, name: str | Path = "image") -> np.ndarray:
    """uint8 BGR [H, W, 3] of encoded image bytes; the alpha channel of a PNG is dropped, grey images become BGR.
    Refuses (:class:`ImageReadError`, naming ``name``) an empty buffer, dimensions over :data:`MAX_IMAGE_PIXELS`
    and anything OpenCV cannot decode, whatever the decoder raises."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray | memoryview) else data
    if buf.size == 0:
        raise ImageReadError(name, "empty file")
    size = image_header_size(buf)
    if size is not None:
        w, h = size
        if w <= 0 or h <= 0:
            raise ImageReadError(name, f"the file says {w} x {h} pixels: damaged")
        if w * h > MAX_IMAGE_PIXELS:
            raise ImageReadError(name, f"{w} x {h} pixels is too large (limit {_megapixels(MAX_IMAGE_PIXELS)}): "
                                       "scale it down first")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own size limit, a decoder assertion, or no memory for the pixels
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ImageReadError(name, f"too large to decode (limit {_megapixels(MAX_IMAGE_PIXELS)})") from None
        raise ImageReadError(name, "not a readable image: damaged, or not an image at all") from None
    except MemoryError:
        raise ImageReadError(name, "too large to decode: not enough memory") from None
    if img is None or img.size == 0:
        raise ImageReadError(name, "not a readable image: damaged, or not an image at all")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:  # a format whose header was not checked above
        raise ImageReadError(name, f"{img.shape[1]} x {img.shape[0]} pixels is too large "
                                   f"(limit {_megapixels(MAX_IMAGE_PIXELS)}): scale it down first")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """uint8 BGR [H, W, 3] of an image file (any path, non-ASCII included): the one guarded reader of the app.
    Raises :class:`ImageReadError` ("photo.png: empty file", "...: 100000 x 100000 pixels is too large (limit
    50 megapixels) ...", "...: not a readable image: damaged, or not an image at all")."""
    p = Path(path)
    if p.is_dir():
        raise ImageReadError(p, "a folder, not an image file")
    try:
        n = p.stat().st_size
        if n > MAX_IMAGE_BYTES:
            raise ImageReadError(p, f"the file is too large ({n / 2**20:.0f} MB, limit "
                                    f"{MAX_IMAGE_BYTES / 2**20:.0f} MB)")
        data = np.fromfile(p, dtype=np.uint8)  # np.fromfile + imdecode: non-ASCII paths work on Windows too
    except FileNotFoundError:
        raise ImageReadError(p, "file not found") from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot read the file: {exc.strerror or exc}") from None
    return decode_image(data, p)


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image(p))


def open_video(path: str | Path) -> cv2.VideoCapture:
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"video not found: {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"{p} is not a readable video (damaged, empty, or an unsupported codec)")
    return cap


def iter_video(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decoded BGR frames; :class:`MediaError` when the file cannot be opened or yields no frame at all."""
    cap = open_video(path)
    n = 0
    try:
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            n += 1
            yield frame
    finally:
        cap.release()
    if n == 0:
        raise MediaError(f"{Path(path)} holds no decodable frame")


def encode_jpeg(image: np.ndarray | None, quality: int) -> bytes | None:
    """``image`` (BGR) as JPEG bytes at ``quality``; None for an empty image or one OpenCV cannot encode."""
    if image is None or image.size == 0:
        return None
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return buf.tobytes() if ok else None
