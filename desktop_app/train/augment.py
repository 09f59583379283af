"""Face augmentation on uint8 RGB batches (numpy + OpenCV), mild by default.

Flip; one affine warp (rotation, scale, shift: the landmark noise a live detector makes); down-sampling and
back (low-resolution webcams); blur; grey; brightness/contrast. Mixup is done by the loop, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    rotate_deg: float = 6.0
    scale: tuple[float, float] = (0.95, 1.05)
    shift_px: float = 3.0
    downsample_p: float = 0.2
    downsample: tuple[float, float] = (0.4, 0.9)
    blur_p: float = 0.0
    grey_p: float = 0.2
    brightness: tuple[float, float] = (0.8, 1.2)
    offset: float = 15.0


def augment_batch(images: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
                  flipped: np.ndarray | None = None) -> np.ndarray:
    """Return an augmented copy of ``images`` (uint8 [N, H, W, 3]); ``flipped`` (bool [N]), when given, is set to
    which faces were mirrored (a cached teacher target of the mirror then applies)."""
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    c = (w / 2.0, h / 2.0)
    for k in range(n):
        img = images[k]
        flip = rng.random() < cfg.flip
        if flip:
            img = img[:, ::-1]
        if flipped is not None:
            flipped[k] = flip
        ang = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
        sc = rng.uniform(*cfg.scale)
        m = cv2.getRotationMatrix2D(c, ang, sc)
        m[:, 2] += rng.uniform(-cfg.shift_px, cfg.shift_px, size=2)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < cfg.downsample_p:
            f = rng.uniform(*cfg.downsample)
            small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if rng.random() < cfg.blur_p:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        if rng.random() < cfg.grey_p:
            g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            img = np.repeat(g[:, :, None], 3, axis=2)
        a = rng.uniform(*cfg.brightness)
        b = rng.uniform(-cfg.offset, cfg.offset)
        out[k] = cv2.convertScaleAbs(img, alpha=a, beta=b)
    return out


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 RGB NHWC -> float32 NCHW, (x - 127.5) / 128: the shipped model's input convention."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2)
    return (x - 127.5) / 128.0
