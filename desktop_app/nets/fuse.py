"""Fold every BatchNorm into the layer before it for inference (paper eq. 8-11).

W' = W * gamma / sigma,  b' = beta + (b - mu) * gamma / sigma,  sigma = sqrt(var + eps).
Handles Conv2d + BatchNorm2d (including the GDC depthwise conv) and Linear + BatchNorm1d, wherever the BN
directly follows its layer inside an ``nn.Sequential`` or an :class:`EmbeddingHead`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from desktop_app.nets.layers import EmbeddingHead


@torch.no_grad()
def _fold(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Module:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    fused = copy.deepcopy(layer)
    fused.weight.copy_(layer.weight * scale.reshape(shape))
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale)
    return fused


def foldable(layer: nn.Module, nxt: nn.Module | None) -> bool:
    """Whether ``nxt`` is a BatchNorm that folds into ``layer`` (Conv2d + BatchNorm2d or Linear + BatchNorm1d)."""
    return (isinstance(layer, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d)) or (
        isinstance(layer, nn.Linear) and isinstance(nxt, nn.BatchNorm1d)
    )


def foldable_pairs(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(qualified name of the layer, layer, its BN) for every pair :func:`fuse_bn` folds, named as the fused
    layer is named in the fused model (and so in its ONNX export)."""
    out = []
    for pname, parent in model.named_modules():
        prefix = f"{pname}." if pname else ""
        if isinstance(parent, EmbeddingHead):
            out.append((f"{prefix}fc", parent.fc, parent.bn))
        elif isinstance(parent, nn.Sequential):
            mods = list(parent._modules.items())
            for (n1, m1), (_, m2) in zip(mods, mods[1:], strict=False):
                if foldable(m1, m2):
                    out.append((f"{prefix}{n1}", m1, m2))
    return out


def _fuse_sequential(seq: nn.Sequential) -> None:
    mods = list(seq._modules.items())
    out: list[tuple[str, nn.Module]] = []
    i = 0
    while i < len(mods):
        name, m = mods[i]
        nxt = mods[i + 1][1] if i + 1 < len(mods) else None
        if foldable(m, nxt):
            out.append((name, _fold(m, nxt)))
            i += 2
            continue
        out.append((name, m))
        i += 1
    seq._modules.clear()
    for name, m in out:
        seq._modules[name] = m


class _FusedHead(nn.Module):
    def __init__(self, fc: nn.Module) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1))


def fuse_bn(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of ``model`` with no BatchNorm left; ``model`` is untouched."""
    fused = copy.deepcopy(model).eval()

    def visit(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, EmbeddingHead):
                setattr(parent, name, _FusedHead(_fold(child.fc, child.bn)))
                continue
            if isinstance(child, nn.Sequential):
                _fuse_sequential(child)
            visit(child)

    visit(fused)
    left = [n for n, m in fused.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if left:
        raise ValueError(f"BatchNorm not preceded by a foldable layer: {left}")
    return fused
