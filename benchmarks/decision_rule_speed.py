"""Time of GalleryIndex.decide per rule (best template / centroid / best_or_centroid), side by side in one run.

Random unit templates, 5 per person, exhaustive search (galleries below ``storage.hnsw_above``), 2 faces per call
(a frame), one thread. Median over ``--repeats`` calls after one warm-up call.

    .venv/bin/python benchmarks/decision_rule_speed.py [--people 200 2000 10000] [--repeats 31]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from desktop_app.config import DECISION_RULES  # noqa: E402
from desktop_app.gallery.index import GalleryIndex  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, nargs="+", default=[200, 2000, 10000])
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--dim", type=int, default=512)
    args = ap.parse_args(argv)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| people | templates | " + " | ".join(f"{r} (ms)" for r in DECISION_RULES) + " | centroid / best |")
    print("|---|---|" + "---|" * (len(DECISION_RULES) + 1))
    for people in args.people:
        n = people * 5
        g = GalleryIndex(args.dim, hnsw_above=10**9)
        g.add(np.arange(n), np.repeat(np.arange(people), 5), rng.standard_normal((n, args.dim)).astype(np.float32))
        q = rng.standard_normal((2, args.dim)).astype(np.float32)
        med = {}
        for rule in DECISION_RULES:
            g.decide(q, 0.5, 0.05, rule=rule)
            ts = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                g.decide(q, 0.5, 0.05, rule=rule)
                ts.append(time.perf_counter() - t)
            med[rule] = float(np.median(ts)) * 1e3
        print(f"| {people:,} | {n:,} | " + " | ".join(f"{med[r]:.2f}" for r in DECISION_RULES)
              + f" | {med['centroid'] / med['best']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
