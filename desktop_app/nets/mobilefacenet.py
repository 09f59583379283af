"""MobileFaceNet (Chen et al., 2018), the paper's baseline, as in the common InsightFace/foamliu layout.

conv 3x3/2 64 -> dw 3x3 64 -> bottlenecks (expansion t, linear projection, residual where shapes allow),
as in the MobileFaceNet paper's Table 1
[(t2, 64, x5, s2), (t4, 128, x1, s2), (t2, 128, x6), (t4, 128, x1, s2), (t2, 128, x2)]
-> 1x1 512 -> GDC 7x7 -> linear 128 -> BN1d.
Paper (Table 11): 1.0 M params, 230 M MACs, F 73.4 MB; see `fdface analyze` for ours.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from desktop_app.nets.layers import GDC, ConvBNAct, EmbeddingHead
from desktop_app.nets.registry import register_net


class Bottleneck(nn.Module):
    """1x1 expand (BN, PReLU) -> 3x3 depthwise (BN, PReLU) -> 1x1 project (BN, linear) [+ residual]."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: str = "prelu") -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            ConvBNAct(cin, mid, 1, act=act),
            ConvBNAct(mid, mid, 3, stride, groups=mid, act=act),
            ConvBNAct(mid, cout, 1, act="none"),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


#: (expansion, out channels, repeats, stride of the first)
MOBILEFACENET_PLAN = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNet(nn.Module):
    def __init__(self, emb_dim: int = 128, act: str = "prelu") -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 64, 3, 2, act=act), ConvBNAct(64, 64, 3, 1, groups=64, act=act)]
        cin = 64
        for t, c, n, s in MOBILEFACENET_PLAN:
            for i in range(n):
                layers.append(Bottleneck(cin, c, s if i == 0 else 1, t, act))
                cin = c
        layers.append(ConvBNAct(cin, 512, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.gdc = GDC(512, 7)
        self.head = EmbeddingHead(512, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gdc(self.features(x)))


@register_net("mobilefacenet", paper={"params_m": 1.0, "macs_m": 230, "f_mb": 73.4, "lfw": 99.20, "pi4b_ms": 66.7,
                                      "rk3288_ms": 85.4, "tx2_ms": 40.3})
def mobilefacenet(**kw: object) -> MobileFaceNet:
    return MobileFaceNet(**kw)  # type: ignore[arg-type]


@register_net("mobilefacenet_relu")
def mobilefacenet_relu(**kw: object) -> MobileFaceNet:
    """MobileFaceNet with ReLU for PReLU: the like-for-like reference for ``fdfacenet_relu`` in the latency
    benchmark (ONNX Runtime fuses Conv + Relu but not PRelu, which costs MobileFaceNet's large maps most)."""
    return MobileFaceNet(act="relu", **kw)  # type: ignore[arg-type]
