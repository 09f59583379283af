"""FAISS gallery index: which enrolled person does a face embedding belong to?

The store is the truth; this index is a cache rebuilt from it at start-up and updated in place on enroll/delete.
Search is exact inner product (``IndexFlatIP``) over L2-normalised float32 vectors, i.e. cosine similarity;
past ``hnsw_above`` templates the index switches to HNSW (approximate, logarithmic search). Building a graph takes
seconds to minutes, so it is built on a background thread while the current index keeps answering (exact search
meanwhile), then swapped in with the changes made during the build applied. Removing from HNSW leaves tombstones
filtered out at search time (faiss cannot delete graph nodes); past half tombstones the graph is rebuilt the same
way.

Decision per face (:meth:`GalleryIndex.decide`): the best template of each person stands for that person;
accept the best person when its similarity is at least ``threshold`` and beats the best *other* person by
``margin``; otherwise the face is unknown.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

NO_SIMILARITY = -1.0  # reported when there is no candidate (empty gallery, or no second person)
FIRST_K = 32  # templates fetched per query before widening the search for a runner-up of another person
HNSW_M = 32  # graph degree: recall vs memory (M=16 lost recall on clustered face-like data)
HNSW_EF_CONSTRUCTION = 80  # build effort: 40 lost recall at 100k (0.95 vs 0.99 at efSearch 64); built in the background
HNSW_EF_SEARCH = 64  # recall vs latency at search time (docs/BENCHMARKS.md: recall@1 against exact search)
COMPACT_TOMBSTONE_FRACTION = 0.5  # rebuild the HNSW graph when this fraction of its nodes is deleted
INDEX_FORMAT = 1


@dataclass(frozen=True)
class Match:
    """Decision for one face. ``person_id``/``name`` are None for an unknown face (``accepted`` False).
    ``similarity`` is the best person's cosine similarity, ``runner_up`` the best other person's
    (``NO_SIMILARITY`` when there is none). ``candidate_id`` is the best person even when not accepted,
    so a caller can say whom an unknown face resembles."""

    person_id: int | None
    name: str | None
    similarity: float
    runner_up: float
    accepted: bool
    candidate_id: int | None = None

    @property
    def margin(self) -> float:
        return self.similarity - self.runner_up


@dataclass(frozen=True)
class Hits:
    """Top-k templates per query: ``similarities`` float32 [N, k] (descending), ``template_ids`` and
    ``person_ids`` int64 [N, k]; slots beyond the gallery size hold -1 ids and ``NO_SIMILARITY``."""

    similarities: np.ndarray
    template_ids: np.ndarray
    person_ids: np.ndarray


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as a new C-contiguous float32 array."""
    x = np.array(x, dtype=np.float32, copy=True, order="C")
    if x.ndim == 1:
        x = x[None]
    n = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, n, out=x, where=n > 0)
    return x


def _ids(x: Iterable[int]) -> np.ndarray:
    if not isinstance(x, np.ndarray | list | tuple):
        x = list(x)
    return np.asarray(x, np.int64).reshape(-1)


class GalleryIndex:
    """Templates (id, person id, embedding) searchable by cosine similarity. Thread-safe."""

    def __init__(
        self,
        dim: int,
        hnsw_above: int = 50_000,
        names: Mapping[int, str] | None = None,
        ef_search: int = HNSW_EF_SEARCH,
        hnsw_m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        background: bool = True,
        on_rebuilt: Callable[[], None] | None = None,
    ) -> None:
        """``background``: build HNSW graphs on a thread (False: inside the call that needs one, e.g. for a
        benchmark). ``on_rebuilt`` is called (on that thread) after a new graph was swapped in."""
        if dim <= 0:
            raise ValueError(f"embedding dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.hnsw_above = int(hnsw_above)
        self.ef_search = int(ef_search)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.names: dict[int, str] = dict(names or {})
        self.background = background
        self.on_rebuilt = on_rebuilt
        self._lock = threading.RLock()
        self._epoch = 0  # bumped when the whole content is replaced: a graph built from older content is dropped
        self._builder: threading.Thread | None = None
        self._clear()

    # ---------------------------------------------------------------- state
    def _clear(self) -> None:
        self._index: faiss.Index = faiss.IndexFlatIP(self.dim)
        self._tids = np.zeros(0, np.int64)  # template id at each faiss position
        self._pids = np.zeros(0, np.int64)  # person id at each faiss position
        self._alive = np.zeros(0, bool)  # False: tombstone (HNSW only)
        self._counts: dict[int, int] = {}  # live templates per person
        self._n = 0  # live templates (kept, not summed: it is read on every search)
        self._params: faiss.SearchParameters | None = None

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSWFlat) else "exact"

    def __len__(self) -> int:
        with self._lock:
            return self._n

    @property
    def person_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._counts)

    def template_ids(self) -> np.ndarray:
        with self._lock:
            return self._tids[self._alive].copy()

    def templates_of(self, person_id: int) -> np.ndarray:
        with self._lock:
            return self._tids[self._alive & (self._pids == person_id)].copy()

    def set_name(self, person_id: int, name: str) -> None:
        with self._lock:
            self.names[int(person_id)] = name

    # ---------------------------------------------------------------- updates
    def add(self, template_ids: Iterable[int], person_ids: Iterable[int], embeddings: np.ndarray) -> None:
        """Add templates; embeddings float32 [N, dim] (normalised here). Template ids must be new."""
        tids, pids = _ids(template_ids), _ids(person_ids)
        emb = np.asarray(embeddings, np.float32)
        if emb.size == 0:
            emb = np.zeros((0, self.dim), np.float32)
        if emb.ndim == 1:
            emb = emb[None]
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must be [N, {self.dim}], got shape {emb.shape}")
        emb = normalize(emb)
        if not (len(tids) == len(pids) == len(emb)):
            raise ValueError(f"add: {len(tids)} template ids, {len(pids)} person ids, {len(emb)} embeddings")
        if len(tids) == 0:
            return
        with self._lock:
            if len(np.unique(tids)) != len(tids) or np.isin(tids, self._tids[self._alive]).any():
                raise ValueError("add: template ids must be unique and not already in the index")
            self._index.add(emb)
            self._tids = np.concatenate([self._tids, tids])
            self._pids = np.concatenate([self._pids, pids])
            self._alive = np.concatenate([self._alive, np.ones(len(tids), bool)])
            for p in pids.tolist():
                self._counts[p] = self._counts.get(p, 0) + 1
            self._n += len(tids)
            self._params = None
            if self.kind == "exact" and len(self) > self.hnsw_above:
                self._schedule_hnsw()

    def remove_templates(self, template_ids: Iterable[int]) -> int:
        """Remove templates by id; returns how many were in the index."""
        tids = _ids(template_ids)
        with self._lock:
            return self._remove_mask(self._alive & np.isin(self._tids, tids))

    def remove_person(self, person_id: int) -> int:
        """Remove every template of a person (and its name); returns how many."""
        with self._lock:
            n = self._remove_mask(self._alive & (self._pids == int(person_id)))
            self.names.pop(int(person_id), None)
            return n

    def _remove_mask(self, mask: np.ndarray) -> int:
        n = int(mask.sum())
        if n == 0:
            return 0
        self._n -= n
        for p, c in zip(*np.unique(self._pids[mask], return_counts=True), strict=True):
            left = self._counts[int(p)] - int(c)
            if left:
                self._counts[int(p)] = left
            else:
                del self._counts[int(p)]
        if self.kind == "exact":
            pos = np.flatnonzero(mask).astype(np.int64)
            self._index.remove_ids(faiss.IDSelectorBatch(pos))  # compacts, keeping order
            keep = ~mask
            self._tids, self._pids, self._alive = self._tids[keep], self._pids[keep], self._alive[keep]
        else:
            self._alive[mask] = False
            dead = int((~self._alive).sum())
            if len(self) <= self.hnsw_above:
                self._rebuild_exact()  # small again: a flat index is quick to fill
            elif dead > COMPACT_TOMBSTONE_FRACTION * len(self._alive):
                self._schedule_hnsw()
        self._params = None
        return n

    def _vectors(self) -> np.ndarray:
        """All stored vectors (tombstones included), float32 [ntotal, dim]."""
        if self._index.ntotal == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._index.reconstruct_n(0, self._index.ntotal)

    def _rebuild_exact(self) -> None:
        keep = self._alive
        self._load_arrays(self._tids[keep], self._pids[keep], self._vectors()[keep], hnsw=False)

    def _new_hnsw(self) -> faiss.IndexHNSWFlat:
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _load_arrays(self, tids: np.ndarray, pids: np.ndarray, emb: np.ndarray, hnsw: bool) -> None:
        index = self._new_hnsw() if hnsw else faiss.IndexFlatIP(self.dim)
        if len(emb):
            index.add(np.ascontiguousarray(emb, np.float32))
        self._index = index
        self._tids, self._pids = tids.astype(np.int64), pids.astype(np.int64)
        self._alive = np.ones(len(tids), bool)
        u, c = np.unique(self._pids, return_counts=True)
        self._counts = dict(zip(u.tolist(), c.tolist(), strict=True))
        self._n = len(tids)
        self._params = None

    # ---------------------------------------------------------------- HNSW graph building
    @property
    def building(self) -> bool:
        """A graph is being built (searches are answered by the current index meanwhile)."""
        b = self._builder
        return b is not None and b.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for a graph being built; True when none is pending."""
        b = self._builder
        if b is not None:
            b.join(timeout)
        return not self.building

    def _schedule_hnsw(self) -> None:
        """(Under the lock.) Build a graph of the live templates and swap it in; on a thread unless
        ``background`` is off. A build already running picks up later changes when it swaps."""
        if self.building:
            return
        keep = self._alive
        snapshot = (self._epoch, self._tids[keep].copy(), self._pids[keep].copy(), self._vectors()[keep])
        if not self.background:
            self._build_and_swap(*snapshot)
            return
        self._builder = threading.Thread(target=self._build_and_swap, args=snapshot, name="gallery-hnsw",
                                         daemon=True)
        self._builder.start()

    def _build_and_swap(self, epoch: int, tids: np.ndarray, pids: np.ndarray, emb: np.ndarray) -> None:
        log.info("building an HNSW gallery index over %d templates", len(tids))
        index = self._new_hnsw()
        if len(emb):
            index.add(np.ascontiguousarray(emb))
        with self._lock:
            if epoch != self._epoch or len(self) <= self.hnsw_above:
                return  # replaced or shrunk meanwhile
            # apply what changed during the build: removed templates become tombstones, new ones are added
            cur = self._alive
            cur_tids, cur_pids = self._tids[cur], self._pids[cur]
            alive = np.isin(tids, cur_tids)
            new = ~np.isin(cur_tids, tids)
            if new.any():
                pos = np.flatnonzero(cur)[new]
                index.add(np.stack([self._index.reconstruct(int(i)) for i in pos]))
            self._index = index
            self._tids = np.concatenate([tids, cur_tids[new]])
            self._pids = np.concatenate([pids, cur_pids[new]])
            self._alive = np.concatenate([alive, np.ones(int(new.sum()), bool)])
            self._params = None
        log.info("HNSW gallery index ready")
        if self.on_rebuilt is not None:
            self.on_rebuilt()

    def reset(self, template_ids: Iterable[int], person_ids: Iterable[int], embeddings: np.ndarray,
              names: Mapping[int, str] | None = None) -> None:
        """Replace the whole content (start-up rebuild from the store)."""
        tids, pids = _ids(template_ids), _ids(person_ids)
        emb = normalize(embeddings) if len(tids) else np.zeros((0, self.dim), np.float32)
        if emb.shape != (len(tids), self.dim) or len(pids) != len(tids):
            raise ValueError(f"reset: {len(tids)} ids, {len(pids)} person ids, embeddings {emb.shape}")
        if len(np.unique(tids)) != len(tids):
            raise ValueError("reset: template ids must be unique")
        with self._lock:
            self._epoch += 1
            self._load_arrays(tids, pids, emb, hnsw=False)
            if names is not None:
                self.names = dict(names)
            if len(tids) > self.hnsw_above:
                self._schedule_hnsw()

    # ---------------------------------------------------------------- search
    def _search_params(self) -> faiss.SearchParameters | None:
        if self.kind != "hnsw":
            return None
        if self._params is None:
            p = faiss.SearchParametersHNSW()
            p.efSearch = self.ef_search
            if not self._alive.all():
                bitmap = np.packbits(self._alive, bitorder="little")
                sel = faiss.IDSelectorBitmap(len(self._alive), faiss.swig_ptr(bitmap))
                p.sel = sel
                p._keep = (bitmap, sel)  # the selector points into these: keep them alive with the params
            self._params = p
        return self._params

    def search(self, queries: np.ndarray, k: int = 1) -> Hits:
        """The ``k`` most similar templates of each query (float32 [N, dim], normalised here)."""
        q = self._queries(queries)
        with self._lock:
            return self._search(q, k)

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        a = np.asarray(queries, np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or (a.size and a.shape[1] != self.dim):
            raise ValueError(f"queries must be [N, {self.dim}], got shape {np.asarray(queries).shape}")
        return normalize(a) if len(a) else np.zeros((0, self.dim), np.float32)

    def _search(self, q: np.ndarray, k: int) -> Hits:
        n = len(q)
        k = max(1, int(k))
        live = len(self)
        kk = min(k, live)
        sims = np.full((n, k), NO_SIMILARITY, np.float32)
        tids = np.full((n, k), -1, np.int64)
        pids = np.full((n, k), -1, np.int64)
        if n == 0 or kk == 0:
            return Hits(sims, tids, pids)
        params = self._search_params()
        d, i = self._index.search(q, kk, params=params) if params is not None else self._index.search(q, kk)
        ok = i >= 0
        sims[:, :kk] = np.where(ok, d, NO_SIMILARITY)
        tids[:, :kk] = np.where(ok, self._tids[np.maximum(i, 0)], -1)
        pids[:, :kk] = np.where(ok, self._pids[np.maximum(i, 0)], -1)
        return Hits(sims, tids, pids)

    # ---------------------------------------------------------------- decision
    def decide(self, queries: np.ndarray, threshold: float, margin: float,
               names: Mapping[int, str] | None = None) -> list[Match]:
        """One :class:`Match` per query row (float32 [N, dim]); see the module docstring for the rule."""
        q = self._queries(queries)
        with self._lock:
            names = self.names if names is None else names
            people = len(self._counts)
            live = len(self)
            best = np.full(len(q), NO_SIMILARITY, np.float32)
            best_pid = np.full(len(q), -1, np.int64)
            second = np.full(len(q), NO_SIMILARITY, np.float32)
            todo = np.arange(len(q))
            k = min(FIRST_K, live)
            while len(todo) and live:
                hits = self._search(q[todo], k)
                found = np.zeros(len(todo), bool)
                for r, row in enumerate(todo):
                    pr = hits.person_ids[r]
                    best[row], best_pid[row] = hits.similarities[r, 0], pr[0]
                    other = np.flatnonzero((pr != pr[0]) & (pr >= 0))
                    if len(other):
                        second[row] = hits.similarities[r, other[0]]
                        found[r] = True
                    elif people <= 1 or k >= live:
                        found[r] = True  # there is no other person to find
                todo = todo[~found]
                k = min(k * 4, live)
        out: list[Match] = []
        for s, pid, s2 in zip(best.tolist(), best_pid.tolist(), second.tolist(), strict=True):
            cand = int(pid) if pid >= 0 else None
            ok = cand is not None and s >= threshold and s - s2 >= margin
            out.append(Match(
                person_id=cand if ok else None,
                name=names.get(cand) if ok and cand is not None else None,
                similarity=float(s),
                runner_up=float(s2),
                accepted=bool(ok),
                candidate_id=cand,
            ))
        return out

    # ---------------------------------------------------------------- persistence (a cache only)
    def save(self, path: str | Path, fingerprint: str) -> None:
        """Write the index to ``path`` and its ids to ``path.npz``, atomically, tagged with the store's
        fingerprint."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        side = _sidecar(path)
        tmp = path.with_name(path.name + ".tmp")
        side_tmp = side.with_name(side.name + ".tmp.npz")
        with self._lock:
            faiss.write_index(self._index, str(tmp))
            meta = json.dumps({"format": INDEX_FORMAT, "dim": self.dim, "kind": self.kind,
                               "fingerprint": fingerprint})
            np.savez(side_tmp, meta=np.array(meta), template_ids=self._tids, person_ids=self._pids,
                     alive=self._alive)
        os.replace(tmp, path)
        os.replace(side_tmp, side)

    def load(self, path: str | Path, fingerprint: str) -> bool:
        """Replace the content with a saved index if it is intact and matches ``fingerprint``; False otherwise
        (missing, corrupt, stale or another dimension): the caller then rebuilds from the store."""
        path = Path(path)
        try:
            with np.load(_sidecar(path), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != INDEX_FORMAT or meta.get("dim") != self.dim:
                    return False
                if meta.get("fingerprint") != fingerprint:
                    return False
                tids, pids, alive = z["template_ids"].astype(np.int64), z["person_ids"].astype(np.int64), \
                    z["alive"].astype(bool)
            index = faiss.read_index(str(path))
            if index.d != self.dim or not (index.ntotal == len(tids) == len(pids) == len(alive)):
                return False
            if not isinstance(index, faiss.IndexFlatIP | faiss.IndexHNSWFlat):
                return False
            if isinstance(index, faiss.IndexFlatIP) and not alive.all():
                return False
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError) as exc:
            log.info("gallery index file %s not usable (%s); rebuilding from the store", path, exc)
            return False
        with self._lock:
            self._epoch += 1
            self._index = index
            if isinstance(index, faiss.IndexHNSWFlat):
                index.hnsw.efSearch = self.ef_search
            self._tids, self._pids, self._alive = tids, pids, alive
            u, c = np.unique(pids[alive], return_counts=True)
            self._counts = dict(zip(u.tolist(), c.tolist(), strict=True))
            self._n = int(alive.sum())
            self._params = None
        return True


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".npz")
