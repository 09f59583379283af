"""What hard-example mining would pair (recipe ``pairs``): each training face's nearest faces by the second
teacher's cached crop embedding, how similar they are, and how often they are the same person where the pool
labels both faces.

    .venv/bin/python benchmarks/teacher_neighbours.py [--recipe recipes/distill2-long.toml] [-k 10]

Needs the recipe's cached second-teacher targets (written by ``fdface train`` with that recipe).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from desktop_app.train.loop import cache_dir, load_data, native_bf16  # noqa: E402
from desktop_app.train.mining import nearest_neighbours  # noqa: E402
from desktop_app.train.recipe import load_recipe  # noqa: E402
from desktop_app.train.teacher import targets_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "distill2-long.toml"))
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    r = load_recipe(args.recipe)
    if not r.teacher2:
        print(f"{args.recipe} has no second teacher", file=sys.stderr)
        return 2
    train, _ = load_data(r)
    tag = f"{Path(r.teacher2).name}:{r.teacher2_dim}:bf16={r.bf16 and native_bf16()}"  # as the trainer keys it
    f = targets_path(train.paths, tag, cache_dir())
    if not f.exists():
        print(f"no cached targets for {tag} ({f}): run `fdface train {args.recipe}` once first", file=sys.stderr)
        return 2
    targets = np.load(f, mmap_mode="r")
    t0 = time.perf_counter()
    idx, sims = nearest_neighbours(np.asarray(targets[:, 0]), args.k)
    print(f"{len(train)} faces, k = {args.k}: {time.perf_counter() - t0:.0f} s")
    lab = train.labels
    for j in sorted({0, args.k // 2 - 1, args.k - 1}):
        both = (lab >= 0) & (lab[idx[:, j]] >= 0)
        same = both & (lab[idx[:, j]] == lab)
        print(f"rank {j + 1:>2}: mean cosine {sims[:, j].mean():.3f}; both faces labelled {both.mean():.3f}; "
              f"same person among those {same.sum() / max(1, both.sum()):.3f}")
    print(f"copies (cosine > 0.98) at rank 1: {(sims[:, 0] > 0.98).mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
