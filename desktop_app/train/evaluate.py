"""Evaluation: LFW 10-fold View 2 (threshold picked on 9 folds) and open-set identification.

Works on any embeddings, so the same code measures the student, the shipped ONNX and the teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


def read_lfw_pairs(path: str | Path) -> list[tuple[str, str, bool]]:
    """Pairs as (relative path a, relative path b, same) under the pack's lfw/ folder."""
    pairs: list[tuple[str, str, bool]] = []
    lines = Path(path).read_text().split("\n")
    for line in lines:
        f = line.split()
        if len(f) == 3:
            n, i, j = f
            pairs.append((f"{n}/{n}_{int(i):04d}.jpg", f"{n}/{n}_{int(j):04d}.jpg", True))
        elif len(f) == 4:
            a, i, b, j = f
            pairs.append((f"{a}/{a}_{int(i):04d}.jpg", f"{b}/{b}_{int(j):04d}.jpg", False))
    return pairs


@dataclass(frozen=True)
class LfwResult:
    accuracy: float  # mean over the 10 folds, in %
    std: float
    threshold: float  # mean chosen threshold
    n_pairs: int


def ten_fold(sims: np.ndarray, same: np.ndarray, folds: int = 10) -> LfwResult:
    """Standard protocol: folds are consecutive blocks of pairs; threshold chosen on the other folds."""
    n = len(sims)
    fold_of = np.arange(n) * folds // n
    accs, ths = [], []
    cands = np.unique(np.concatenate([sims, [sims.min() - 1e-6]]))
    for k in range(folds):
        tr, te = fold_of != k, fold_of == k
        acc_tr = [((sims[tr] > t) == same[tr]).mean() for t in cands]
        t = cands[int(np.argmax(acc_tr))]
        ths.append(t)
        accs.append(((sims[te] > t) == same[te]).mean())
    return LfwResult(100 * float(np.mean(accs)), 100 * float(np.std(accs)), float(np.mean(ths)), n)


Progress = Callable[[str, int, int], None]  # (stage, done, total), called about every 10 % of a stage


def _report(progress: Progress | None, stage: str, before: int, done: int, total: int) -> None:
    """Calls ``progress`` when going from ``before`` to ``done`` crossed a tenth of ``total``."""
    if progress is not None and total and done * 10 // total > before * 10 // total:
        progress(stage, done, total)


def load_lfw_pair_images(
    lfw_root: str | Path, pairs_file: str | Path, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique BGR crops [M, 112, 112, 3], index pairs [P, 2] and same flags [P]."""
    pairs = read_lfw_pairs(pairs_file)
    names = sorted({p for a, b, _ in pairs for p in (a, b)})
    idx = {n: k for k, n in enumerate(names)}
    imgs = []
    for k, n in enumerate(names, 1):
        im = cv2.imread(str(Path(lfw_root) / n))
        if im is None:
            raise OSError(f"missing LFW image {n}")
        imgs.append(im)
        _report(progress, "loading faces", k - 1, k, len(names))
    ij = np.array([[idx[a], idx[b]] for a, b, _ in pairs])
    same = np.array([s for _, _, s in pairs])
    return np.stack(imgs), ij, same


def lfw_from_embeddings(emb: np.ndarray, ij: np.ndarray, same: np.ndarray) -> LfwResult:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = (e[ij[:, 0]] * e[ij[:, 1]]).sum(1)
    return ten_fold(sims, same)


@dataclass(frozen=True)
class OpenSetResult:
    dir_at_far: float  # % of known probes named correctly while at most `far` of unknown probes are accepted
    far: float
    rank1: float  # closed-set rank-1 of the known probes, %
    verification_tar: float  # pairwise TAR at FAR=1e-3 over all val pairs, %


def open_set(emb: np.ndarray, labels: np.ndarray, far: float = 0.01, seed: int = 0) -> OpenSetResult:
    """Half of the identities are enrolled with one image each; their other images are known probes and every
    image of the other half is an unknown probe. The threshold admits at most ``far`` of unknown probes."""
    rng = np.random.default_rng(seed)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ids = np.unique(labels)
    rng.shuffle(ids)
    known = ids[: len(ids) // 2]
    gal_idx, probe_known = [], []
    for i in known:
        members = np.flatnonzero(labels == i)
        gal_idx.append(members[0])
        probe_known.extend(members[1:])
    gal_idx_a = np.array(gal_idx)
    probe_unknown = np.flatnonzero(~np.isin(labels, known))
    g = e[gal_idx_a]
    s_known = e[probe_known] @ g.T
    s_unknown = e[probe_unknown] @ g.T
    best_unknown = np.sort(s_unknown.max(1))
    thr = best_unknown[min(len(best_unknown) - 1, int(np.ceil((1 - far) * len(best_unknown))))]
    pred = s_known.argmax(1)
    correct = known[pred] == labels[probe_known]
    accepted = s_known.max(1) > thr
    sims = e @ e.T
    iu = np.triu_indices(len(e), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    s = sims[iu]
    neg = np.sort(s[~same])
    t3 = neg[int(np.ceil((1 - 1e-3) * len(neg))) - 1]
    return OpenSetResult(
        dir_at_far=100 * float((correct & accepted).mean()),
        far=far,
        rank1=100 * float(correct.mean()),
        verification_tar=100 * float((s[same] > t3).mean()),
    )


def default_pack_root() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "faces112"


def evaluate_lfw_entry(entry, pack_root: str | Path | None = None, flip: bool = True, threads: int = 0,
                       batch: int = 64, progress: Progress | None = None) -> LfwResult:
    """LFW View 2 of any ONNX embedder described by a manifest entry (ONNX Runtime only, no torch).
    ``progress(stage, done, total)`` hears about loading and embedding the faces, about every 10 %."""
    from desktop_app.vision.embedder import Embedder

    root = Path(pack_root) if pack_root else default_pack_root()
    imgs, ij, same = load_lfw_pair_images(root / "lfw", root / "lfw-pairs.txt", progress)
    emb = Embedder(entry, threads=threads, verify=bool(entry.sha256))
    parts = []
    for i in range(0, len(imgs), batch):
        parts.append(emb.infer(imgs[i : i + batch], flip=flip))
        _report(progress, "embedding faces", i, min(i + batch, len(imgs)), len(imgs))
    return lfw_from_embeddings(np.concatenate(parts), ij, same)
