"""Warm start: continue training from a shipped, BN-fused ONNX export of the same net.

The export has no BatchNorm left (``desktop_app.nets.fuse``): each conv / FC carries ``W' = W * gamma / sigma`` and
a bias ``b'``. To train again the BNs are put back so that the unfused net computes exactly what the export does:
the layer takes ``W'`` (no bias), and its BN gets the running statistics ``mu, var`` of the layer's output measured
on real faces, ``gamma = sqrt(var + eps)`` and ``beta = mu + b'``. In eval mode that is ``z + b'`` exactly; in
training mode, where BN uses the batch's own statistics, it is the same up to batch noise, so the first steps do
not throw away what the first run learnt. The distillation head (512 -> teacher dim), which the export does not
hold, is refitted by ridge regression from the student's embeddings to the teacher's on the same faces.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from desktop_app.nets.fuse import foldable_pairs

log = logging.getLogger(__name__)


def read_onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


@torch.no_grad()
def unfuse_from_onnx(model: nn.Module, onnx_path: str | Path, x: torch.Tensor) -> nn.Module:
    """Load a fused export into ``model`` (same net, BNs in place); ``x``: a batch of real inputs for the BN
    statistics (a few hundred faces). Returns ``model`` in eval mode; raises if a weight is missing."""
    w = read_onnx_weights(onnx_path)
    pairs = foldable_pairs(model)
    used = set()
    for name, layer, bn in pairs:
        kw, kb = f"{name}.weight", f"{name}.bias"
        if kw not in w or kb not in w:
            raise ValueError(f"{onnx_path}: no fused weights for {name} (is it an export of this net?)")
        if tuple(w[kw].shape) != tuple(layer.weight.shape):
            raise ValueError(f"{onnx_path}: {kw} has shape {w[kw].shape}, the net wants {tuple(layer.weight.shape)}")
        layer.weight.copy_(torch.from_numpy(w[kw].copy()))
        if layer.bias is not None:
            layer.bias.zero_()
        # exact identity first: BN(z) = z + b'
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(w[kb].copy()))
        used |= {kw, kb}
    # any other parameter of the export (e.g. PReLU slopes) is loaded by name
    sd = model.state_dict()
    for k, v in w.items():
        if k not in used and k in sd and tuple(sd[k].shape) == v.shape:
            sd[k].copy_(torch.from_numpy(v))
            used.add(k)
    left = sorted(set(w) - used)
    if left:
        raise ValueError(f"{onnx_path}: weights the net has no place for: {left[:5]}")
    bn_params = {id(p) for _, _, bn in pairs for p in bn.parameters()}
    missing = [n for n, p in model.named_parameters() if n not in used and id(p) not in bn_params]
    if missing:
        raise ValueError(f"{onnx_path}: no weights in the export for {missing[:5]} (is it an export of this net?)")
    # statistics of every BN's input, measured in one eval pass (the net is already exact upstream)
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(mod, inp, _out):
        z = inp[0].float()
        dims = [0, 2, 3] if z.dim() == 4 else [0]
        stats[mod] = (z.mean(dims), z.var(dims, unbiased=False))

    handles = [bn.register_forward_hook(hook) for _, _, bn in pairs]
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    for _, _, bn in pairs:
        mu, var = stats[bn]
        b = bn.bias.clone()
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mu + b)
    log.info("warm start from %s: %d layer/BN pairs restored", onnx_path, len(pairs))
    return model


@torch.no_grad()
def fit_head(head: nn.Linear, student_emb: np.ndarray, teacher_emb: np.ndarray, ridge: float = 0.1) -> float:
    """Ridge least-squares fit of the distillation head; returns the mean cosine it reaches on these faces.

    Plain least squares is ill-conditioned here (weights of norm ~800 that feed on low-variance directions of the
    embedding): eval-mode loss 0.17, but 0.90 in training mode, where BN's batch statistics move exactly those
    directions a little. A ridge of 0.1 x the mean eigenvalue gives 0.155 eval / 0.174 training-mode loss on
    held-out faces (4096 faces fitted, the first run ended at 0.165)."""
    a = np.hstack([student_emb, np.ones((len(student_emb), 1), np.float32)]).astype(np.float64)
    g = a.T @ a
    sol = np.linalg.solve(g + ridge * np.trace(g) / len(g) * np.eye(len(g)), a.T @ teacher_emb.astype(np.float64))
    head.weight.copy_(torch.from_numpy(sol[:-1].T.astype(np.float32)))
    head.bias.copy_(torch.from_numpy(sol[-1].astype(np.float32)))
    p = a @ sol
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return float((p * teacher_emb).sum(1).mean())


def init_arcface(head: nn.Module, student_emb: np.ndarray, labels: np.ndarray) -> int:
    """Point each ArcFace class row at the unit mean of its faces' embeddings; returns how many classes were set.

    From a warm start random rows are near-orthogonal to every face: the margin loss's first steps would be spent
    finding classes the net already separates, and their large gradients would pull the trained embedding towards
    random directions. Rows get unit norm, larger than a fresh row's, so they turn more slowly (the head starts
    where it should be). Faces labelled -1 (unknown) and classes without faces leave rows as they were."""
    w = head.weight
    known = labels >= 0
    emb, labels = student_emb[known], labels[known]
    sums = np.zeros((w.shape[0], student_emb.shape[1]), np.float64)
    np.add.at(sums, labels, emb / np.linalg.norm(emb, axis=1, keepdims=True))
    seen = np.flatnonzero(np.linalg.norm(sums, axis=1) > 0)
    rows = sums[seen] / np.linalg.norm(sums[seen], axis=1, keepdims=True)
    with torch.no_grad():
        w[torch.from_numpy(seen)] = torch.from_numpy(rows.astype(np.float32))
    return len(seen)
