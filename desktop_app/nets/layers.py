"""Building blocks shared by the face nets: conv+BN+activation, depthwise-separable, GDC, embedding head."""

from __future__ import annotations

import torch
import torch.nn as nn

ACTIVATIONS = ("prelu", "relu", "leakyrelu", "none")


def make_act(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(channels)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.1, inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; one of {ACTIVATIONS}")


class ConvBNAct(nn.Sequential):
    """k x k conv (no bias) + BN + activation: the paper's CONV-P when act='prelu'."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: str = "prelu",
        padding: int | None = None,
    ) -> None:
        pad = k // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            make_act(act, cout),
        )


class DSConv(nn.Sequential):
    """Depthwise-separable conv (DSConv-P): 3x3 depthwise + BN + act, then 1x1 pointwise + BN + act."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: str = "prelu") -> None:
        super().__init__(
            ConvBNAct(cin, cin, 3, stride, groups=cin, act=act),
            ConvBNAct(cin, cout, 1, 1, act=act),
        )


class GDC(nn.Sequential):
    """Global depthwise conv over the whole k x k map (no padding), then BN: a learned weighted pooling."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, k, 1, 0, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )


class EmbeddingHead(nn.Module):
    """Flatten -> FC -> BN1d: the 512-d embedding (FDFaceNet's FC1 + BN-1d)."""

    def __init__(self, in_features: int, dim: int = 512) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, dim, bias=False)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(torch.flatten(x, 1)))
