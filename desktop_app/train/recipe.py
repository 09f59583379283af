"""Recipes are TOML files in recipes/: data, model, loss, schedule, seed. Typed here, validated on load."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from desktop_app.train.augment import AugmentConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    seed: int = 0
    net: str = "fdfacenet"
    net_kwargs: dict[str, Any] = field(default_factory=dict)
    # data
    data_root: str = "../shared/datasets/faces112"
    index: str = "train/index.csv"
    image_folder: str = ""  # a plain ImageFolder instead of the index CSV
    val_source: str = "celeba-wild"
    val_ids: int = 50
    # loss: "distill", "arcface" or "both" (both: distillation on all, ArcFace on labelled samples)
    loss: str = "distill"
    teacher: str = "../shared/teachers/mobilefacenet-foamliu/MobileFaceNet.onnx"
    teacher_dim: int = 128
    teacher_backend: str = "ort"  # "ort" (ONNX Runtime) or "torch" (train/onnx_torch.py, bf16 autocast where native)
    # a second teacher, too slow to run on every step: its targets of each crop and its mirror are computed once
    # and cached; it supervises the un-mixed faces of each batch through its own linear head
    teacher2: str = ""
    teacher2_dim: int = 512
    teacher2_weight: float = 1.0
    mixup: float = 0.5  # fraction of each batch replaced by mixed faces (distillation only)
    relational: float = 0.0  # weight of the in-batch similarity-matrix term on the 512-d embedding (distillation)
    # hard-example mining (desktop_app/train/mining.py): this fraction of each batch is made of pairs, a face of
    # the epoch's order and one of its pairs_k nearest faces by the teacher (the second teacher's when there is one)
    pairs: float = 0.0
    pairs_k: int = 10
    arcface_s: float = 64.0
    arcface_m: float = 0.5
    arcface_weight: float = 1.0
    # optimisation (the paper's ArcFace recipe: lr 0.01, batch 256, wd 5e-4, steps at 160k/210k/250k/290k)
    batch: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" (to 0 at the end of the budget) or "step"
    warmup: float = 0.0  # fraction of the budget over which the cosine's learning rate ramps up from 0
    milestones: tuple[int, ...] = ()
    minutes: float = 0.0  # wall-clock budget (0: none); the run ends annealed when it is spent
    steps: int = 0  # step budget (0: none); with both, whichever ends first
    # warm start: a BN-fused ONNX export of the same net to continue from (desktop_app/train/warmstart.py)
    init_onnx: str = ""
    init_faces: int = 4096  # faces used for the BN statistics and the distillation head's refit
    # run
    threads: int = 2
    bf16: bool = True
    channels_last: bool = True
    checkpoint_minutes: float = 5.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def resolve(self, p: str) -> Path:
        return Path(p).expanduser() if Path(p).expanduser().is_absolute() else (self._root / p).resolve()

    _root: Path = Path(".")


def scheduled_lr(r: Recipe, progress: float, step: int = 0) -> float:
    """The learning rate at ``progress`` (0..1) of the budget, or at ``step`` for the "step" schedule: the one
    schedule of the CPU loop and the GPU run."""
    if r.schedule == "step":
        return r.lr * 0.1 ** sum(step >= m for m in r.milestones)
    lr = 0.5 * r.lr * (1 + math.cos(math.pi * progress))
    return lr * progress / r.warmup if progress < r.warmup else lr


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read recipe {path}: {exc}") from None
    aug = raw.pop("augment", {})
    known = {f.name for f in fields(Recipe)} - {"augment", "_root"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"recipe {path}: unknown keys {sorted(unknown)}")
    if "milestones" in raw:
        raw["milestones"] = tuple(raw["milestones"])
    aug_known = {f.name for f in fields(AugmentConfig)}
    if set(aug) - aug_known:
        raise ValueError(f"recipe {path}: unknown augment keys {sorted(set(aug) - aug_known)}")
    aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
    r = Recipe(**raw, augment=AugmentConfig(**aug), _root=path.resolve().parent.parent)
    if r.loss not in ("distill", "arcface", "both"):
        raise ValueError(f"recipe {path}: loss must be distill, arcface or both, not {r.loss!r}")
    if r.teacher_backend not in ("ort", "torch"):
        raise ValueError(f"recipe {path}: teacher_backend must be ort or torch, not {r.teacher_backend!r}")
    if r.pairs:
        if r.loss == "arcface":
            raise ValueError(f"recipe {path}: pairs (hard-example mining) ranks faces by a teacher; set loss = "
                             f"distill or both")
        n_pairs = round(r.pairs * r.batch / 2)
        if not 0 < r.pairs <= 1 - r.mixup or n_pairs < 1 or r.pairs_k < 1:
            raise ValueError(f"recipe {path}: pairs must be between {2 / r.batch:.3f} (one pair a batch) and "
                             f"1 - mixup = {1 - r.mixup:g} (the pairs go into the faces that are not mixed), and "
                             f"pairs_k at least 1; got pairs = {r.pairs}, pairs_k = {r.pairs_k}")
    if not 0 <= r.warmup < 1:
        raise ValueError(f"recipe {path}: warmup is a fraction of the budget, from 0 up to (not including) 1; "
                         f"got {r.warmup}")
    if r.minutes <= 0 and r.steps <= 0:
        raise ValueError(f"recipe {path}: set minutes or steps")
    return r
