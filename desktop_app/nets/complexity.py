"""Complexity as the paper counts it (SUMMARY.md section 1).

- params: every trainable parameter (conv, BN affine, PReLU slopes, FC).
- MACs: multiply-accumulates of convs and FCs (the paper's "FLOPs").
- F: feature-map traffic of the *unfused* model at batch 1: every Conv, BN, activation, FC and BN1d writes its
  output once and the next layer reads it once, 4 bytes per value: F = 2 * 4 * sum(output elements).
  MB here is 10^6 bytes, which reproduces the paper's 7.39 MB (FDFaceNet) and 73.4 MB (MobileFaceNet).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

_COUNTED = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU, nn.ReLU, nn.LeakyReLU, nn.MaxPool2d,
            nn.AvgPool2d, nn.AdaptiveAvgPool2d)


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    feature_bytes: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def macs_m(self) -> float:
        return self.macs / 1e6

    @property
    def f_mb(self) -> float:
        return self.feature_bytes / 1e6


def count(model: nn.Module, input_size: int = 112) -> Complexity:
    """Count params, MACs and F of ``model`` on one ``3 x input_size x input_size`` input."""
    macs = 0
    elements = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs, elements
        n_out = out.numel()
        elements += n_out
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            macs += n_out * (mod.in_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Linear):
            macs += n_out * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Complexity(params=params, macs=macs, feature_bytes=2 * 4 * elements)
