"""5-point face alignment onto the ArcFace 112x112 template (pure functions, batched over the faces of a frame).

The transform is the least-squares similarity (rotation, uniform scale, translation; no reflection) of the five
landmarks onto the template: Umeyama's solution, which in 2-D has the closed form used here for all faces at once.
"""

from __future__ import annotations

import cv2
import numpy as np

# (x, y) of left eye, right eye, nose tip, left and right mouth corner in a 112x112 crop (InsightFace / GUIDE.md).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
TEMPLATE_SIZE = 112


def template_for(size: int = TEMPLATE_SIZE) -> np.ndarray:
    return ARCFACE_TEMPLATE * (size / TEMPLATE_SIZE)


def similarity_transforms(landmarks: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity transforms mapping ``landmarks`` [N, 5, 2] onto ``dst`` [5, 2] (default: the
    112 template): float32 [N, 2, 3] affine matrices ``[[a, -b, tx], [b, a, ty]]``."""
    src = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    d = np.asarray(ARCFACE_TEMPLATE if dst is None else dst, np.float64)
    sm = src.mean(axis=1, keepdims=True)
    dm = d.mean(axis=0)
    s = src - sm
    dd = d - dm
    var = np.maximum((s**2).sum(axis=(1, 2)), 1e-12)
    a = (s[..., 0] * dd[:, 0] + s[..., 1] * dd[:, 1]).sum(axis=1) / var
    b = (s[..., 0] * dd[:, 1] - s[..., 1] * dd[:, 0]).sum(axis=1) / var
    sx, sy = sm[:, 0, 0], sm[:, 0, 1]
    tx = dm[0] - (a * sx - b * sy)
    ty = dm[1] - (b * sx + a * sy)
    m = np.stack([np.stack([a, -b, tx], axis=1), np.stack([b, a, ty], axis=1)], axis=1)
    return m.astype(np.float32)


def similarity_transform(landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The 2x3 similarity transform of one face's landmarks [5, 2] onto the template scaled to ``size``."""
    return similarity_transforms(np.asarray(landmarks).reshape(1, 5, 2), template_for(size))[0]


def align_faces(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """Aligned crops, uint8 [N, size, size, 3], one per face of ``landmarks`` [N, 5, 2]."""
    lm = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    out = np.empty((len(lm), size, size, 3), np.uint8)
    if len(lm) == 0:
        return out
    mats = similarity_transforms(lm, template_for(size))
    for i, m in enumerate(mats):
        cv2.warpAffine(image_bgr, m, (size, size), dst=out[i], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to points [..., 2]."""
    p = np.asarray(points, np.float32)
    return p @ matrix[:, :2].T + matrix[:, 2]
