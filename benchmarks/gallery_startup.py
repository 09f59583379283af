"""Start-up: open a store of N templates (SQLite file) and get the gallery index ready to search.

Measured through the product's ``Gallery.open`` (Alembic check, fingerprint, reading every embedding, filling the
index):

- ``open, exact``: the index is exact (flat) from the store; the app can recognise from here on;
- ``HNSW graph``: past ``storage.hnsw_above`` templates the graph is then built on a background thread (exact
  search answers meanwhile); its time until swapped in;
- ``open, saved index``: the next start loads the saved graph file (valid while the store's templates are
  unchanged) instead of rebuilding.

    .venv/bin/python benchmarks/gallery_startup.py --templates 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from desktop_app import storage as st  # noqa: E402
from desktop_app.config import Settings  # noqa: E402
from desktop_app.gallery.service import Gallery, default_index_path  # noqa: E402

MODEL = "bench-model@0"


def fill(url: str, n: int, dim: int, per: int, seed: int = 0) -> float:
    """Write ``n`` synthetic templates (``per`` per person) in one transaction; returns seconds."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    engine = st.open_engine(url)
    now = datetime.now(UTC)
    people = max(1, n // per)
    with Session(engine) as s, s.begin():
        s.execute(insert(st.Person), [{"name": f"person {i}", "active": True, "pseudonym": f"anon-{i:012x}",
                                       "created_at": now, "updated_at": now} for i in range(people)])
        first = s.scalar(st.select(st.func.min(st.Person.id)))
        for a in range(0, n, 20000):
            b = min(n, a + 20000)
            v = rng.standard_normal((b - a, dim), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            s.execute(insert(st.Template), [
                {"person_id": first + (a + i) // per % people, "embedding": v[i].tobytes(), "dim": dim,
                 "model_id": MODEL, "quality": 0.9, "source": "bench", "created_at": now}
                for i in range(b - a)])
    engine.dispose()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--per", type=int, default=5)
    ap.add_argument("--hnsw-above", type=int, default=Settings().storage.hnsw_above,
                    help="storage.hnsw_above (default: the settings default)")
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads for the graph build (0: all cores)")
    ap.add_argument("--dir", help="where to put the database (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)

    tmp = tempfile.TemporaryDirectory() if not args.dir else None
    folder = Path(args.dir or tmp.name)
    url = f"sqlite:///{folder / 'startup.db'}"
    settings = Settings().with_changes("storage", database_url=url, hnsw_above=args.hnsw_above)
    print(f"# {args.templates} templates x {args.dim}-d, {args.per} per person; hnsw_above {args.hnsw_above}; "
          f"cores {os.cpu_count()}; FAISS threads {faiss.omp_get_max_threads()}; "
          f"load {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    print(f"fill the store                {fill(url, args.templates, args.dim, args.per):8.2f} s", flush=True)
    size = (folder / "startup.db").stat().st_size / 1e6
    print(f"database size                 {size:8.1f} MB", flush=True)

    t0 = time.perf_counter()
    g = Gallery.open(settings, MODEL, args.dim)
    opened = time.perf_counter() - t0
    print(f"open, exact index ready       {opened:8.2f} s  ({len(g.index)} templates, {g.index.kind}, from the "
          f"{g.load_source})", flush=True)
    if g.index.building:
        g.index.wait_ready()
        print(f"HNSW graph built (background) {time.perf_counter() - t0:8.2f} s after open; now {g.index.kind}",
              flush=True)
    g.close()
    path = default_index_path(url, MODEL)
    if path.exists():
        t0 = time.perf_counter()
        g2 = Gallery.open(settings, MODEL, args.dim)
        print(f"open, saved index file        {time.perf_counter() - t0:8.2f} s  ({g2.index.kind}, from the "
              f"{g2.load_source}; file {path.stat().st_size / 1e6:.0f} MB)", flush=True)
        g2.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
