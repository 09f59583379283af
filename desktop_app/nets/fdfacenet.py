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


class _ConvStackNet(nn.Module):
    """features (3x3 stages, padding 1) -> (GDC) -> FC -> BN1d; the parameter names every checkpoint uses."""

    def _finish(self, layers: list[nn.Module], cin: int, size: int, gdc: bool, emb_dim: int) -> None:
        self.features = nn.Sequential(*layers)
        self.gdc = GDC(cin, size) if gdc else nn.Identity()
        self.head = EmbeddingHead(cin if gdc else cin * size * size, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gdc(self.features(x)))


def _out_size(size: int, stride: int) -> int:
    return (size + 2 - 3) // stride + 1


class FDFaceNet(_ConvStackNet):
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
            cin, size = cout, _out_size(size, stride)
        self._finish(layers, cin, size, gdc, emb_dim)


@register_net("fdfacenet", paper={"params_m": 3.17, "macs_m": 130, "f_mb": 7.39, "lfw": 99.35, "pi4b_ms": 44.1,
                                  "rk3288_ms": 54.6, "tx2_ms": 9.5})
def fdfacenet(act: str = "prelu", **kw: object) -> FDFaceNet:
    return FDFaceNet(act=act, **kw)  # type: ignore[arg-type]


@register_net("fdfacenet_relu", paper={"params_m": 3.17, "macs_m": 130})
def fdfacenet_relu(**kw: object) -> FDFaceNet:
    """FDFaceNet with ReLU: ONNX Runtime fuses Conv+ReLU, it does not fuse PReLU (the activation study)."""
    return FDFaceNet(act="relu", **kw)  # type: ignore[arg-type]


@register_net("fdfn_star", paper={"params_m": 7.10, "macs_m": 134, "f_mb": 4.9, "lfw": 99.31, "pi4b_ms": 55.6,
                                  "rk3288_ms": 66.2, "tx2_ms": 8.7})
def fdfn_star(act: str = "prelu", **kw: object) -> FDFaceNet:
    """FDFN*: FDFaceNet without the GDC, the FC reads the whole 512x4x4 map."""
    return FDFaceNet(gdc=False, act=act, **kw)  # type: ignore[arg-type]


# --- Ablation baselines of Tables 9-10 (reconstructed; the paper only describes them) ---------------------------

#: NFN: Table 7's channels with the usual stage-wise down-sampling, stride 2 at convs 1, 3, 5, 6, 7
#: (112 -> 56, 28, 14, 7, 4). The same placement gives CNN-8's figures at 224 (analysis.py).
NFN_PLAN: tuple[tuple[int, int], ...] = (
    (48, 2), (128, 1), (128, 2), (256, 1), (192, 2), (192, 2), (256, 2), (512, 1),
)


@register_net("nfn", paper={"macs_m": 656, "f_mb": 21.92, "lfw": 99.26, "pi4b_ms": 84.4, "tx2_ms": 9.6})
def nfn(act: str = "prelu", **kw: object) -> FDFaceNet:
    """NFN (NFaceNet, Table 10): standard CONV-P, stage-wise down-sampling, GDC 4x4 + FC + BN1d.

    Ours: 3.17 M params, 653.5 M MACs [656, -0.4 %; with the paper's elementwise ops, 656.2],
    F 21.91 MB [21.92, -0.04 %].
    Of the 56 placements of 5 stride-2 convs among 8, this one matches NFN, NFN* and CNN-8 at once.
    """
    return FDFaceNet(plan=NFN_PLAN, act=act, **kw)  # type: ignore[arg-type]


@register_net("nfn_star", paper={"params_m": 7.10, "macs_m": 660, "lfw": 99.13, "pi4b_ms": 87.5, "tx2_ms": 8.2})
def nfn_star(act: str = "prelu", **kw: object) -> FDFaceNet:
    """NFN* (Table 9): NFN without the GDC, the FC reads the whole 512x4x4 map.

    Ours: 7.10 M params [7.10], 657.4 M MACs [660, -0.4 %; with the paper's elementwise ops, 660.1].
    """
    return FDFaceNet(plan=NFN_PLAN, gdc=False, act=act, **kw)  # type: ignore[arg-type]


class DWFaceNet(_ConvStackNet):
    """DWFN: NFN with convs 2..8 as DSConv-P (3x3 depthwise + BN + PReLU, 1x1 pointwise + BN + PReLU, Fig. 4(c)).

    Conv 1 (3 input channels) stays a CONV-P, as in MobileNet-style nets; strides as NFN's, on the depthwise.
    """

    def __init__(self, width: float = 1.25, gdc: bool = False, emb_dim: int = 512, act: str = "prelu",
                 input_size: int = 112) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = 3, input_size
        for i, (c, stride) in enumerate(NFN_PLAN):
            cout = int(round(c * width))
            if i == 0:
                layers.append(ConvBNAct(cin, cout, 3, stride, act=act))
            else:
                layers.append(nn.Sequential(ConvBNAct(cin, cin, 3, stride, groups=cin, act=act),
                                            ConvBNAct(cin, cout, 1, 1, act=act)))
            cin, size = cout, _out_size(size, stride)
        self._finish(layers, cin, size, gdc, emb_dim)


@register_net("dwfn_star_x1.25", paper={"macs_m": 132, "f_mb": 26.70, "lfw": 99.20, "pi4b_ms": 51.1, "tx2_ms": 13.9})
def dwfn_star_x125(act: str = "prelu", **kw: object) -> DWFaceNet:
    """DWFN* x1.25 (Table 10): DWFN with channels x1.25 and no GDC (FC from 640x4x4).

    Ours: 5.77 M params, 127.7 M MACs [132, -3.3 %; with the paper's elementwise ops, 132.7, +0.5 %],
    F 39.92 MB against the paper's 26.70. The paper's F is what 2 written maps per conv give (26.61 MB), the
    convention of its analysis nets, not the 3 (conv, BN, PReLU) it counts for NFN / FDFN; we count all face
    nets alike. With GDC and x1.0 this net has 0.61 M params (the paper: "less than 0.6 M").
    """
    return DWFaceNet(width=1.25, gdc=False, act=act, **kw)  # type: ignore[arg-type]
