"""ONNX export of a BN-fused net: dynamic batch, float32 NCHW input named ``input``, output ``embedding``."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from desktop_app.nets.fuse import fuse_bn


def export_onnx(model: nn.Module, path: str | Path, input_size: int = 112, fuse: bool = True,
                opset: int = 17) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = fuse_bn(model) if fuse else copy_eval(model)
    dummy = torch.randn(1, 3, input_size, input_size)
    torch.onnx.export(
        net, (dummy,), str(path), input_names=["input"], output_names=["embedding"],
        dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=opset, dynamo=False,
    )
    return path


def copy_eval(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()
