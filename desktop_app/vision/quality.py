"""Face quality from what the pipeline already has: box, detection score, aligned crop, five landmarks.

Used to gate enrollment (``enrollment_problems`` says in words why a photo is refused) and to weight the votes
of a track. The pose estimate is geometric, from the landmarks only (no 3-D model): good enough to tell a
frontal face from a profile, not a head-pose measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from desktop_app.vision.types import Quality

# Where RetinaFace puts the nose tip on a frontal face, as a fraction of the way from the eye line to the mouth
# line: the median over the 75 faces of ../shared/media people/ and scenes/ is 0.634 (the ArcFace template's 0.495
# is a compromise, not a frontal face).
_NOSE_FRACTION = 0.63
# Nose protrusion relative to half the eye distance (yaw) and to the eye-mouth distance (pitch): anthropometric
# ratios that turn the landmark offsets into rough angles.
_YAW_DEPTH = 1.0
_PITCH_DEPTH = 0.45

# Where each factor of ``overall`` saturates.
GOOD_SIZE_PX = 80.0
MIN_SIZE_PX = 20.0
GOOD_SHARPNESS = 60.0
MAX_YAW = 60.0
MAX_PITCH = 45.0


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees from five landmarks [5, 2]; 0, 0 for a frontal face. Yaw is positive when the
    nose is toward the image's right, pitch positive when the face looks up."""
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    le, re, nose, lm, rm = p
    eye_vec = re - le
    iod = float(np.hypot(*eye_vec))
    if iod < 1e-6:
        return 0.0, 0.0
    c, s = eye_vec / iod  # rotate so the eye line is horizontal (remove roll)
    rot = np.array([[c, s], [-s, c]])
    q = (p - (le + re) / 2) @ rot.T
    eye_mid = np.zeros(2)
    mouth_mid = (q[3] + q[4]) / 2
    yaw = math.degrees(math.atan((q[2, 0] - eye_mid[0]) / (iod / 2) / _YAW_DEPTH))
    em = mouth_mid[1]
    if em <= 1e-6:  # mouth above the eyes: upside down or garbage landmarks
        return yaw, 90.0
    frac = q[2, 1] / em
    pitch = math.degrees(math.atan((_NOSE_FRACTION - frac) / _PITCH_DEPTH))
    return yaw, pitch


def sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop (higher: sharper)."""
    grey = crop_bgr if crop_bgr.ndim == 2 else cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def assess(crop: np.ndarray | None, box: np.ndarray, score: float, landmarks: np.ndarray) -> Quality:
    """Quality of one face. ``overall`` in [0, 1] is the product of size, score, sharpness and pose factors."""
    b = np.asarray(box, np.float64).reshape(4)
    size = float(max(0.0, min(b[2] - b[0], b[3] - b[1])))
    sharp = sharpness(crop) if crop is not None and crop.size else 0.0
    yaw, pitch = pose_from_landmarks(landmarks)
    f_size = _ramp(size, MIN_SIZE_PX, GOOD_SIZE_PX)
    f_sharp = _ramp(sharp, 0.0, GOOD_SHARPNESS) if crop is not None else 1.0
    f_pose = max(0.0, 1.0 - abs(yaw) / MAX_YAW) * max(0.0, 1.0 - abs(pitch) / MAX_PITCH)
    f_score = _ramp(float(score), 0.5, 0.95)
    overall = f_size * f_sharp * f_pose * f_score
    return Quality(size=size, score=float(score), sharpness=sharp, yaw=yaw, pitch=pitch, overall=float(overall))


@dataclass(frozen=True)
class EnrollmentGate:
    """Thresholds a face must pass to become a template."""

    min_size_px: float = 60.0
    min_score: float = 0.9
    min_sharpness: float = 15.0
    max_yaw: float = 35.0
    max_pitch: float = 30.0

    def problems(self, q: Quality) -> list[str]:
        """Human-readable reasons to refuse this face; empty when it is good enough."""
        out = []
        if q.size < self.min_size_px:
            out.append(f"face too small ({q.size:.0f} px, needs {self.min_size_px:.0f}): move closer or use a "
                       "larger photo")
        if q.score < self.min_score:
            out.append(f"face not clearly detected (score {q.score:.2f}, needs {self.min_score:.2f})")
        if q.sharpness < self.min_sharpness:
            out.append(f"image too blurry (sharpness {q.sharpness:.0f}, needs {self.min_sharpness:.0f}): "
                       "hold still, improve the light")
        if abs(q.yaw) > self.max_yaw:
            out.append(f"face turned sideways ({q.yaw:+.0f} degrees): look at the camera")
        if abs(q.pitch) > self.max_pitch:
            out.append(f"face tilted {'up' if q.pitch > 0 else 'down'} ({q.pitch:+.0f} degrees): look straight ahead")
        return out

    def accepts(self, q: Quality) -> bool:
        return not self.problems(q)


DEFAULT_GATE = EnrollmentGate()


def enrollment_problems(q: Quality, gate: EnrollmentGate = DEFAULT_GATE) -> list[str]:
    """Why ``q`` should not be enrolled (empty list: accept)."""
    return gate.problems(q)
