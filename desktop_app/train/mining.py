"""Hard-example mining on the teacher's similarity: each face's nearest faces by a teacher's embedding.

A random batch of faces from thousands of people holds almost only easy pairs (the teacher calls them unrelated),
so the relational term mostly teaches "different". A recipe's ``pairs`` puts some faces into each batch together
with one of their teacher-nearest neighbours (another photo of the same person, or a look-alike): the in-batch
similarity the student must match then includes the fine distinctions a door camera has to make.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from desktop_app.train.data import cache_file, save_cached

log = logging.getLogger(__name__)


def nearest_neighbours(emb: np.ndarray, k: int, max_sim: float = 0.98, chunk: int = 2048
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar other faces of each face (cosine of ``emb``, rows need not be unit length), most
    similar first: (indices int32 [N, k], similarities float32 [N, k]). A face is never its own neighbour, and
    faces above ``max_sim`` (copies of the same photo) come last, as they teach nothing a pair could."""
    e = emb.astype(np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    n = len(e)
    k = min(k, n - 1)
    if k < 1:
        raise ValueError("nearest neighbours need at least two faces")
    idx = np.empty((n, k), np.int32)
    sims = np.empty((n, k), np.float32)
    for i in range(0, n, chunk):
        s = e[i : i + chunk] @ e.T
        rows = np.arange(len(s))
        s[s > max_sim] = -2.0  # copies: ranked after every real neighbour
        s[rows, rows + i] = -3.0  # itself: last of all (k < n keeps it out)
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, 1)
        idx[i : i + len(s)] = top
        sims[i : i + len(s)] = np.einsum("nd,nkd->nk", e[i : i + chunk], e[top])  # the true cosines, copies too
    return idx, sims


def cached_neighbours(emb: np.ndarray, k: int, paths: list[str], tag: str, cache: Path) -> np.ndarray:
    """:func:`nearest_neighbours` indices, computed once per image list, teacher (``tag``) and ``k``."""
    f = cache_file(cache, "neighbours", paths, f"{tag}:k={k}")
    if f.exists():
        return np.load(f)
    idx, sims = nearest_neighbours(emb, k)
    log.info("teacher neighbours (%s, k=%d): mean similarity of the nearest %.3f, of the k-th %.3f", tag, k,
             float(sims[:, 0].mean()), float(sims[:, -1].mean()))
    save_cached(f, idx)
    return idx


def pair_batch(chunk: np.ndarray, n_pairs: int, neighbours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A batch from ``chunk`` (faces of the epoch's order) whose last ``n_pairs`` faces each bring one of their
    neighbours, drawn at random: [chunk..., neighbours of its last n_pairs]. The pairs sit at the end of the batch,
    where the loop keeps its un-mixed faces."""
    if n_pairs <= 0:
        return chunk
    anchors = chunk[len(chunk) - n_pairs :]
    pick = neighbours[anchors, rng.integers(0, neighbours.shape[1], size=n_pairs)]
    return np.concatenate([chunk, pick.astype(chunk.dtype)])
