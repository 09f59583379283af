"""Frozen result records of the vision core. Arrays are numpy; shapes documented; empty results are valid."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    """Faces of one image. ``boxes`` float32 [N, 4] (x1, y1, x2, y2 pixels of the input image),
    ``scores`` float32 [N], ``landmarks`` float32 [N, 5, 2] (left eye, right eye, nose, left and right mouth)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> Detection:
        return Detection(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class Quality:
    """Per-face quality: face size (px, shorter box side), detection score, sharpness (variance of the
    Laplacian of the aligned crop), yaw/pitch estimates from landmarks (degrees), overall score in [0, 1]."""

    size: float
    score: float
    sharpness: float
    yaw: float
    pitch: float
    overall: float


@dataclass(frozen=True)
class Face:
    """One face of a frame. ``crop`` uint8 [112, 112, 3] BGR aligned; ``embedding`` float32 [D] unit length
    (None when this frame did not embed the face: its track kept an earlier embedding). ``voted``: the identity is
    decided (the track's vote is in, or a still was matched) and ``name`` may be acted on; ``votes``: frames of the
    track that voted so far; ``embedded``: this frame computed the embedding."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    crop: np.ndarray | None = None
    quality: Quality | None = None
    embedding: np.ndarray | None = None
    track_id: int = -1
    name: str | None = None
    person_id: int | None = None
    similarity: float = 0.0
    voted: bool = False
    votes: int = 0
    embedded: bool = False

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


def largest_face(faces: Iterable[Face]) -> Face | None:
    """The face with the largest box (the first of equals), None when there is none: the one rule by which a
    photo or a camera frame with several faces gives the face to enrol or to show."""
    return max(faces, key=lambda f: f.area, default=None)


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline made of one frame. ``faces`` sorted by detection score; ``timings_ms`` maps a stage
    (detect, align, quality, embed, search, track, total) to milliseconds; ``error`` says why a frame could not
    be used (the faces are then empty); ``notice`` is a standing remark such as a missing recognition model."""

    faces: tuple[Face, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    notice: str | None = None
    frame_index: int = -1
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the frame

    @property
    def ok(self) -> bool:
        return self.error is None

    def named(self) -> tuple[Face, ...]:
        """Faces whose identity has been decided (voted over a track, or a still's match)."""
        return tuple(f for f in self.faces if f.name is not None and f.voted)


class Decision(Protocol):
    """What a matcher says about one face: the gallery's ``Match`` (desktop_app.gallery.index) is the one kind the
    app makes. The decision is the matcher's alone (threshold, margin and rule applied by the gallery with the
    model's values, :meth:`desktop_app.config.RecognitionSettings.for_model`); the pipeline only reads it."""

    @property
    def person_id(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def similarity(self) -> float: ...
    @property
    def accepted(self) -> bool: ...


Matcher = Callable[[np.ndarray], Sequence[Decision]]  # embeddings float32 [N, D] -> one decision per row
