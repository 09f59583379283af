"""A timm-style registry: one decorator, one builder, a spec per net with the paper's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn


@dataclass(frozen=True)
class NetSpec:
    """What a registered net is: its builder, input size and the figures the paper reports for it."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: int = 112
    family: str = "face"  # "face" (112x112 embedders) or "analysis" (Section 2-3, 224x224)
    paper: dict[str, float] = field(default_factory=dict)  # params_m, macs_m, f_mb, lfw, ...


_REGISTRY: dict[str, NetSpec] = {}


def register_net(
    name: str, *, input_size: int = 112, family: str = "face", paper: dict[str, float] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"net {name!r} registered twice")
        _REGISTRY[name] = NetSpec(name, fn, input_size, family, dict(paper or {}))
        return fn

    return deco


def list_nets(family: str | None = None) -> list[str]:
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> NetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown net {name!r}; known: {', '.join(_REGISTRY)}") from None


def create_net(name: str, **kwargs: object) -> nn.Module:
    return get_spec(name).builder(**kwargs)
