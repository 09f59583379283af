"""How closely an INT8 embedder follows its FP32 source on real faces, on *this* CPU.

INT8 kernels differ between CPUs (x86 with or without VNNI, ARM), so an INT8 model measured on one machine can
embed differently on another. This embeds LFW crops of ../shared/datasets/faces112 with both models (as the app
does: flip-sum when the manifest says so) and reports the cosine between each face's two embeddings.

    .venv/bin/python benchmarks/int8_agreement.py                       # models/fdfacenet vs fdfacenet-int8
    .venv/bin/python benchmarks/int8_agreement.py --other /tmp/q.onnx   # also a candidate INT8 file
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.cpuinfo import cpu_description  # noqa: E402
from desktop_app.manifest import default_models_dir, load_manifest  # noqa: E402
from desktop_app.vision.embedder import Embedder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", default="fdfacenet")
    ap.add_argument("--int8", default="fdfacenet-int8")
    ap.add_argument("--other", action="append", default=[], help="another ONNX file to compare with the FP32 model")
    ap.add_argument("--faces", type=int, default=600)
    ap.add_argument("--pack", default=str(ROOT.parent / "shared" / "datasets" / "faces112"))
    args = ap.parse_args()
    files = sorted(Path(args.pack, "lfw").rglob("*.jpg"))
    if not files:
        print(f"no LFW crops under {args.pack}/lfw", file=sys.stderr)
        return 2
    random.Random(0).shuffle(files)
    x = np.stack([cv2.imread(str(f)) for f in files[: args.faces]])
    m = load_manifest(default_models_dir() / "manifest.json")
    ref = m[args.fp32]
    e32 = Embedder(ref, threads=1).infer(x)
    cands = [(args.int8, m[args.int8])] + [
        (o, dataclasses.replace(ref, name="other", file=str(Path(o).resolve()), base_dir="", sha256=""))
        for o in args.other
    ]
    iu = np.triu_indices(len(x), 1)
    s32 = (e32 @ e32.T)[iu]
    near = s32 > 0.4  # pairs near the recognition threshold, where a change flips a decision
    print(f"{cpu_description()}; {len(x)} LFW crops; flip-sum {ref.flip}. Cosine between each face's FP32 and INT8 "
          f"embedding, and |change| of the {len(s32):,} pairwise similarities (all, and the {near.sum()} pairs "
          "above 0.4 in FP32)")
    print("| model | face cos mean | 1st pct | min | pair change mean | p99 | max | near 0.4+: mean | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, entry in cands:
        e8 = Embedder(entry, threads=1, verify=bool(entry.sha256)).infer(x)
        c = (e32 * e8).sum(1)
        d = np.abs((e8 @ e8.T)[iu] - s32)
        print(f"| {label} | {c.mean():.4f} | {np.percentile(c, 1):.4f} | {c.min():.4f} | {d.mean():.4f} | "
              f"{np.percentile(d, 99):.4f} | {d.max():.4f} | {d[near].mean():.4f} | {d[near].max():.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
