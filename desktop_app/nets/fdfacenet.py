"""FDFaceNet and its ablations (Wang, Xu, Lu, Acta Electronica Sinica 2023, 51(8), Table 7, Tables 9-10).

Fast down-sampling: every stride-2 layer comes first, as a plain 3x3 stride-2 CONV-P; features are then
extracted at 4x4 with stride-1 3x3 convs; a GDC (4x4 depthwise) and FC + BN1d give the 512-d embedding.

Figures matched by :mod:`desktop_app.nets.complexity` (paper in brackets):
FDFaceNet 3.17 M params [3.17], 129.4 M MACs [130], F 7.38 MB [7.39];
FDFN* (no GDC, FC from 512x4x4) 7.10 M params [7.10], 133.6 M MACs [134].
"""

from __future__ import annotations

import torch
import torch.nn as nn

from desktop_app.nets.layers import GDC, ConvBNAct, EmbeddingHead
from desktop_app.nets.registry import register_net

#: Table 7: (out channels, stride) of CONV-P 1..8.
FDFACENET_PLAN: tuple[tuple[int, int], ...] = (
    (48, 2), (128, 2), (128, 2), (256, 2), (192, 2), (192, 1), (256, 1), (512, 1),
)


class FDFaceNet(nn.Module):
    """CONV-P 1..8 -> (GDC) -> FC -> BN1d. ``act`` swaps PReLU for a fusable activation (study in issue 7)."""

    def __init__(
        self, plan: tuple[tuple[int, int], ...] = FDFACENET_PLAN, gdc: bool = True, emb_dim: int = 512,
        act: str = "prelu", input_size: int = 112,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = 3, input_size
        for cout, stride in plan:
            layers.append(ConvBNAct(cin, cout, 3, stride, act=act))
            cin, size = cout, (size + 2 - 3) // stride + 1
        self.features = nn.Sequential(*layers)
        self.gdc = GDC(cin, size) if gdc else nn.Identity()
        self.head = EmbeddingHead(cin if gdc else cin * size * size, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gdc(self.features(x)))


@register_net("fdfacenet", paper={"params_m": 3.17, "macs_m": 130, "f_mb": 7.39, "lfw": 99.35})
def fdfacenet(act: str = "prelu", **kw: object) -> FDFaceNet:
    return FDFaceNet(act=act, **kw)  # type: ignore[arg-type]


@register_net("fdfacenet_relu", paper={"params_m": 3.17, "macs_m": 130})
def fdfacenet_relu(**kw: object) -> FDFaceNet:
    """FDFaceNet with ReLU: ONNX Runtime fuses Conv+ReLU, it does not fuse PReLU (the activation study)."""
    return FDFaceNet(act="relu", **kw)  # type: ignore[arg-type]


@register_net("fdfn_star", paper={"params_m": 7.10, "macs_m": 134, "f_mb": 4.9, "lfw": 99.31})
def fdfn_star(act: str = "prelu", **kw: object) -> FDFaceNet:
    """FDFN*: FDFaceNet without the GDC, the FC reads the whole 512x4x4 map."""
    return FDFaceNet(gdc=False, act=act, **kw)  # type: ignore[arg-type]
