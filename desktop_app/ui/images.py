"""Images for the views: BGR arrays and stored JPEGs (kept crops, snapshots) as QImages. A QImage, unlike a QPixmap,
may be made off the GUI thread: the task thread decodes thumbnails, the vision thread frames."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from desktop_app.vision.media import MediaError, decode_image


def bgr_to_qimage(img: np.ndarray) -> QImage:
    """A QImage that owns a copy of the pixels of a BGR uint8 [H, W, 3] (or grey [H, W]) array."""
    a = np.ascontiguousarray(img)
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_BGR888).copy()


def jpeg_to_qimage(data: bytes | None) -> QImage | None:
    """A stored JPEG as a QImage; None when there is none or it cannot be decoded (the one guarded image reader)."""
    if not data:
        return None
    try:
        return bgr_to_qimage(decode_image(data, "snapshot"))
    except MediaError:
        return None


def thumbnails_of(crops: dict[int, bytes]) -> dict[int, QImage]:
    """The crops decoded (on the task thread: a thousand people would otherwise stall the window at every gallery
    change)."""
    return {pid: q for pid, b in crops.items() if (q := jpeg_to_qimage(b)) is not None}
