"""Face datasets held in memory as uint8 RGB arrays: the faces112 pack (index CSV) and a plain ImageFolder.

The pack's ``train/index.csv`` holds ``path, identity, source``; the validation split is a set of whole
identities of ``celeba-wild`` held out of training (open-set evaluation needs people never seen).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class FaceArray:
    """``images``: uint8 [N, 112, 112, 3] RGB; ``labels``: int64 [N], -1 where unknown."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]

    def subset(self, idx: np.ndarray) -> FaceArray:
        return FaceArray(self.images[idx], self.labels[idx], [self.paths[i] for i in idx])

    def __len__(self) -> int:
        return len(self.paths)


def _read_rgb(path: Path, size: int) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def cache_file(cache: Path, kind: str, paths: list[str], extra: str) -> Path:
    """``cache/KIND-KEY.npy``, KEY from the image list and what else the array depends on (a teacher, a size): the
    one naming of the trainer's cached arrays (faces, teacher targets, neighbours)."""
    key = hashlib.sha1(("\n".join(paths) + extra).encode()).hexdigest()[:16]
    return Path(cache) / f"{kind}-{key}.npy"


def save_cached(f: Path, arr: np.ndarray) -> None:
    """Written whole or not at all: a killed run never leaves a half-written cache file that a later run trusts."""
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(f)


def _load(root: Path, rows: list[tuple[str, str]], size: int, cache_dir: Path | None) -> FaceArray:
    paths = [p for p, _ in rows]
    names = sorted({i for _, i in rows if i})
    ids = {n: k for k, n in enumerate(names)}
    labels = np.array([ids[i] if i else -1 for _, i in rows], dtype=np.int64)
    cache = cache_file(cache_dir, "faces", paths, str(root.resolve()) + str(size)) if cache_dir else None
    if cache is not None and cache.exists():
        images = np.load(cache, mmap_mode=None)
    else:
        images = np.empty((len(paths), size, size, 3), np.uint8)
        for k, p in enumerate(paths):
            images[k] = _read_rgb(root / p, size)
        if cache is not None:
            save_cached(cache, images)
    return FaceArray(images, labels, paths)


def load_index_csv(root: str | Path, index: str = "train/index.csv", size: int = 112,
                   cache_dir: Path | None = None) -> tuple[FaceArray, list[str]]:
    """Load a pack described by an index CSV; returns the faces and each face's source column."""
    root = Path(root)
    with open(root / index, newline="") as fh:
        rd = csv.DictReader(fh)
        recs = [(r["path"], r.get("identity") or "", r.get("source") or "") for r in rd]
    arr = _load(root, [(p, i) for p, i, _ in recs], size, cache_dir)
    return arr, [s for _, _, s in recs]


def load_image_folder(root: str | Path, size: int = 112, cache_dir: Path | None = None) -> FaceArray:
    """A plain ImageFolder: one sub-folder per identity."""
    root = Path(root)
    rows = [
        (str(p.relative_to(root)), p.parent.name)
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"}
    ]
    return _load(root, rows, size, cache_dir)


def identity_split(arr: FaceArray, sources: list[str], source: str, n_val_ids: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``n_val_ids`` whole identities of ``source``; returns (train indices, val indices)."""
    src = np.array(sources)
    cand = np.unique(arr.labels[(src == source) & (arr.labels >= 0)])
    rng = np.random.default_rng(seed)
    val_ids = rng.choice(cand, size=min(n_val_ids, len(cand)), replace=False)
    is_val = np.isin(arr.labels, val_ids) & (src == source)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def hold_out(arr: FaceArray, sources: list[str], source: str, n_val_ids: int, seed: int
             ) -> tuple[FaceArray, FaceArray]:
    """(train, val) by :func:`identity_split`. A held-out person's faces from another source stay in training but
    lose their label: identity labels are shared across sources (celeba-small holds faces of celeba-wild people),
    and a label there would train a margin-loss class on a validation identity. The faces themselves stay, so the
    pool, its cached teacher targets and its neighbours are the same as before."""
    tr, va = identity_split(arr, sources, source, n_val_ids, seed)
    train, val = arr.subset(tr), arr.subset(va)
    train.labels[np.isin(train.labels, np.unique(val.labels))] = -1  # subset's labels are a copy
    return train, val
