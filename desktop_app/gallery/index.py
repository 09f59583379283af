"""FAISS gallery index: which enrolled person does a face embedding belong to?

The store is the truth; this index is a cache rebuilt from it at start-up and updated in place on enroll/delete.
Every template is kept in an exact inner-product index (``IndexFlatIP``) over L2-normalised float32 vectors, i.e.
cosine similarity, and small galleries are searched exhaustively there. Past ``hnsw_above`` templates a graph
narrows the search first: an HNSW graph over one node per *person* (the normalised mean of their templates,
projected onto the ``GRAPH_DIM`` directions that carry the centroids' energy) yields the ``GRAPH_PERSONS`` persons
nearest the query, and all templates of those persons are then scored exactly. A person-level graph has a fifth of
the nodes of a template-level one (5 templates each), a centroid averages out the noise of single photos, and
the projection keeps the graph's vectors at a quarter of their size; the exact re-rank gives exact similarities
and the exact best template of every candidate person. docs/BENCHMARKS.md, "Gallery": at 1 M templates (200 k
people) recall@1 against exhaustive search is 0.988-0.991 at 1.7-1.9 ms per query (two data draws; 0.990-0.992 at
1.5-2.0 ms with the second search below the threshold, described next), against 0.70 at
1.3 ms for an HNSW graph over templates, and the graph builds in 4 minutes instead of 14. The runner-up person
of :meth:`decide` is the best other person among the proposed ones, so it is never higher than exhaustive
search's and lower only when the graph did not propose the true runner-up (then a margin looks larger than it
is). A face whose best proposed person stays below the recognition threshold (it would be called unknown) is
searched a second time with four times the search effort and twice the persons (``retry_below``); only such
faces pay for it (strangers mostly). At 1 M that is 0.2-0.3 % of genuine queries, and it turns 3-4 of the first
search's 19-24 misses (of 2000) into hits; most of the remaining misses are faces that exhaustive search itself
gives to another person.

Building a graph takes seconds to minutes, so it is built on a background thread from a snapshot while the
current index keeps answering (exhaustive search meanwhile), then swapped in with the changes made during the
build applied. Afterwards a new person becomes a new node at once; a person whose templates change keeps their
node (its centroid is then out of date, the exact re-rank still scores their current templates); a removed
person's node is masked out. When a quarter of the nodes are out of date or removed, the graph is rebuilt the
same way.

Decision per face (:meth:`GalleryIndex.decide`): each person gets one score, by ``rule``: ``best`` (the best of
their templates), ``centroid`` (the similarity to the normalised mean of their templates) or ``best_or_centroid``
(the larger); accept the best-scoring person when the score is at least ``threshold`` and beats the best *other*
person's by ``margin``; otherwise the face is unknown. The rule belongs to the model like its threshold (its
manifest entry; docs/CALIBRATION.md has the measurements).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from desktop_app.config import DECISION_RULES as RULES  # how a person's templates make one score (docstring)

log = logging.getLogger(__name__)

NO_SIMILARITY = -1.0  # reported when there is no candidate (empty gallery, or no second person)
FIRST_K = 32  # templates fetched per query before widening the search for a runner-up of another person
# The person graph (docs/BENCHMARKS.md, "Gallery"): tuned on 1 M synthetic templates shaped like the shipped
# model's embeddings (200 k people x 5), one search thread.
HNSW_M = 80  # graph degree: 1 M recall@1 0.988-0.991 at 1.7-1.9 ms (0.990-0.992 with the retry below); M 64: 0.988
# at 1.6; M 96: 0.990 at 2.1
HNSW_EF_CONSTRUCTION = 192  # build effort (2 M + 32); 320 with M 64 gained no recall and doubled the build
HNSW_EF_SEARCH = 128  # recall vs latency at search time
GRAPH_DIM = 128  # projection: person centroids shaped like the shipped model's keep 98.5 % of their energy
GRAPH_PERSONS = 16  # persons taken from the graph per query; all their templates are scored exactly
GRAPH_SQ8 = False  # node vectors as 8-bit scalar-quantized codes instead of float32
# A query whose best proposed template stays below ``retry_below`` (the recognition threshold: the face would be
# called unknown) is searched again with RETRY_EF_FACTOR x efSearch and twice the persons. Only such queries pay for
# it: enrolled faces keep their median latency, strangers pay most (100 k: 2.3 instead of 0.8 ms; docs/BENCHMARKS.md).
RETRY_EF_FACTOR = 4
STALE_FRACTION = 0.25  # rebuild the graph when this fraction of its nodes is out of date or removed
INDEX_FORMAT = 2


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


def person_centroids(pids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique person ids, the normalised mean of each person's rows of ``vecs``). One vectorised pass per
    template rank (a person's first, second, ... template), so the work is linear without ``np.add.at``."""
    people, inv = np.unique(pids, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    group = inv[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, np.int64)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    sums = np.zeros((len(people), vecs.shape[1]), np.float32)
    for j in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = rank == j  # at most one row per person: no repeated indices in the fancy-indexed add
        sums[group[sel]] += vecs[order[sel]]
    return people, normalize(sums)


def projection(centroids: np.ndarray, dims: int) -> np.ndarray | None:
    """[D, dims] orthonormal basis of the ``dims`` directions of largest energy (uncentred: inner products of
    projected vectors approximate the originals), or None when projecting would not shrink anything."""
    d = centroids.shape[1]
    if dims <= 0 or dims >= d or len(centroids) < 2:
        return None
    gram = centroids.T.astype(np.float64) @ centroids.astype(np.float64)
    _, vecs = np.linalg.eigh(gram)  # ascending eigenvalues
    return np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)


class PersonGraph:
    """An HNSW graph with one node per person over projected centroids. ``node_pids[i]`` is node i's person;
    ``alive[i]`` False once that person was removed; ``stale`` persons changed after their centroid was taken."""

    def __init__(self, index: faiss.IndexHNSW, proj: np.ndarray | None, node_pids: np.ndarray,
                 alive: np.ndarray | None = None, stale: Iterable[int] = ()) -> None:
        self.index = index
        self.proj = proj
        self.node_pids = node_pids.astype(np.int64)
        self.alive = np.ones(len(node_pids), bool) if alive is None else alive.astype(bool)
        self.stale: set[int] = {int(p) for p in stale}
        self.node_of = {int(p): i for i, p in enumerate(self.node_pids.tolist())}
        self._params: dict[int, faiss.SearchParametersHNSW] = {}  # per efSearch; cleared when the mask changes

    def project(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x if self.proj is None else x @ self.proj, np.float32)

    def add_person(self, pid: int, centroid: np.ndarray) -> None:
        self.index.add(self.project(centroid[None]))
        self.node_of[int(pid)] = len(self.node_pids)
        self.node_pids = np.append(self.node_pids, np.int64(pid))
        self.alive = np.append(self.alive, True)
        self._params.clear()

    def has_node(self, pid: int) -> bool:
        """The person has a live node (a removed person's node stays, masked, until the next build)."""
        node = self.node_of.get(int(pid))
        return node is not None and bool(self.alive[node])

    def touch(self, pid: int, gone: bool) -> None:
        node = self.node_of.get(int(pid))
        if node is None:
            return
        if gone:
            self.alive[node] = False
            self.stale.discard(int(pid))
            self._params.clear()
        else:
            self.stale.add(int(pid))

    @property
    def worn(self) -> float:
        """Fraction of nodes removed or out of date."""
        return (len(self.stale) + int((~self.alive).sum())) / max(1, len(self.alive))

    def persons(self, q: np.ndarray, k: int, ef: int) -> np.ndarray:
        """Person ids of the ``k`` nodes nearest each query row, [N, k] (-1 where there are fewer)."""
        p = self._params.get(ef)
        if p is None:
            if len(self._params) > 4:
                self._params.clear()
            p = faiss.SearchParametersHNSW()
            p.efSearch = ef
            if not self.alive.all():
                bitmap = np.packbits(self.alive, bitorder="little")
                sel = faiss.IDSelectorBitmap(len(self.alive), faiss.swig_ptr(bitmap))
                p.sel = sel
                p._keep = (bitmap, sel)  # the selector points into these: keep them alive with the params
            self._params[ef] = p
        _, nodes = self.index.search(self.project(q), k, params=p)
        return np.where(nodes >= 0, self.node_pids[np.maximum(nodes, 0)], -1)


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
        graph_dim: int = GRAPH_DIM,
        graph_sq8: bool = GRAPH_SQ8,
        graph_persons: int = GRAPH_PERSONS,
        retry_below: float | None = None,
    ) -> None:
        """``background``: build person graphs on a thread (False: inside the call that needs one, e.g. for a
        benchmark). ``on_rebuilt`` is called (on that thread) after a new graph was swapped in. ``retry_below``:
        in graph mode, :meth:`search` searches again, harder, for a query whose best similarity stays below it, and
        :meth:`decide` for a face whose best stays below its threshold (the face would be unknown); None: never."""
        if dim <= 0:
            raise ValueError(f"embedding dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.hnsw_above = int(hnsw_above)
        self.ef_search = int(ef_search)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.graph_dim = int(graph_dim)
        self.graph_sq8 = bool(graph_sq8)
        self.graph_persons = max(2, int(graph_persons))
        self.retry_below = None if retry_below is None else float(retry_below)
        self.names: dict[int, str] = dict(names or {})
        self.background = background
        self.on_rebuilt = on_rebuilt
        self._lock = threading.RLock()
        self._epoch = 0  # bumped when the whole content is replaced: a graph built from older content is dropped
        self._builder: threading.Thread | None = None
        self._clear()

    # ---------------------------------------------------------------- state
    def _clear(self) -> None:
        self._flat = faiss.IndexFlatIP(self.dim)  # every live template, in insertion order
        self._tids = np.zeros(0, np.int64)  # template id of each row of the flat index
        self._pids = np.zeros(0, np.int64)  # person id of each row
        self._counts: dict[int, int] = {}  # live templates per person
        self._graph: PersonGraph | None = None
        self._touched: set[int] = set()  # persons changed while a graph is being built from a snapshot
        self._rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # rows grouped by person (lazy)
        self._centroids: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32))
        self._centroids_of: object = None  # the ``_rows`` the centroid table was taken with (a change resets both)

    @property
    def kind(self) -> str:
        return "hnsw" if self._graph is not None else "exact"

    def __len__(self) -> int:
        with self._lock:
            return len(self._tids)

    @property
    def person_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._counts)

    def template_ids(self) -> np.ndarray:
        with self._lock:
            return self._tids.copy()

    def templates_of(self, person_id: int) -> np.ndarray:
        with self._lock:
            return self._tids[self._pids == person_id].copy()

    def set_name(self, person_id: int, name: str) -> None:
        with self._lock:
            self.names[int(person_id)] = name

    def _vectors(self) -> np.ndarray:
        """A view of the flat index's vectors, float32 [n, dim]; valid until the index changes (hold the lock)."""
        n = self._flat.ntotal
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        return faiss.rev_swig_ptr(self._flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _rows_of(self, pids: np.ndarray) -> np.ndarray:
        """Rows of the flat index holding templates of any of ``pids`` (ids not in the index are skipped)."""
        if self._rows is None:
            order = np.argsort(self._pids, kind="stable")
            people, starts = np.unique(self._pids[order], return_index=True)
            self._rows = (order, people, np.r_[starts, len(order)])
        order, people, bounds = self._rows
        if len(people) == 0 or len(pids) == 0:
            return np.zeros(0, np.int64)
        pos = np.searchsorted(people, pids)
        pos = pos[(pos < len(people)) & (people[np.minimum(pos, len(people) - 1)] == pids)]
        if len(pos) == 0:
            return np.zeros(0, np.int64)
        # slices beat a vectorised range expansion for the 16-odd persons of a query (numpy call overhead)
        return np.concatenate([order[bounds[i]:bounds[i + 1]] for i in pos.tolist()])

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
            if len(np.unique(tids)) != len(tids) or np.isin(tids, self._tids).any():
                raise ValueError("add: template ids must be unique and not already in the index")
            self._flat.add(emb)
            self._tids = np.concatenate([self._tids, tids])
            self._pids = np.concatenate([self._pids, pids])
            self._rows = None
            for p in pids.tolist():
                self._counts[p] = self._counts.get(p, 0) + 1
            changed = np.unique(pids).tolist()
            self._touched.update(changed)
            if self._graph is not None:  # a new person's templates are all in this call: centroid from them
                self._update_graph(self._graph, changed, lambda new: (pids, emb))
            self._maybe_rebuild()

    def remove_templates(self, template_ids: Iterable[int]) -> int:
        """Remove templates by id; returns how many were in the index."""
        tids = _ids(template_ids)
        with self._lock:
            return self._remove_mask(np.isin(self._tids, tids))

    def remove_person(self, person_id: int) -> int:
        """Remove every template of a person (and its name); returns how many."""
        with self._lock:
            n = self._remove_mask(self._pids == int(person_id))
            self.names.pop(int(person_id), None)
            return n

    def _remove_mask(self, mask: np.ndarray) -> int:
        n = int(mask.sum())
        if n == 0:
            return 0
        for p, c in zip(*np.unique(self._pids[mask], return_counts=True), strict=True):
            left = self._counts[int(p)] - int(c)
            if left:
                self._counts[int(p)] = left
            else:
                del self._counts[int(p)]
            self._touched.add(int(p))
            if self._graph is not None:
                self._graph.touch(int(p), gone=not left)
        pos = np.flatnonzero(mask).astype(np.int64)
        self._flat.remove_ids(faiss.IDSelectorBatch(pos))  # compacts, keeping order
        keep = ~mask
        self._tids, self._pids = self._tids[keep], self._pids[keep]
        self._rows = None
        if len(self) <= self.hnsw_above:
            self._graph = None  # small again: exhaustive search
        self._maybe_rebuild()
        return n

    def _update_graph(self, graph: PersonGraph, persons: Iterable[int],
                      templates_of: Callable[[list[int]], tuple[np.ndarray, np.ndarray]]) -> None:
        """(Under the lock.) Bring ``graph`` up to date for changed ``persons``: one without a live node becomes a
        node (centroid of the (person ids, vectors) ``templates_of`` gives for them), a removed one is masked, the
        others are marked out of date."""
        persons = list(persons)
        new = [p for p in persons if p in self._counts and not graph.has_node(p)]
        if new:
            pids, vecs = templates_of(new)
            mine = np.isin(pids, new)
            people, cents = person_centroids(pids[mine], vecs[mine])
            for p, c in zip(people.tolist(), cents, strict=True):
                graph.add_person(p, c)
        for p in persons:
            if p not in new:
                graph.touch(p, gone=p not in self._counts)

    def _templates_of_persons(self, persons: list[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows_of(np.asarray(persons, np.int64))
        return self._pids[rows], self._vectors()[rows]

    def _maybe_rebuild(self) -> None:
        """(Under the lock.) Start a graph build when the gallery is large and has no graph or a worn one."""
        if len(self) <= self.hnsw_above:
            return
        if self._graph is None or self._graph.worn > STALE_FRACTION:
            self._schedule_graph()

    # ---------------------------------------------------------------- person graph building
    @property
    def building(self) -> bool:
        """A graph is being built (searches are answered by the current index meanwhile)."""
        b = self._builder
        return b is not None and b.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for a graph being built (and for one a build may start after it); True when none is pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (b := self._builder) is not None and b.is_alive():
            b.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                break
        return not self.building

    def _new_hnsw(self, dim: int | None = None) -> faiss.IndexHNSW:
        d = dim or self.dim
        if self.graph_sq8:  # 8-bit node vectors: a quarter of the memory read per hop; trained before adding
            index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _schedule_graph(self) -> None:
        """(Under the lock.) Build a person graph of the current templates and swap it in; on a thread unless
        ``background`` is off. A build already running picks up later changes when it swaps."""
        if self.building and self._builder is not threading.current_thread():
            return
        self._touched = set()
        snapshot = (self._epoch, self._pids.copy(), self._vectors().copy())
        if not self.background:
            self._build_and_swap(*snapshot)
            return
        self._builder = threading.Thread(target=self._build_and_swap, args=snapshot, name="gallery-hnsw",
                                         daemon=True)
        self._builder.start()

    def _build_graph(self, pids: np.ndarray, vecs: np.ndarray) -> PersonGraph:
        people, cents = person_centroids(pids, vecs)
        proj = projection(cents, self.graph_dim)
        index = self._new_hnsw(proj.shape[1] if proj is not None else self.dim)
        graph = PersonGraph(index, proj, people)
        if len(cents):
            x = graph.project(cents)
            if not index.is_trained:
                index.train(x)
            index.add(x)
        return graph

    def _build_and_swap(self, epoch: int, pids: np.ndarray, vecs: np.ndarray) -> None:
        log.info("building the person graph over %d templates", len(pids))
        graph = self._build_graph(pids, vecs)
        with self._lock:
            if epoch != self._epoch:
                self._maybe_rebuild()  # the content was replaced meanwhile: build again for it if it is large
                return
            if len(self) <= self.hnsw_above:
                return  # shrunk meanwhile
            # apply what changed during the build: new persons become nodes, changed ones are out of date,
            # removed ones are masked
            self._update_graph(graph, sorted(self._touched), self._templates_of_persons)
            self._graph = graph
            self._touched = set()
        log.info("person graph ready: %d persons", len(graph.node_pids))
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
            self._clear()
            if len(emb):
                self._flat.add(emb)
            self._tids, self._pids = tids, pids
            self._counts = _counts(pids)
            if names is not None:
                self.names = dict(names)
            self._maybe_rebuild()

    # ---------------------------------------------------------------- search
    def search(self, queries: np.ndarray, k: int = 1) -> Hits:
        """The ``k`` most similar templates of each query (float32 [N, dim], normalised here). With a person
        graph: among the templates of the persons the graph proposes."""
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

    def _candidates(self, q: np.ndarray, retry_below: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(Graph mode.) Per query: rows of the proposed persons' templates and their exact similarities; queries
        whose best stays below ``retry_below`` are proposed persons again by a harder graph search."""
        g = self._graph
        assert g is not None
        nodes = len(g.node_pids)
        persons = g.persons(q, min(self.graph_persons, nodes), max(self.ef_search, self.graph_persons))
        out = self._score(q, persons)
        if retry_below is not None:
            weak = [r for r, (_, s) in enumerate(out) if not len(s) or float(s.max()) < retry_below]
            if weak:
                k = min(2 * self.graph_persons, nodes)
                again = self._score(q[weak], g.persons(q[weak], k, max(RETRY_EF_FACTOR * self.ef_search, k)))
                for r, cand in zip(weak, again, strict=True):
                    out[r] = cand
        return out

    def _score(self, q: np.ndarray, persons: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        vecs = self._vectors()
        out = []
        for r in range(len(q)):
            rows = self._rows_of(persons[r][persons[r] >= 0])  # one live node per person: no duplicates
            out.append((rows, vecs[rows] @ q[r] if len(rows) else np.zeros(0, np.float32)))
        return out

    def _search(self, q: np.ndarray, k: int) -> Hits:
        n = len(q)
        k = max(1, int(k))
        kk = min(k, len(self))
        sims = np.full((n, k), NO_SIMILARITY, np.float32)
        tids = np.full((n, k), -1, np.int64)
        pids = np.full((n, k), -1, np.int64)
        if n == 0 or kk == 0:
            return Hits(sims, tids, pids)
        if self._graph is None:
            d, i = self._flat.search(q, kk)
            ok = i >= 0
            sims[:, :kk] = np.where(ok, d, NO_SIMILARITY)
            tids[:, :kk] = np.where(ok, self._tids[np.maximum(i, 0)], -1)
            pids[:, :kk] = np.where(ok, self._pids[np.maximum(i, 0)], -1)
            return Hits(sims, tids, pids)
        for r, (rows, s) in enumerate(self._candidates(q, self.retry_below)):
            if kk == 1:
                top = np.argmax(s, keepdims=True) if len(s) else np.zeros(0, np.int64)
            else:
                top = np.argsort(-s, kind="stable")[:kk]
            sims[r, :len(top)] = s[top]
            tids[r, :len(top)] = self._tids[rows[top]]
            pids[r, :len(top)] = self._pids[rows[top]]
        return Hits(sims, tids, pids)

    # ---------------------------------------------------------------- decision
    def decide(self, queries: np.ndarray, threshold: float, margin: float,
               names: Mapping[int, str] | None = None, rule: str = "best") -> list[Match]:
        """One :class:`Match` per query row (float32 [N, dim]); see the module docstring for the rule."""
        if rule not in RULES:
            raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(RULES)}")
        q = self._queries(queries)
        with self._lock:
            names = self.names if names is None else names
            best = np.full(len(q), NO_SIMILARITY, np.float32)
            best_pid = np.full(len(q), -1, np.int64)
            second = np.full(len(q), NO_SIMILARITY, np.float32)
            if rule != "best" and len(q):
                self._decide_by_person(q, rule, None if self.retry_below is None else threshold, best, best_pid,
                                       second)
            elif self._graph is not None and len(q):
                retry = None if self.retry_below is None else threshold
                for r, (rows, s) in enumerate(self._candidates(q, retry)):
                    if not len(rows):
                        continue
                    i = int(np.argmax(s))
                    best[r], best_pid[r] = s[i], self._pids[rows[i]]
                    other = self._pids[rows] != best_pid[r]
                    if other.any():
                        second[r] = s[other].max()
            else:
                self._decide_exhaustive(q, best, best_pid, second)
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

    def _centroid_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(Under the lock.) (sorted person ids, their normalised centroids [P, dim]), rebuilt after a change."""
        self._rows_of(np.zeros(0, np.int64))  # groups the rows again if the index changed
        if self._centroids_of is not self._rows:
            self._centroids, self._centroids_of = person_centroids(self._pids, self._vectors()), self._rows
        return self._centroids

    def _decide_by_person(self, q: np.ndarray, rule: str, retry_below: float | None, best: np.ndarray,
                          best_pid: np.ndarray, second: np.ndarray) -> None:
        """(Under the lock.) Person scores by ``rule``: for ``centroid`` in a gallery small enough for exhaustive
        search, one product with the centroid table; otherwise over all templates of the candidate persons (the
        graph's proposals, or everybody)."""
        people_all, cents = self._centroid_table()
        if not len(people_all):
            return
        if rule == "centroid" and self._graph is None:
            scores = q @ cents.T  # [N, P]
            for r in range(len(q)):
                i = int(np.argmax(scores[r]))
                best[r], best_pid[r] = scores[r, i], people_all[i]
                if len(people_all) > 1:
                    second[r] = np.delete(scores[r], i).max()
            return
        if self._graph is not None:
            cands = self._candidates(q, retry_below)
        else:
            every = np.arange(len(self._pids))
            sims = self._vectors() @ q.T
            cands = [(every, sims[:, r]) for r in range(len(q))]
        for r, (rows, s) in enumerate(cands):
            if not len(rows):
                continue
            people, inv = np.unique(self._pids[rows], return_inverse=True)
            cent = cents[np.searchsorted(people_all, people)] @ q[r]
            if rule == "centroid":
                score = cent
            else:
                top = np.full(len(people), -np.inf, np.float32)
                np.maximum.at(top, inv, s)
                score = np.maximum(top, cent)
            i = int(np.argmax(score))
            best[r], best_pid[r] = score[i], people[i]
            if len(people) > 1:
                second[r] = np.delete(score, i).max()

    def _decide_exhaustive(self, q: np.ndarray, best: np.ndarray, best_pid: np.ndarray,
                           second: np.ndarray) -> None:
        """(Under the lock, no graph.) Top templates of each query, widened until another person shows up."""
        people = len(self._counts)
        live = len(self)
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

    # ---------------------------------------------------------------- persistence (a cache only)
    def save(self, path: str | Path, fingerprint: str) -> None:
        """Write the templates to ``path``, the person graph (if any) to ``path.graph`` and the ids to
        ``path.npz``, atomically, tagged with the store's fingerprint. A graph that still has nodes of removed
        people is not written (they hold the centroid of an erased person's embeddings): the file then says
        "exact" and :meth:`load` has the graph rebuilt in the background."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        side, graph_path = _sidecar(path), _graph_file(path)
        tmp = path.with_name(path.name + ".tmp")
        graph_tmp = graph_path.with_name(graph_path.name + ".tmp")
        side_tmp = side.with_name(side.name + ".tmp.npz")
        with self._lock:
            faiss.write_index(self._flat, str(tmp))
            g = self._graph
            if g is not None and not g.alive.all():
                g = None
            extra: dict[str, np.ndarray] = {}
            if g is not None:
                faiss.write_index(g.index, str(graph_tmp))
                extra = {"graph_pids": g.node_pids, "graph_alive": g.alive,
                         "graph_stale": np.array(sorted(g.stale), np.int64),
                         "graph_proj": g.proj if g.proj is not None else np.zeros((0, 0), np.float32)}
            meta = json.dumps({"format": INDEX_FORMAT, "dim": self.dim, "kind": "hnsw" if g is not None else "exact",
                               "fingerprint": fingerprint})
            np.savez(side_tmp, meta=np.array(meta), template_ids=self._tids, person_ids=self._pids, **extra)
        os.replace(tmp, path)
        if g is not None:
            os.replace(graph_tmp, graph_path)
        os.replace(side_tmp, side)

    def load(self, path: str | Path, fingerprint: str) -> bool:
        """Replace the content with a saved index if it is intact and matches ``fingerprint``; False otherwise
        (missing, corrupt, stale or another dimension): the caller then rebuilds from the store."""
        path = Path(path)
        graph = None
        try:
            with np.load(_sidecar(path), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != INDEX_FORMAT or meta.get("dim") != self.dim:
                    return False
                if meta.get("fingerprint") != fingerprint:
                    return False
                tids, pids = z["template_ids"].astype(np.int64), z["person_ids"].astype(np.int64)
                if meta.get("kind") == "hnsw":
                    gi = faiss.read_index(str(_graph_file(path)))
                    proj = z["graph_proj"].astype(np.float32)
                    proj = proj if proj.size else None
                    gd = proj.shape[1] if proj is not None else self.dim
                    node_pids, alive = z["graph_pids"], z["graph_alive"]
                    if (not isinstance(gi, faiss.IndexHNSW) or gi.d != gd or gi.ntotal != len(node_pids)
                            or len(alive) != len(node_pids) or (proj is not None and proj.shape[0] != self.dim)):
                        return False
                    gi.hnsw.efSearch = self.ef_search
                    graph = PersonGraph(gi, proj, node_pids, alive, z["graph_stale"].tolist())
            index = faiss.read_index(str(path))
            if not isinstance(index, faiss.IndexFlatIP) or index.d != self.dim:
                return False
            if not (index.ntotal == len(tids) == len(pids)):
                return False
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError) as exc:
            log.info("gallery index file %s not usable (%s); rebuilding from the store", path, exc)
            return False
        with self._lock:
            self._epoch += 1
            self._clear()
            self._flat, self._tids, self._pids, self._graph = index, tids, pids, graph
            self._counts = _counts(pids)
            self._maybe_rebuild()  # a large index saved without its graph: build one (in the background)
        return True


def _counts(pids: np.ndarray) -> dict[int, int]:
    """Templates per person id."""
    u, c = np.unique(pids, return_counts=True)
    return dict(zip(u.tolist(), c.tolist(), strict=True))


def _graph_file(path: Path) -> Path:
    return path.with_name(path.name + ".graph")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".npz")
