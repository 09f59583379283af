"""Face tracks across frames: association, when to embed again, and identity by quality-weighted voting.

A track is a face followed from frame to frame by box overlap (IoU), with a landmark-distance fallback for fast
motion. Embedding is the costly stage, so a track is embedded only while its vote is still open, every
``recheck_frames`` frames afterwards, and when a clearly better view of the face turns up. Downstream code
(attendance) acts only on a *voted* identity: the person holding more than half of the quality-weighted votes of
the last ``vote_frames`` embeddings; "unknown" is a candidate like any person.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = None  # the vote candidate for "no enrolled person"


@dataclass(frozen=True)
class Vote:
    person_id: int | None
    name: str | None
    similarity: float
    weight: float


@dataclass
class Track:
    id: int
    box: np.ndarray
    landmarks: np.ndarray
    first_frame: int
    last_frame: int
    hits: int = 1
    last_embed_frame: int = -(10**9)
    best_quality: float = 0.0
    embedding: np.ndarray | None = None
    votes: deque = field(default_factory=deque)
    person_id: int | None = None
    name: str | None = None
    similarity: float = 0.0
    voted: bool = False


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4]: [N, M]."""
    a = np.asarray(a, np.float32).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, np.float32).reshape(-1, 4)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def tally(votes: list[Vote] | deque) -> tuple[Vote | None, float]:
    """The winning candidate of ``votes`` (a representative vote, mean similarity) and its share of the weight."""
    totals: dict[int | None, float] = {}
    sims: dict[int | None, list[float]] = {}
    names: dict[int | None, str | None] = {}
    for v in votes:
        totals[v.person_id] = totals.get(v.person_id, 0.0) + v.weight
        sims.setdefault(v.person_id, []).append(v.similarity)
        names[v.person_id] = v.name
    if not totals:
        return None, 0.0
    best = max(totals, key=lambda k: totals[k])
    share = totals[best] / max(sum(totals.values()), 1e-12)
    return Vote(best, names[best], float(np.mean(sims[best])), totals[best]), share


class Tracker:
    """Associates detections with tracks and keeps each track's vote. Not thread-safe: one per video stream."""

    def __init__(
        self,
        vote_frames: int = 3,
        recheck_frames: int = 15,
        iou_threshold: float = 0.3,
        landmark_threshold: float = 0.25,
        max_missed: int = 10,
        better_quality: float = 1.25,
        max_scale_change: float = 1.3,
        identity_reset_similarity: float = 0.2,
    ) -> None:
        self.vote_frames = int(vote_frames)
        self.recheck_frames = int(recheck_frames)
        self.iou_threshold = float(iou_threshold)
        self.landmark_threshold = float(landmark_threshold)
        self.max_missed = int(max_missed)
        self.better_quality = float(better_quality)
        self.max_scale_change = float(max_scale_change)
        self.identity_reset_similarity = float(identity_reset_similarity)
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def reset(self) -> None:
        self.tracks.clear()
        self._next_id = 1

    def associate(self, boxes: np.ndarray, landmarks: np.ndarray, frame_index: int) -> list[int]:
        """A track id per detection (new tracks for unmatched detections); tracks unseen for ``max_missed``
        frames are dropped."""
        for tid in [t.id for t in self.tracks.values() if frame_index - t.last_frame > self.max_missed]:
            del self.tracks[tid]
        n = len(boxes)
        ids = [-1] * n
        live = list(self.tracks.values())
        if n and live:
            tb = np.stack([t.box for t in live])
            aff = iou_matrix(boxes, tb)
            # landmark fallback: mean landmark distance relative to the track's box size
            tl = np.stack([t.landmarks for t in live])
            size = np.maximum(tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1])
            d = np.linalg.norm(np.asarray(landmarks)[:, None] - tl[None], axis=-1).mean(axis=-1) / size[None]
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            tarea = (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
            ratio = np.sqrt(np.maximum(area[:, None], 1e-6) / np.maximum(tarea[None, :], 1e-6))
            similar_size = (ratio > 1 / self.max_scale_change) & (ratio < self.max_scale_change)
            ok = ((aff >= self.iou_threshold) | (d <= self.landmark_threshold)) & similar_size
            score = np.where(ok, aff + (1.0 - np.minimum(d, 1.0)), -1.0)
            for _ in range(min(n, len(live))):
                i, j = np.unravel_index(int(np.argmax(score)), score.shape)
                if score[i, j] < 0:
                    break
                ids[i] = live[j].id
                score[i, :] = -1.0
                score[:, j] = -1.0
        for i in range(n):
            if ids[i] < 0:
                t = Track(self._next_id, boxes[i], landmarks[i], frame_index, frame_index,
                          votes=deque(maxlen=self.vote_frames))
                self.tracks[t.id] = t
                self._next_id += 1
                ids[i] = t.id
            else:
                t = self.tracks[ids[i]]
                t.box, t.landmarks, t.last_frame = boxes[i], landmarks[i], frame_index
                t.hits += 1
        return ids

    def needs_embedding(self, track_id: int, quality: float, frame_index: int) -> bool:
        t = self.tracks[track_id]
        if len(t.votes) < self.vote_frames:
            return True  # the vote is still open
        if frame_index - t.last_embed_frame >= self.recheck_frames:
            return True
        return quality > t.best_quality * self.better_quality + 0.05

    def observe(self, track_id: int, frame_index: int, embedding: np.ndarray, quality: float,
                person_id: int | None, name: str | None, similarity: float) -> Track:
        """Record one embedding of a track and its (already decided) match; re-run the vote."""
        t = self.tracks[track_id]
        if t.embedding is not None and float(np.dot(t.embedding, embedding)) < self.identity_reset_similarity:
            # the face under this track no longer looks like the one it followed (a cut, a swap): vote afresh
            t.votes.clear()
            t.person_id, t.name, t.similarity, t.voted, t.best_quality = None, None, 0.0, False, 0.0
        t.last_embed_frame = frame_index
        t.best_quality = max(t.best_quality, quality)
        t.embedding = embedding
        t.votes.append(Vote(person_id, name if person_id is not None else None, float(similarity),
                            max(float(quality), 0.05)))
        if len(t.votes) >= self.vote_frames:
            win, share = tally(t.votes)
            if win is not None and share > 0.5:
                t.person_id, t.name, t.similarity, t.voted = win.person_id, win.name, win.similarity, True
        return t
