"""ShuffleFaceNet x1.0 (Martinez-Diaz et al., 2019): ShuffleNetV2 1.0x units for 112x112 faces.

conv 3x3/2 24 (no max-pool, so stage 2 starts at 56x56) -> stages [116 x4, 232 x8, 464 x4] (first unit of
each stride 2) -> 1x1 1024 -> GDC 7x7 -> linear 128 -> BN1d. PReLU throughout, as the face variant does.
Paper (Table 11): 1.4 M params, 143 M MACs, F 37.7 MB.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from desktop_app.nets.layers import GDC, ConvBNAct, EmbeddingHead
from desktop_app.nets.registry import register_net


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: str = "prelu") -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        bin_ = cin if stride == 2 else cin // 2
        self.branch2 = nn.Sequential(
            ConvBNAct(bin_, half, 1, act=act),
            ConvBNAct(half, half, 3, stride, groups=half, act="none"),
            ConvBNAct(half, half, 1, act=act),
        )
        self.branch1 = (
            nn.Sequential(ConvBNAct(cin, cin, 3, 2, groups=cin, act="none"), ConvBNAct(cin, half, 1, act=act))
            if stride == 2
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out)


class ShuffleFaceNet(nn.Module):
    def __init__(self, stages: tuple[int, ...] = (116, 232, 464), repeats: tuple[int, ...] = (4, 8, 4),
                 emb_dim: int = 128, act: str = "prelu") -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 24, 3, 2, act=act)]
        cin = 24
        for c, n in zip(stages, repeats, strict=True):
            for i in range(n):
                layers.append(ShuffleUnit(cin, c, 2 if i == 0 else 1, act))
                cin = c
        layers.append(ConvBNAct(cin, 1024, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.gdc = GDC(1024, 7)
        self.head = EmbeddingHead(1024, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gdc(self.features(x)))


@register_net("shufflefacenet", paper={"params_m": 1.4, "macs_m": 143, "f_mb": 37.7, "lfw": 99.21, "pi4b_ms": 54.8,
                                       "rk3288_ms": 75.5, "tx2_ms": 54.2})
def shufflefacenet(**kw: object) -> ShuffleFaceNet:
    return ShuffleFaceNet(**kw)  # type: ignore[arg-type]
