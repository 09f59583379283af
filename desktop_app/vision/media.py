"""Reading images and videos for the CLI and the benchmark: clear messages instead of exceptions or ``None``.

(The live app's cameras and streams go through desktop_app/capture; this is the minimal file-based reading the
headless commands need.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


class MediaError(ValueError):
    """A file that cannot be read as the image or video it should be; the message says which and why."""


def read_image(path: str | Path) -> np.ndarray:
    """uint8 BGR [H, W, 3]; the alpha channel of a PNG is dropped, grey images become BGR. A truncated file
    decodes as far as its data goes (OpenCV's behaviour). Raises :class:`MediaError` with a clear message."""
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # np.fromfile + imdecode: non-ASCII paths work on Windows too
    except OSError as exc:
        raise MediaError(f"cannot read {p}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise MediaError(f"{p} is empty")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise MediaError(f"{p} is not a readable image (damaged, or an unsupported format)")
    return img


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
