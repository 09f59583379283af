"""The distillation teacher run through ONNX Runtime on batches (training-time only, never shipped).

The foamliu MobileFaceNet has a fixed batch of 1 and a Reshape to [1, -1]; ``batched_copy`` writes a copy with
a symbolic batch and that shape set to [0, -1] (its README's recipe), outside the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


def batched_copy(src: str | Path, dst: str | Path) -> Path:
    import onnx
    from onnx import numpy_helper

    dst = Path(dst)
    if dst.exists():
        return dst
    m = onnx.load(str(src))
    for t in list(m.graph.input) + list(m.graph.output):
        t.type.tensor_type.shape.dim[0].dim_param = "N"
    for n in m.graph.node:
        if n.op_type == "Constant" and n.output[0] == "/Constant_output_0":
            for a in n.attribute:
                if a.name == "value":
                    a.t.CopyFrom(numpy_helper.from_array(np.array([0, -1], dtype=np.int64)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(dst))
    return dst


class Teacher:
    """Embeds float32 NCHW batches already normalised as (x - 127.5) / 128 (RGB); returns unit vectors."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
