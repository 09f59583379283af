"""Exported students side by side on the validation identities, with the noise of the open-set figure shown.

The trainer's DIR@FAR1% (50 held-out celeba-wild identities, one enrol/stranger split) hangs on a handful of
stranger scores: the threshold admits 1 % of ~450 strangers. Here each model is measured on the same flip-sum
embeddings over ``--splits`` random enrol/stranger splits: the mean DIR with its standard error, the spread
(min-max), closed-set rank-1 and pairwise TAR at FAR 1e-3. LFW is not used (it may not choose a checkpoint).

    .venv/bin/python benchmarks/students.py models/fdfacenet.onnx /tmp/run/other.onnx [--splits 20]
    .venv/bin/python benchmarks/students.py models/fdfacenet.onnx --gpu-pack .gpu   # on the GPU pack's WebP crops

Every model after the first is also compared with the first split by split (the paired difference and its standard
error: the splits are the same, so this is the figure that says whether two models differ).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.cpuinfo import cpu_description  # noqa: E402
from desktop_app.train.augment import to_input  # noqa: E402
from desktop_app.train.data import identity_split, load_index_csv  # noqa: E402
from desktop_app.train.evaluate import open_set  # noqa: E402
from desktop_app.train.loop import cache_dir  # noqa: E402


def embed(path: str, images: np.ndarray, threads: int) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return np.concatenate([s.run(None, {name: to_input(x[i : i + 64])})[0] for i in range(0, len(x), 64)])

    return run(images) + run(images[:, :, ::-1].copy())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="ONNX files of students")
    ap.add_argument("--pack", default=str(ROOT.parent / "shared" / "datasets" / "faces112"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gpu-pack", help="use the validation crops of this GPU pack (desktop_app/train/gpu.py: WebP) "
                                       "instead of the pool's JPEGs")
    a = ap.parse_args()
    if a.gpu_pack:
        from desktop_app.train.gpu import decode_faces

        z = np.load(Path(a.gpu_pack) / "faces.npz")
        nt = int(z["n_train"])
        images = decode_faces((Path(a.gpu_pack) / "faces.bin").read_bytes(), z["offsets"], a.threads)[nt:]
        labels = z["labels"][nt:]
    else:
        arr, sources = load_index_csv(a.pack, cache_dir=cache_dir())
        _, val = identity_split(arr, sources, "celeba-wild", 50, seed=1234)  # the trainer's held-out identities
        images, labels = arr.images[val], arr.labels[val]
    print(f"CPU: {cpu_description()}, {a.threads} threads; {len(labels)} faces of {len(np.unique(labels))} "
          f"identities, {a.splits} splits" + (f", crops of {a.gpu_pack}" if a.gpu_pack else ""))
    print("| model | DIR@FAR1% mean +- s.e. | paired with the first | min-max | split 0 | rank-1 | TAR@1e-3 |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for m in a.models:
        e = embed(m, images, a.threads)
        res = [open_set(e, labels, seed=s) for s in range(a.splits)]
        d = np.array([r.dir_at_far for r in res])
        if first is None:
            first, paired = d, "-"
        else:
            diff = d - first
            paired = f"{diff.mean():+.2f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.2f}"
        print(f"| {Path(m).name} | {d.mean():.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f} | {paired} | "
              f"{d.min():.1f}-{d.max():.1f} | {d[0]:.2f} | {res[0].rank1:.2f} | {res[0].verification_tar:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
