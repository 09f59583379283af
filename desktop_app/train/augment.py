"""Face augmentation on uint8 RGB batches (numpy + OpenCV), mild by default.

Flip; one affine warp (rotation, scale, shift: the landmark noise a live detector makes); down-sampling and
back (low-resolution webcams); blur; grey; brightness/contrast; and, off unless a recipe sets them, what a webcam
adds in a dim room: low light (a darkening gamma with sensor noise) and JPEG compression. Mixup is done by the
loop, not here. A step that is off draws no random number, so recipes that leave the new steps off see the same
random stream as before they existed.
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
    lowlight_p: float = 0.0  # darken with a gamma in lowlight_gamma, then add Gaussian noise of lowlight_noise sigma
    lowlight_gamma: tuple[float, float] = (1.5, 2.5)
    lowlight_noise: tuple[float, float] = (2.0, 8.0)
    jpeg_p: float = 0.0  # encode and decode at a quality drawn from jpeg_quality (last, as a webcam stream does)
    jpeg_quality: tuple[int, int] = (30, 90)


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
        img = cv2.convertScaleAbs(img, alpha=a, beta=b)
        if cfg.lowlight_p > 0 and rng.random() < cfg.lowlight_p:
            img = low_light(img, rng.uniform(*cfg.lowlight_gamma), rng.uniform(*cfg.lowlight_noise), rng)
        if cfg.jpeg_p > 0 and rng.random() < cfg.jpeg_p:
            img = jpeg_round_trip(img, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        out[k] = img
    return out


def low_light(img: np.ndarray, gamma: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A dim room through a webcam: darker mid-tones (gamma > 1) and the sensor noise its gain brings out."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    dark = cv2.LUT(img, lut).astype(np.float32)
    return np.clip(dark + rng.normal(0.0, sigma, size=img.shape) + 0.5, 0, 255).astype(np.uint8)


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """The blocks and ringing of a compressed stream (RGB in, RGB out)."""
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return img
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 RGB NHWC -> float32 NCHW, (x - 127.5) / 128: the shipped model's input convention."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2)
    return (x - 127.5) / 128.0
