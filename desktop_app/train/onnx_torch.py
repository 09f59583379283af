"""A small ONNX-to-PyTorch interpreter for the distillation teachers (training-time only).

onnx2torch did this before, but it imports torchvision, whose PyPI build does not load next to the CPU build of
torch (``operator torchvision::nms does not exist``). Both teachers at hand are plain CNNs made of a handful of
operators (Conv, Clip, Relu, PRelu, Add, Reshape, Constant, plus the few below), so the graph is run node by node
with ``torch.nn.functional``; the weights are buffers, so ``.to(memory_format=...)`` and autocast apply.
An operator outside this list stops the conversion with its name, rather than running something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = ("Add", "BatchNormalization", "Clip", "Constant", "Conv", "Flatten", "Gemm", "GlobalAveragePool",
             "Identity", "MatMul", "Mul", "PRelu", "Relu", "Reshape", "Sigmoid", "Sub")


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class OnnxModule(nn.Module):
    """Runs one ONNX graph with a single input and a single output."""

    def __init__(self, model) -> None:
        super().__init__()
        from onnx import numpy_helper

        g = model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.input_name = next(i.name for i in g.input if i.name not in inits)
        self.output_name = g.output[0].name
        self._slot: dict[str, str] = {}  # ONNX tensor name -> buffer name
        self._ints: dict[str, list[int]] = {}  # integer tensors (shapes), kept as Python lists
        self.nodes: list[tuple[str, list[str], list[str], dict[str, Any]]] = []

        def keep(name: str, arr: np.ndarray) -> None:
            if arr.dtype.kind in "iu":
                self._ints[name] = [int(v) for v in arr.reshape(-1)]
            else:
                slot = f"t{len(self._slot)}"
                self.register_buffer(slot, torch.from_numpy(np.array(arr, dtype=np.float32)))
                self._slot[name] = slot

        for name, arr in inits.items():
            keep(name, arr)
        unknown = sorted({n.op_type for n in g.node} - set(SUPPORTED))
        if unknown:
            raise NotImplementedError(f"the teacher uses ONNX operators this converter does not run: {unknown}")
        for n in g.node:
            attrs = _attrs(n)
            if n.op_type == "Constant":
                keep(n.output[0], numpy_helper.to_array(attrs["value"]))
                continue
            self.nodes.append((n.op_type, list(n.input), list(n.output), attrs))

    def _get(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        return getattr(self, self._slot[name])

    def _scalar(self, env: dict[str, torch.Tensor], name: str) -> float | None:
        if not name:
            return None
        if name in self._ints:
            return float(self._ints[name][0])
        return float(self._get(env, name).reshape(-1)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        for op, ins, outs, a in self.nodes:
            env[outs[0]] = self._run(op, ins, a, env)
        return env[self.output_name]

    def _run(self, op: str, ins: list[str], a: dict[str, Any], env: dict[str, torch.Tensor]) -> torch.Tensor:
        get = lambda i: self._get(env, ins[i])  # noqa: E731
        if op == "Conv":
            x, w = get(0), get(1)
            b = get(2) if len(ins) > 2 and ins[2] else None
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise NotImplementedError("Conv with auto_pad")
            if pads[:2] == pads[2:]:
                padding: Any = tuple(pads[:2])
            else:  # ONNX pads are [top, left, bottom, right]; F.pad takes (left, right, top, bottom)
                x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
                padding = 0
            return F.conv2d(x, w, b, stride=tuple(a.get("strides", [1, 1])), padding=padding,
                            dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)))
        if op == "Clip":
            lo = a.get("min") if "min" in a else (self._scalar(env, ins[1]) if len(ins) > 1 else None)
            hi = a.get("max") if "max" in a else (self._scalar(env, ins[2]) if len(ins) > 2 else None)
            return torch.clamp(get(0), min=lo, max=hi)
        if op == "Relu":
            return F.relu(get(0))
        if op == "Sigmoid":
            return torch.sigmoid(get(0))
        if op == "PRelu":
            x, s = get(0), get(1)
            if s.dim() == 1 and x.dim() == 4 and s.numel() == x.shape[1]:
                s = s.reshape(1, -1, 1, 1)
            return torch.where(x >= 0, x, x * s.to(x.dtype))
        if op == "Add":
            return get(0) + get(1)
        if op == "Sub":
            return get(0) - get(1)
        if op == "Mul":
            return get(0) * get(1)
        if op == "Identity":
            return get(0)
        if op == "Reshape":
            x = get(0)
            shape = self._ints[ins[1]]
            shape = [x.shape[i] if (s == 0 and not a.get("allowzero", 0)) else s for i, s in enumerate(shape)]
            return x.reshape(shape)
        if op == "Flatten":
            return torch.flatten(get(0), start_dim=int(a.get("axis", 1)))
        if op == "GlobalAveragePool":
            return get(0).mean(dim=(2, 3), keepdim=True)
        if op == "BatchNormalization":
            return F.batch_norm(get(0), get(3), get(4), get(1), get(2), training=False,
                                eps=float(a.get("epsilon", 1e-5)))
        if op == "MatMul":
            return get(0) @ get(1)
        if op == "Gemm":
            x, w = get(0), get(1)
            if a.get("transA", 0):
                x = x.t()
            if a.get("transB", 0):
                w = w.t()
            y = float(a.get("alpha", 1.0)) * (x @ w)
            if len(ins) > 2 and ins[2]:
                y = y + float(a.get("beta", 1.0)) * get(2)
            return y
        raise NotImplementedError(op)


def convert(path: str | Path) -> OnnxModule:
    import onnx

    return OnnxModule(onnx.load(str(path)))
