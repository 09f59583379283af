"""Teacher throughput, ONNX Runtime against PyTorch (desktop_app/train/onnx_torch.py, bf16 autocast, channels-last),
side by side in one run: median images/s over ``--repeats`` batches, and the mean cosine of the two outputs.

    .venv/bin/python benchmarks/teacher_backends.py [--batch 64] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from desktop_app.train.teacher import Teacher, TorchTeacher, batched_copy  # noqa: E402

TEACHERS = {"foamliu": ROOT.parent / "shared/teachers/mobilefacenet-foamliu/MobileFaceNet.onnx",
            "faceplugin": Path("~/.cache/fdface/npm/package/model/fr_feature.onnx").expanduser()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    x = (np.random.default_rng(0).uniform(0, 255, (args.batch, 3, 112, 112)).astype(np.float32) - 127.5) / 128
    print("| teacher | ONNX Runtime img/s | PyTorch bf16 img/s | ratio | mean cosine |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in TEACHERS.items():
            if not src.exists():
                print(f"| {name} | not found: {src} | | | |")
                continue
            path = batched_copy(src, Path(tmp) / f"{name}.onnx")
            runs = {"ort": Teacher(path, threads=args.threads), "torch": TorchTeacher(path, bf16=True)}
            rate, out = {}, {}
            for key, t in runs.items():
                out[key] = t(x)  # warm-up
                ts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    t(x)
                    ts.append(time.perf_counter() - t0)
                rate[key] = args.batch / float(np.median(ts))
            cos = float((out["ort"] * out["torch"]).sum(1).mean())
            print(f"| {name} | {rate['ort']:.0f} | {rate['torch']:.0f} | {rate['torch'] / rate['ort']:.2f} | "
                  f"{cos:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
