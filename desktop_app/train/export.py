"""Ship a trained checkpoint: BN-fused ONNX (dynamic batch, RGB (x - 127.5) / 128, 512-d) + manifest entry.

Also static INT8 QDQ quantisation (per-channel weights) calibrated on training-pool faces.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import torch

from desktop_app.manifest import ModelEntry, sha256_file, write_entry
from desktop_app.nets import create_net
from desktop_app.nets.export import export_onnx


def load_checkpoint_model(ckpt: str | Path) -> tuple[torch.nn.Module, dict]:
    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    model = create_net(st["net"], **st.get("net_kwargs", {}))
    model.load_state_dict(st["model"])
    model = model.to(memory_format=torch.contiguous_format).eval()
    return model, st


def export_checkpoint(ckpt: str | Path, out: str | Path) -> tuple[Path, dict]:
    model, st = load_checkpoint_model(ckpt)
    path = export_onnx(model, out, input_size=112)
    return path, st


def manifest_entry(name: str, path: Path, info: dict, flip: bool = False) -> ModelEntry:
    return ModelEntry(
        name=name, file=path.name, task="embedding", sha256=sha256_file(path), input_size=112, color="RGB",
        mean=127.5, std=128.0, output_dim=512, info={"exported": dt.date.today().isoformat(), **info},
        base_dir=str(path.parent), flip=flip,
    )


def ship(entry: ModelEntry, manifest: str | Path) -> None:
    write_entry(manifest, entry)


class _PoolReader:
    """Calibration batches of aligned pool faces, RGB NCHW normalised like the model's input."""

    def __init__(self, images_rgb: np.ndarray, input_name: str, batch: int = 16) -> None:
        from desktop_app.train.augment import to_input

        self.batches = [to_input(images_rgb[i : i + batch]) for i in range(0, len(images_rgb), batch)]
        self.input_name = input_name
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.input_name: self.batches[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def quantize_int8(fp32: str | Path, out: str | Path, calib_rgb: np.ndarray) -> Path:
    """Static QDQ INT8, per-channel weights, activations calibrated (MinMax) on ``calib_rgb`` faces.

    ``reduce_range``: weights use 7 of their 8 bits. ONNX Runtime's uint8 x int8 kernels on x86 CPUs without VNNI
    (AVX2 only: many laptop i5s, the AMD EPYC of 2026-11-29) add pairs of products in int16 and saturate; the first
    INT8 model, quantized without it, embedded faces there at a mean cosine of 0.89 (minimum 0.35) to its FP32
    source, against 0.999 with reduce_range (benchmarks/int8_agreement.py).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre), str(out), _PoolReader(calib_rgb, "input"), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        reduce_range=True,
    )
    pre.unlink(missing_ok=True)
    return out
