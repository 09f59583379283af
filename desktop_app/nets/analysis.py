"""Section 2-3 analysis family (224x224 input, 1000-way classifier head): CNN-8, CNN-8-DS, CNN-14-DS, CNN-8-FD,
CNN-8-FD-Pooling. The paper only describes these nets; this module reconstructs them from the figures of its
Tables 3, 4 and 5.

Reconstruction (each choice is pinned by the paper's numbers, see the per-net docstrings and tests/test_nets.py):

- Channels are Table 7's plan (48, 128, 128, 256, 192, 192, 256, 512), the VIPLFaceNet plan FDFaceNet keeps
  (Section 4.2), scaled by the width factor; the head is global average pooling + FC to 1000 classes. With
  these, CNN-8's parameter count is 2.90 M (convs) + 0.51 M (FC) = 3.41 M [paper 3.4].
- CNN-8 (stage-wise down-sampling): stride 2 at convs 1, 3, 5, 6, 7 (224 -> 112, 56, 28, 14, 7). Of the 56 ways
  to place 5 stride-2 convs among 8, this is the one that gives the paper's B and F; the same placement at
  112x112 with a GDC head reproduces NFN / NFN* of Tables 9-10 as well (see fdfacenet.py).
- CNN-8-FD (fast down-sampling): stride 2 at convs 1-5, convs 6-8 at 7x7: FDFaceNet's layout at 224.
- CNN-8-DS: CNN-8 with convs 2-8 replaced by 3x3 depthwise + 1x1 pointwise (stride on the depthwise).
- CNN-14-DS: CNN-8-DS plus 6 stride-1 DS blocks repeating a stage's width: one 128 @ 56x56, two 192 @ 28x28,
  two 192 @ 14x14, one 256 @ 7x7. Found by searching all placements of 6 extra blocks against the four widths
  of Table 4; it is the unique close fit.
- CNN-8-FD-Pooling: CNN-8-FD with convs 2-5 at stride 1, each followed by a 2x2 max-pool (conv 1 keeps stride 2).

How the paper counted, as far as its figures show:

- F: our :func:`~desktop_app.nets.complexity.count` (2 x 4 bytes per written value) reproduces Tables 3-4's F
  *exactly* when each conv layer writes two maps (conv, activation), not three (conv, BN, activation) as in the
  face nets of Tables 9-11. So these nets are built in their inference form: conv with bias (a BN folded in,
  eq. 8-11) + ReLU. The timing is the same as the BN-fused ONNX export of a conv+BN+ReLU net. Parameters: the
  paper's (Table 3) are those of the conv + BN training form, one more per conv channel than our bias.
- B: the paper's "computation" for these nets is larger than the MACs of convs and FC by about 3 operations per
  conv output value (what FLOP counters such as ptflops add for BN, 2, and the activation, 1) plus 1 per
  max-pool input value. :func:`paper_style_macs` adds them; it lands within 1 % of every B of Tables 3-4 (and
  of the face nets' B in Tables 9-11), while our plain MACs are 0.4-7 % below them (most for the DS nets,
  whose many thin layers carry more elementwise work per MAC).
- CNN-8-FD-Pooling's F (10.83 / 16.27 MB) is not what the net writes: it equals CNN-8-FD's F plus 4 bytes per
  pooled value, as if the pre-pool conv maps had been counted at their pooled size. We report what the net
  really writes (25.4 / 38.1 MB) and say so.
- Table 5 gives the same nets on 32x32 CIFAR-10 input: its B and F are Tables 3-4's divided by 49 = (224/32)^2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from desktop_app.nets.registry import register_net

#: Table 7's channel plan (the VIPLFaceNet plan), which the analysis nets share.
BASE_CHANNELS: tuple[int, ...] = (48, 128, 128, 256, 192, 192, 256, 512)
#: Stage-wise down-sampling of CNN-8 (and NFN): stride 2 at convs 1, 3, 5, 6, 7.
STAGED_STRIDES: tuple[int, ...] = (2, 1, 2, 1, 2, 2, 2, 1)
#: Fast down-sampling of CNN-8-FD (and FDFaceNet): stride 2 at convs 1-5.
FAST_STRIDES: tuple[int, ...] = (2, 2, 2, 2, 2, 1, 1, 1)
#: CNN-14-DS: (index into the 8-layer plan, how many extra stride-1 DS blocks follow it).
CNN14_EXTRA_BLOCKS: dict[int, int] = {2: 1, 4: 2, 5: 2, 6: 1}

#: One layer: (kind "conv" | "ds", out channels, stride, 2x2 max-pool after it).
Layer = tuple[str, int, int, bool]


class ConvReLU(nn.Sequential):
    """3x3 conv with bias (BN folded in) + ReLU: two written maps per layer, as the paper counts F here."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.ReLU(inplace=True))


class DSReLU(nn.Sequential):
    """Depthwise-separable conv in inference form: 3x3 depthwise + ReLU, 1x1 pointwise + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=True), nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, 1, 0, bias=True), nn.ReLU(inplace=True),
        )


class AnalysisNet(nn.Module):
    """A plan of conv / DS layers (optionally max-pooled), then global average pooling and an FC classifier."""

    def __init__(self, plan: tuple[Layer, ...], num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for kind, cout, stride, pool in plan:
            if kind == "conv":
                layers.append(ConvReLU(cin, cout, stride))
            elif kind == "ds":
                layers.append(DSReLU(cin, cout, stride))
            else:
                raise ValueError(f"unknown layer kind {kind!r}")
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _widths(width: float) -> list[int]:
    return [int(round(c * width)) for c in BASE_CHANNELS]


def cnn8_plan(width: float = 1.0, strides: tuple[int, ...] = STAGED_STRIDES) -> tuple[Layer, ...]:
    return tuple(("conv", c, s, False) for c, s in zip(_widths(width), strides, strict=True))


def cnn8_ds_plan(width: float = 1.0, extra: dict[int, int] | None = None) -> tuple[Layer, ...]:
    """First layer a standard conv, the rest DS; ``extra`` adds stride-1 DS blocks after a layer."""
    plan: list[Layer] = []
    for i, (c, s) in enumerate(zip(_widths(width), STAGED_STRIDES, strict=True)):
        plan.append(("conv" if i == 0 else "ds", c, s, False))
        plan += [("ds", c, 1, False)] * (extra or {}).get(i, 0)
    return tuple(plan)


def cnn14_ds_plan(width: float = 1.0) -> tuple[Layer, ...]:
    return cnn8_ds_plan(width, CNN14_EXTRA_BLOCKS)


def cnn8_fd_plan(width: float = 1.0) -> tuple[Layer, ...]:
    return cnn8_plan(width, FAST_STRIDES)


def cnn8_fd_pooling_plan(width: float = 1.0) -> tuple[Layer, ...]:
    """CNN-8-FD with the stride-2 convs 2-5 turned into stride-1 convs followed by 2x2 max-pooling."""
    return tuple(
        ("conv", c, 2 if i == 0 else 1, 1 <= i <= 4) for i, c in enumerate(_widths(width))
    )


@torch.no_grad()
def paper_style_macs(model: nn.Module, input_size: int) -> int:
    """MACs of convs and FCs plus the elementwise work the paper's B appears to include: 3 ops per conv output
    value (BN 2 + activation 1, as ptflops-like counters count them) and 1 per max-pool input value.

    A reconstruction check, not our headline figure (:func:`~desktop_app.nets.complexity.count` is).
    """
    total = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += out.numel() * ((mod.in_channels // mod.groups) * kh * kw + 3)
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features
        elif isinstance(mod, nn.MaxPool2d):
            total += inp[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear | nn.MaxPool2d)]
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def _reg(name: str, **paper: float):
    return register_net(name, input_size=224, family="analysis", paper=paper)


# Paper figures: params_m, macs_m (B), f_mb (Tables 3-4); pi4b_ms (Raspberry Pi 4B, 4-core NCNN), tx2_ms
# (Jetson TX2 GPU, PyTorch), pi4b_mops (Table 3's B / t, M/s); cifar10_* (Table 5, 32x32 input).
# Ours (count(), conv+FC MACs / F / params; "B*" = paper_style_macs) in each docstring.


@_reg("cnn8", params_m=3.4, macs_m=2600, f_mb=58.20, pi4b_ms=385.3, pi4b_mops=6748, tx2_ms=9.8,
      cifar10_acc=90.53, cifar10_macs_m=53, cifar10_f_mb=1.19)
def cnn8(**kw: object) -> AnalysisNet:
    """CNN-8: 8 standard 3x3 convs, stage-wise down-sampling (Table 3; B given as 2.6 G, = 6748 M/s x 385.3 ms).

    Ours: 3.41 M params [3.4], 2589 M MACs [2600, -0.4 %] (B* 2600), F 58.22 MB [58.20, +0.03 %].
    """
    return AnalysisNet(cnn8_plan(), **kw)  # type: ignore[arg-type]


@_reg("cnn8_ds", params_m=0.9, macs_m=333, f_mb=84.86, pi4b_ms=159.8, pi4b_mops=2083, tx2_ms=13.4,
      cifar10_acc=84.62, cifar10_macs_m=6.8, cifar10_f_mb=1.73)
def cnn8_ds(**kw: object) -> AnalysisNet:
    """CNN-8-DS: CNN-8 with convs 2-8 depthwise-separable (Table 3).

    Ours: 0.850 M params (0.852 M in the conv + BN training form the paper counted) [0.9],
    317.6 M MACs [333, -4.6 %] (B* 333.5, +0.1 %), F 84.86 MB [84.86, exact].
    """
    return AnalysisNet(cnn8_ds_plan(), **kw)  # type: ignore[arg-type]


def _width_family(plan: Callable[[float], list], rows: dict[str, tuple[dict[str, float], str]]) -> None:
    """Register one net per width of a Table 4 family: ``rows`` maps the registered name to (paper figures, what we
    measure against them); the factory builds ``AnalysisNet(plan(width))``."""
    for name, (paper, doc) in rows.items():
        width = float(name.rsplit("_x", 1)[1])

        def factory(width: float = width, **kw: object) -> AnalysisNet:
            return AnalysisNet(plan(width), **kw)  # type: ignore[arg-type]

        factory.__doc__ = doc
        _reg(name, **paper)(factory)


_width_family(cnn14_ds_plan, {
    "cnn14_ds_x0.5": ({"macs_m": 132, "f_mb": 55.08, "pi4b_ms": 63.0, "tx2_ms": 23.7},
        'CNN-14-DS x0.5 (Table 4). Ours: 0.41 M params, 122.6 M MACs [132, -7.1 %] (B* 132.9, +0.7 %), F '
        '55.08 MB [55.08, exact].'),
    "cnn14_ds_x0.75": ({"macs_m": 276, "f_mb": 82.61, "pi4b_ms": 116.8, "tx2_ms": 23.2},
        'CNN-14-DS x0.75 (Table 4). Ours: 0.72 M params, 261.3 M MACs [276, -5.3 %] (B* 276.8, +0.3 %), F '
        '82.61 MB [82.61, exact].'),
    "cnn14_ds_x1.0": ({"params_m": 1.1, "macs_m": 472, "f_mb": 110.14, "pi4b_ms": 196.4, "pi4b_mops": 2403,
        "tx2_ms": 23.1, "cifar10_acc": 85.34, "cifar10_macs_m": 9.6, "cifar10_f_mb": 2.25},
        'CNN-14-DS (x1.0; Tables 3, 4, 5). Ours: 1.09 M params [1.1], 451.5 M MACs [472, -4.3 %] (B* '
        '472.2, +0.04 %), F 110.15 MB [110.14, +0.01 %].'),
    "cnn14_ds_x1.25": ({"params_m": 1.5, "macs_m": 719, "f_mb": 137.68, "pi4b_ms": 282.5, "pi4b_mops": 2545,
        "tx2_ms": 22.8},
        'CNN-14-DS x1.25 (Tables 3, 4). Ours: 1.54 M params [1.5], 693.3 M MACs [719, -3.6 %] (B* 719.2, '
        '+0.03 %), F 137.68 MB [137.68, exact].'),
})


_width_family(cnn8_fd_plan, {
    "cnn8_fd_x0.5": ({"macs_m": 126, "f_mb": 9.69, "pi4b_ms": 38.6, "tx2_ms": 9.2},
        'CNN-8-FD x0.5 (Table 4). Ours: 0.98 M params, 124.4 M MACs [126, -1.3 %] (B* 126.3, +0.2 %), F '
        '9.69 MB [9.69, exact].'),
    "cnn8_fd_x0.75": ({"macs_m": 276, "f_mb": 14.53, "pi4b_ms": 79.9, "tx2_ms": 8.6},
        'CNN-8-FD x0.75 (Table 4). Ours: 2.02 M params, 273.7 M MACs [276, -0.8 %] (B* 276.4, +0.1 %), F '
        '14.54 MB [14.53, +0.1 %].'),
    "cnn8_fd_x1.0": ({"macs_m": 485, "f_mb": 19.38, "pi4b_ms": 135.2, "tx2_ms": 8.4, "cifar10_acc": 85.42,
        "cifar10_macs_m": 9.8, "cifar10_f_mb": 0.40},
        "CNN-8-FD (x1.0; Tables 4, 5): FDFaceNet's layout at 224 with a classifier head. Ours: 3.41 M "
        'params, 481.0 M MACs [485, -0.8 %] (B* 484.6, -0.1 %), F 19.38 MB [19.38, exact].'),
    "cnn8_fd_x1.25": ({"macs_m": 750, "f_mb": 24.22, "pi4b_ms": 208.4, "tx2_ms": 8.2},
        'CNN-8-FD x1.25 (Table 4). Ours: 5.17 M params, 746.3 M MACs [750, -0.5 %] (B* 750.9, +0.1 %), F '
        '24.22 MB [24.22, exact].'),
})


_width_family(cnn8_fd_pooling_plan, {
    "cnn8_fd_pooling_x0.5": ({"macs_m": 406, "f_mb": 10.83, "pi4b_ms": 70.6, "tx2_ms": 10.0},
        'CNN-8-FD-Pooling x0.5 (Table 4). Ours: 0.98 M params, 400.8 M MACs [406, -1.3 %] (B* 406.3, +0.1 '
        "%); F 25.41 MB against the paper's 10.83: the paper's figure is CNN-8-FD's plus 4 bytes per "
        'pooled value (10.82), not the maps this net writes (module docstring).'),
    "cnn8_fd_pooling_x0.75": ({"macs_m": 903, "f_mb": 16.27, "pi4b_ms": 122.2, "tx2_ms": 9.4},
        'CNN-8-FD-Pooling x0.75 (Table 4). Ours: 2.02 M params, 895.5 M MACs [903, -0.8 %] (B* 903.7, '
        "+0.1 %); F 38.11 MB against the paper's 16.27 (its figure = CNN-8-FD x0.75's + 4 bytes per "
        'pooled value, 16.22).'),
})
