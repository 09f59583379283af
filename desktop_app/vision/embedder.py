"""Any ONNX face embedder described by a manifest entry (FDFaceNet by default).

Input: aligned 112x112 crops, uint8 BGR [N, H, W, 3] (OpenCV's order); output L2-normalised float32 [N, D].
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from desktop_app.manifest import ModelEntry


def make_session(path: str | bytes, threads: int = 0, spin: bool = False) -> ort.InferenceSession:
    """A CPU session over a model file (or its bytes). ``spin`` False: idle worker threads sleep instead of
    busy-waiting, which matters when two sessions alternate with Python work on a machine with few cores."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads  # 0: ONNX Runtime's default (all cores)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Embedder:
    """One ONNX session; ``infer`` embeds all faces of a frame in one batch (or one by one for batch-1 models)."""

    def __init__(self, entry: ModelEntry, threads: int = 0, verify: bool = True, spin: bool = False) -> None:
        self.entry = entry
        path = entry.verify() if verify else entry.path
        self.session = make_session(str(path), threads, spin=spin)
        inp = self.session.get_inputs()[0]
        self.input_name = entry.input_name or inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.dim = entry.output_dim

    def _preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        x = crops_bgr
        s = self.entry.input_size
        if x.shape[1:3] != (s, s):
            import cv2

            x = np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA) for c in x])
        if self.entry.color.upper() == "RGB":
            x = x[..., ::-1]
        x = x.astype(np.float32).transpose(0, 3, 1, 2)
        return np.ascontiguousarray((x - self.entry.mean) / self.entry.std)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch == 1 and len(x) != 1:
            return np.concatenate([self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(len(x))])
        return self.session.run(None, {self.input_name: x})[0]

    @staticmethod
    def _postprocess(y: np.ndarray) -> np.ndarray:
        y = y.reshape(len(y), -1).astype(np.float32)
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)

    def infer(self, crops_bgr: np.ndarray, flip: bool | None = None) -> np.ndarray:
        """Embed ``crops_bgr`` (uint8 [N, H, W, 3]); ``flip`` sums with the mirrored crop's embedding (default: as
        the manifest entry says, which is how the model's thresholds were calibrated). Crops and mirrors go in one
        batch."""
        n = len(crops_bgr)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        flip = self.entry.flip if flip is None else flip
        x = self._preprocess(crops_bgr)
        if flip:
            y = self._run(np.concatenate([x, x[..., ::-1]]))
            y = y[:n] + y[n:]
        else:
            y = self._run(x)
        return self._postprocess(y)
