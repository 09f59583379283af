"""Distillation teachers (training-time only, never shipped or loaded by the app).

Both teachers at hand have a fixed batch of 1 and a final Reshape to [1, -1]: ``batched_copy`` writes a copy with
a symbolic batch and that shape set to [0, -1], outside the repository (outputs match the batch-1 model exactly).
A teacher runs either in ONNX Runtime or, converted by ``onnx_torch``, in PyTorch with bf16 autocast and
channels-last, which is several times faster on a CPU with AMX (docs/TRAINING.md has the figures).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from desktop_app.train.data import cache_file, save_cached

log = logging.getLogger(__name__)


def batched_copy(src: str | Path, dst: str | Path) -> Path:
    """A copy of ``src`` that takes any batch size; written once and reused."""
    import onnx
    from onnx import numpy_helper

    dst = Path(dst)
    if dst.exists():
        return dst
    m = onnx.load(str(src))
    for t in list(m.graph.input) + list(m.graph.output):
        t.type.tensor_type.shape.dim[0].dim_param = "N"
    fixed = np.array([1, -1], dtype=np.int64)
    batched = numpy_helper.from_array(np.array([0, -1], dtype=np.int64))
    for n in m.graph.node:  # foamliu MobileFaceNet: a Constant node feeds the Reshape
        if n.op_type == "Constant" and n.output[0] == "/Constant_output_0":
            for a in n.attribute:
                if a.name == "value":
                    a.t.CopyFrom(batched)
    for init in m.graph.initializer:  # faceplugin fr_feature: an initializer (named `703`) feeds it
        if init.data_type == onnx.TensorProto.INT64 and np.array_equal(numpy_helper.to_array(init), fixed):
            init.CopyFrom(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), init.name))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    onnx.save(m, str(tmp))
    tmp.replace(dst)
    return dst


def _unit(y: np.ndarray) -> np.ndarray:
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)


class Teacher:
    """Embeds float32 NCHW batches already normalised as (x - 127.5) / 128 (RGB); returns unit vectors."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _unit(self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0])


class TorchTeacher:
    """The same teacher converted to PyTorch (desktop_app.train.onnx_torch), run with bf16 autocast and channels-last.

    Faster than ONNX Runtime for one teacher and slower for the other, depending on the CPU and the load:
    ``benchmarks/teacher_backends.py`` measures both side by side (docs/TRAINING.md)."""

    def __init__(self, path: str | Path, bf16: bool = True) -> None:
        import torch

        from desktop_app.train.onnx_torch import convert

        self.torch = torch
        self.bf16 = bf16
        self.model = convert(str(path)).eval().to(memory_format=torch.channels_last)
        for p in self.model.parameters():
            p.requires_grad_(False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            y = self.model(t).float().numpy()
        return _unit(y)


def batched_teacher(src: str | Path, cache: Path) -> Path:
    """The teacher's batched copy in ``cache`` (made once, named by the source's content)."""
    src = Path(src).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"teacher {src} not found (docs/TRAINING.md says where the teachers come from)")
    key = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    return batched_copy(src, cache / f"teacher-{src.stem}-{key}-batched.onnx")


def open_teacher(src: str | Path, cache: Path, backend: str, threads: int, bf16: bool):
    path = batched_teacher(src, cache)
    if backend == "torch":
        return TorchTeacher(path, bf16=bf16)
    return Teacher(path, threads=threads)


def targets_path(paths: list[str], tag: str, cache: Path) -> Path:
    """Where :func:`cached_targets` keeps the targets of this image list and teacher tag."""
    return cache_file(cache, "targets", paths, tag)


def cached_targets(teacher, images: np.ndarray, paths: list[str], tag: str, cache: Path, batch: int = 256
                   ) -> np.ndarray:
    """Unit embeddings [N, 2, D] of each crop (index 0) and its mirror (index 1), computed once and kept in
    ``cache`` (keyed by the teacher tag and the image list), for a teacher too slow to run on every step."""
    from desktop_app.train.augment import to_input

    f = targets_path(paths, tag, cache)
    if f.exists():
        return np.load(f)
    out = []
    for i in range(0, len(images), batch):
        im = images[i : i + batch]
        out.append(np.stack([teacher(to_input(im)), teacher(to_input(im[:, :, ::-1].copy()))], axis=1))
        if (i // batch) % 20 == 0:
            log.info("teacher targets %s: %d / %d", tag, i + len(im), len(images))
    t = np.concatenate(out).astype(np.float32)
    save_cached(f, t)
    return t
