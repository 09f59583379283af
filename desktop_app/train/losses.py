"""Losses: ArcFace (additive angular margin), cosine embedding distillation and relational (similarity) distillation."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ArcFace(nn.Module):
    """ArcFace head: logits s * cos(theta + m) for the true class, s * cos(theta) otherwise (s=64, m=0.5)."""

    def __init__(self, emb_dim: int, n_classes: int, s: float = 64.0, m: float = 0.5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, emb_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.s, self.m = s, m
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb.float()), F.normalize(self.weight))
        # sin's gradient is infinite where |cos| = 1 (a face on a class row, or rows that coincide), and the
        # unselected branch of the where below still multiplies it by zero: NaN. A floor keeps it finite.
        sin = torch.sqrt((1.0 - cos * cos).clamp(1e-6, 1))
        phi = cos * self.cos_m - sin * self.sin_m
        phi = torch.where(cos > self.th, phi, cos - self.mm)  # keep the target logit monotonic in theta
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        logits = torch.where(onehot, phi, cos) * self.s
        return F.cross_entropy(logits, labels)


def cosine_distill(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cos(student, teacher), averaged; ``teacher`` is already unit length."""
    return (1.0 - (F.normalize(student.float(), dim=1) * teacher).sum(1)).mean()


def relational_distill(student: torch.Tensor, teacher: torch.Tensor, gram: torch.Tensor | None = None) -> torch.Tensor:
    """Similarity-preserving distillation: mean squared difference between the in-batch cosine-similarity
    matrices of the student's embedding and the teacher's (off the diagonal). It shapes the geometry of the
    embedding the app compares (the 512-d one), which the head-based ``cosine_distill`` only constrains
    through a linear map. ``teacher`` is already unit length; dimensions may differ. ``gram``, when given, is the
    target similarity matrix itself (e.g. the mean of two teachers' matrices)."""
    s = F.normalize(student.float(), dim=1)
    gs = s @ s.T
    gt = gram if gram is not None else teacher @ teacher.T
    n = gs.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=gs.device)
    return ((gs - gt)[off] ** 2).mean()
