"""Gallery search latency: one 512-d query against 10k / 100k / 1M synthetic templates, exhaustive and through the
person graph (HNSW over person centroids + exact re-rank, desktop_app/gallery/index.py).

Synthetic data, ``size / per`` people with ``per`` templates each; queries are fresh samples of random people (a
new photo of an enrolled person). ``--data model`` (default) draws them from a Gaussian fitted to the installed
model's embeddings of LFW (its mean and covariance: the variance of real embeddings sits in a few dozen
directions); ``--data isotropic`` scatters templates in random directions of all 512 dimensions (cosine about 0.6
within a person, 0 between people), a worst case for graph search. Latency is one query per call through the product's
``GalleryIndex`` (normalisation, lock and id mapping included): ``search`` (top-1 template) and ``decide`` (best
template per person, runner-up of another person, threshold and margin). Recall@1 of the graph is the fraction
of queries whose top template is the exhaustive search's; "person" the fraction whose decided candidate person is;
"retried" the fraction of queries searched a second time because their best stayed below ``--retry-below``
(``decide`` then retries below its threshold, 0.4 here).

    .venv/bin/python benchmarks/gallery_search.py --sizes 10000,100000,1000000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from desktop_app.cpuinfo import cpu_name  # noqa: E402
from desktop_app.gallery.index import (  # noqa: E402
    GRAPH_DIM,
    GRAPH_PERSONS,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    GalleryIndex,
    person_centroids,
    projection,
)

NOISE = 0.8  # per-template noise norm relative to the unit centre: within-person cosine about 0.6


def unit(a: np.ndarray) -> np.ndarray:
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def synthetic(size: int, dim: int, per: int, queries: int, seed: int) -> tuple[np.ndarray, ...]:
    """Isotropic: (template ids, person ids, templates [size, dim], queries [q, dim], query person ids)."""
    rng = np.random.default_rng(seed)
    people = max(1, size // per)
    centres = unit(rng.standard_normal((people, dim), dtype=np.float32))
    emb = np.empty((size, dim), np.float32)
    pids = np.arange(size, dtype=np.int64) // per % people
    for a in range(0, size, 65536):
        b = min(size, a + 65536)
        emb[a:b] = centres[pids[a:b]] + rng.standard_normal((b - a, dim), dtype=np.float32) * (NOISE / np.sqrt(dim))
        unit(emb[a:b])
    qp = rng.integers(0, people, queries)
    q = unit(centres[qp] + rng.standard_normal((queries, dim), dtype=np.float32) * (NOISE / np.sqrt(dim)))
    return np.arange(1, size + 1, dtype=np.int64), pids, emb, q, qp


def gaussian_fit(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a factor ``lk`` of the covariance S = lk lk^T of ``real`` embeddings [N, D]."""
    mean = real.mean(0)
    w, v = np.linalg.eigh(np.cov(real - mean, rowvar=False))
    return mean, (v * np.sqrt(np.clip(w, 0, None))).astype(np.float32)


def model_like(real: np.ndarray, size: int, per: int, queries: int, seed: int,
               rho: float = 0.55) -> tuple[np.ndarray, ...]:
    """Like a real embedder's output: Gaussian with the mean and covariance of ``real`` embeddings [N, D] (their
    variance sits in a few dozen directions, unlike isotropic noise). A person is a latent g ~ N(0, S); a template
    of them is normalize(mean + sqrt(rho) g + sqrt(1 - rho) e), e ~ N(0, S) fresh per photo."""
    rng = np.random.default_rng(seed)
    mean, lk = gaussian_fit(real)
    dim = real.shape[1]
    people = max(1, size // per)
    latent = rng.standard_normal((people, dim), dtype=np.float32) @ lk.T * np.float32(np.sqrt(rho))
    pids = np.arange(size, dtype=np.int64) // per % people
    emb = np.empty((size, dim), np.float32)
    noise = np.float32(np.sqrt(1 - rho))
    for a in range(0, size, 65536):
        b = min(size, a + 65536)
        emb[a:b] = mean + latent[pids[a:b]] + (rng.standard_normal((b - a, dim), dtype=np.float32) @ lk.T) * noise
        unit(emb[a:b])
    qp = rng.integers(0, people, queries)
    q = unit(mean + latent[qp] + (rng.standard_normal((queries, dim), dtype=np.float32) @ lk.T) * noise)
    return np.arange(1, size + 1, dtype=np.int64), pids, emb, q, qp


def strangers(real: np.ndarray | None, n: int, dim: int, seed: int, rho: float = 0.55) -> np.ndarray:
    """``n`` faces of people who are not enrolled: a fresh latent each (model-like), or random directions."""
    rng = np.random.default_rng(seed + 1_000_003)  # its own stream: the gallery and queries stay as they were
    if real is None:
        return unit(rng.standard_normal((n, dim), dtype=np.float32))
    mean, lk = gaussian_fit(real)
    g = rng.standard_normal((n, dim), dtype=np.float32) @ lk.T * np.float32(np.sqrt(rho))
    e = rng.standard_normal((n, dim), dtype=np.float32) @ lk.T * np.float32(np.sqrt(1 - rho))
    return unit(mean + g + e)


def real_embeddings(threads: int) -> np.ndarray:
    """LFW embeddings of the installed model (cached by benchmarks/calibrate_threshold.py)."""
    import calibrate_threshold as cal

    entry = cal.load_manifest(cal.default_models_dir() / "manifest.json")["fdfacenet"]
    emb, _, _ = cal.embed_lfw(entry, threads, Path.home() / ".cache" / "fdface-calibration", None)
    return emb


def similarity_profile(emb: np.ndarray, pids: np.ndarray, per: int) -> tuple[float, float]:
    """Mean cosine of two templates of one person, and of two different people's (from a sample)."""
    n = min(len(emb) // per, 2000) * per
    a, b = emb[0:n:per], emb[1:n:per]
    gen = float(np.einsum("nd,nd->n", a, b).mean()) if per > 1 else float("nan")
    imp = float(np.einsum("nd,nd->n", a, np.roll(b, 1, axis=0)).mean())
    return gen, imp


def projected_energy(pids: np.ndarray, emb: np.ndarray, dims: int, sample: int = 200_000) -> float:
    """Fraction of the squared norm of the person centroids (of up to ``sample`` templates) that the person graph's
    projection keeps."""
    _, cents = person_centroids(pids[:sample], emb[:sample])
    proj = projection(cents, dims)
    if proj is None:
        return 1.0
    return float(np.square(cents @ proj, dtype=np.float64).sum() / np.square(cents, dtype=np.float64).sum())


def timed(fn, q: np.ndarray, warmup: int = 5) -> np.ndarray:
    for i in range(min(warmup, len(q))):
        fn(q[i : i + 1])
    out = np.empty(len(q))
    for i in range(len(q)):
        t0 = time.perf_counter()
        fn(q[i : i + 1])
        out[i] = time.perf_counter() - t0
    return out * 1e3


def pct(ms: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes (templates)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--per", type=int, default=5, help="templates per person")
    ap.add_argument("--queries", type=int, default=500, help="timed single queries per configuration")
    ap.add_argument("--exact-queries", type=int, default=100, help="timed exact queries at sizes >= 500k (slow)")
    ap.add_argument("--hnsw-from", type=int, default=100_000, help="also time HNSW at sizes from this one")
    ap.add_argument("--m", type=int, default=HNSW_M)
    ap.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    ap.add_argument("--ef", default=str(HNSW_EF_SEARCH), help="efSearch values, comma-separated")
    ap.add_argument("--graph-dim", type=int, default=GRAPH_DIM, help="projected dimensions of the person graph")
    ap.add_argument("--sq8", action="store_true", help="person graph over 8-bit scalar-quantized node vectors")
    ap.add_argument("--persons", default=str(GRAPH_PERSONS),
                    help="persons taken from the graph per query (re-ranked exactly), comma-separated values")
    ap.add_argument("--retry-below", default="none,0.47",
                    help="search harder for queries whose best similarity stays below this (the recognition "
                         "threshold; 'none': never), comma-separated values")
    ap.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads for the timed searches")
    ap.add_argument("--build-threads", type=int, default=0, help="FAISS threads for the HNSW build (0: --threads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", choices=("model", "isotropic"), default="model",
                    help="model: Gaussian fitted to the installed model's LFW embeddings (realistic); isotropic: "
                         "random directions in all 512 dimensions (a worst case for graph search)")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)

    faiss.omp_set_num_threads(args.threads)
    build_threads = args.build_threads or args.threads
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    efs = [int(e) for e in args.ef.split(",") if e.strip()]
    n_persons = [int(e) for e in args.persons.split(",") if e.strip()]
    retries = [None if r.strip().lower() == "none" else float(r) for r in args.retry_below.split(",") if r.strip()]
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "faiss": faiss.__version__,
            "threads": args.threads, "build_threads": build_threads, "dim": args.dim, "per": args.per,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    real = real_embeddings(args.threads) if args.data == "model" else None
    if real is not None:
        args.dim = real.shape[1]
    info["data"] = args.data
    print(f"# {info}", flush=True)
    rows = []
    print(f"{'size':>9} {'index':<20} {'build s':>8} {'search p50':>10} {'p90':>7} {'p99':>7} "
          f"{'decide p50':>10} {'recall@1':>8} {'person':>8} {'retried':>7} {'stranger p50':>12} {'retried':>7} "
          f"{'misses (exact wrong)':>20}", flush=True)
    for size in sizes:
        if real is not None:
            tids, pids, emb, q, qp = model_like(real, size, args.per, args.queries, args.seed)
        else:
            tids, pids, emb, q, qp = synthetic(size, args.dim, args.per, args.queries, args.seed)
        gen, imp = similarity_profile(emb, pids, args.per)
        print(f"# {size}: mean cosine same person {gen:.3f}, different people {imp:.3f}; "
              f"{projected_energy(pids, emb, args.graph_dim):.1%} of the person centroids' energy in the graph's "
              f"{args.graph_dim} projected dimensions", flush=True)
        nq = args.queries if size < 500_000 else min(args.queries, args.exact_queries)
        exact = GalleryIndex(args.dim, hnsw_above=10**12)
        t0 = time.perf_counter()
        exact.reset(tids, pids, emb)
        build = time.perf_counter() - t0
        s_ms = timed(partial(exact.search, k=1), q[:nq])
        d_ms = timed(partial(exact.decide, threshold=0.4, margin=0.05), q[:nq])
        ref = exact.search(q, 1).template_ids[:, 0]  # batched: the reference top-1 of every query
        ref_person = [m.candidate_id for m in exact.decide(q, 0.4, 0.05)]
        exact_right = exact.search(q, 1).person_ids[:, 0] == qp
        ident = float(np.mean(exact_right))
        unknown = strangers(real, min(500, len(q)), args.dim, args.seed)
        row = {"size": size, "index": "exact", "build_s": build, "genuine_cos": gen, "impostor_cos": imp,
               "search_ms": pct(s_ms), "decide_ms": pct(d_ms),
               "queries": nq, "recall_at_1": 1.0, "top1_is_right_person": ident}
        rows.append(row)
        print(f"{size:>9} {'exact (flat IP)':<20} {build:>8.2f} {row['search_ms']['p50']:>10.3f} "
              f"{row['search_ms']['p90']:>7.3f} {row['search_ms']['p99']:>7.3f} {row['decide_ms']['p50']:>10.3f} "
              f"{1.0:>8.3f}", flush=True)
        del exact
        if size >= args.hnsw_from:
            h = GalleryIndex(args.dim, hnsw_above=0, hnsw_m=args.m, ef_construction=args.ef_construction,
                             background=False, graph_dim=args.graph_dim, graph_sq8=args.sq8)
            faiss.omp_set_num_threads(build_threads)
            t0 = time.perf_counter()
            h.reset(tids, pids, emb)
            build = time.perf_counter() - t0
            faiss.omp_set_num_threads(args.threads)
            assert h.kind == "hnsw"
            for ef, persons, retry in [(e, p, r) for e in efs for p in n_persons for r in retries]:
                h.ef_search, h.graph_persons, h.retry_below = ef, persons, retry
                s_ms = timed(partial(h.search, k=1), q)
                d_ms = timed(partial(h.decide, threshold=0.4, margin=0.05), q)
                hits = h.search(q, 1)
                got = hits.template_ids[:, 0]
                recall = float(np.mean(got == ref))
                miss = got != ref
                u_ms = timed(partial(h.search, k=1), unknown)  # strangers: the retry's worst case
                same_person = float(np.mean([m.candidate_id == r for m, r in
                                             zip(h.decide(q, 0.4, 0.05), ref_person, strict=True)]))
                label = f"graph{' sq8' if args.sq8 else ''} M{args.m} ef{ef} P{persons}" + (
                    f" R{retry:g}" if retry is not None else "")
                row = {"size": size, "index": label, "build_s": build, "search_ms": pct(s_ms),
                       "decide_ms": pct(d_ms), "queries": len(q), "recall_at_1": recall,
                       "decide_same_person": same_person, "ef_construction": args.ef_construction,
                       "graph_dim": args.graph_dim, "persons": persons, "retry_below": retry,
                       "stranger_search_ms": pct(u_ms),
                       "top1_is_right_person": float(np.mean(hits.person_ids[:, 0] == qp)),
                       "misses": int(miss.sum()), "misses_where_exact_named_another": int((miss & ~exact_right).sum()),
                       "retried": float(np.mean(hits.similarities[:, 0] < retry)) if retry is not None else 0.0,
                       "strangers_retried": float(np.mean(h.search(unknown, 1).similarities[:, 0] < retry))
                       if retry is not None else 0.0}
                rows.append(row)
                print(f"{size:>9} {label:<20} {build:>8.2f} {row['search_ms']['p50']:>10.3f} "
                      f"{row['search_ms']['p90']:>7.3f} {row['search_ms']['p99']:>7.3f} "
                      f"{row['decide_ms']['p50']:>10.3f} {recall:>8.3f} {same_person:>8.3f} "
                      f"{row['retried']:>7.3f} {row['stranger_search_ms']['p50']:>12.3f} "
                      f"{row['strangers_retried']:>7.3f} "
                      f"{row['misses']:>12d} ({row['misses_where_exact_named_another']})", flush=True)
            del h
        del emb
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
