"""The training loop: distillation and/or ArcFace, time- or step-budgeted cosine schedule, checkpoints, resume.

Progress is max(step / steps, elapsed / minutes): the learning rate follows a cosine of it, so a run ends
annealed whichever budget is spent first, and a resumed run continues the same curve.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from desktop_app.nets import create_net
from desktop_app.train.augment import augment_batch, to_input
from desktop_app.train.data import FaceArray, hold_out, load_image_folder, load_index_csv
from desktop_app.train.evaluate import open_set
from desktop_app.train.losses import ArcFace, cosine_distill, relational_distill
from desktop_app.train.mining import cached_neighbours, pair_batch
from desktop_app.train.recipe import Recipe, scheduled_lr

log = logging.getLogger(__name__)
MAX_SKIPPED_IN_A_ROW = 20  # non-finite steps in a row before a run stops instead of going on unchanged


class StepGuard:
    """A step whose loss or gradient is not finite is left out: the weights are not updated, the BN running
    statistics its forward pass changed are put back, it is counted, and ``MAX_SKIPPED_IN_A_ROW`` in a row stop the
    run with a message. One bad batch must not turn every weight (or a BN statistic) into NaN for the rest. Shared by
    the CPU loop and the GPU run; its cost: benchmarks/train_step_checks.py (docs/TRAINING.md)."""

    def __init__(self) -> None:
        self.skipped = 0  # steps left out since the process started
        self.in_a_row = 0

    @staticmethod
    def save_bn(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Call before the forward pass."""
        return [(b, b.clone()) for b in model.buffers() if b.is_floating_point()]

    def apply(self, loss: torch.Tensor, opt: torch.optim.Optimizer, saved: list, step: int) -> float:
        """Backward and optimizer step when the loss and its gradient are finite; else the step is left out (NaN)."""
        opt.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            finite = bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
        if not finite:
            with torch.no_grad():
                for b, old in saved:
                    b.copy_(old)
            self.skipped += 1
            self.in_a_row += 1
            log.warning("step %d: loss or gradient not finite, step skipped (%d so far)", step, self.skipped)
            if self.in_a_row >= MAX_SKIPPED_IN_A_ROW:
                raise ValueError(f"the loss or its gradient was not finite for {self.in_a_row} steps in a row "
                                 f"(step {step}): the run stops; try a lower learning rate or margin weight")
            return float("nan")
        self.in_a_row = 0
        opt.step()
        return float(loss.detach())


def cache_dir() -> Path:
    return Path(os.environ.get("FDFACE_CACHE", Path.home() / ".cache" / "fdface"))


def load_data(r: Recipe) -> tuple[FaceArray, FaceArray]:
    root = r.resolve(r.data_root)
    if r.image_folder:
        arr = load_image_folder(r.resolve(r.image_folder), cache_dir=cache_dir())
        return arr, arr.subset(np.arange(0))
    arr, sources = load_index_csv(root, r.index, cache_dir=cache_dir())
    return hold_out(arr, sources, r.val_source, r.val_ids, seed=1234)


@torch.no_grad()
def embed(model: nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    was = model.training
    model.eval()
    out = [
        model(torch.from_numpy(to_input(images[i : i + batch]))).float().numpy() for i in range(0, len(images), batch)
    ]
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


def validate(model: nn.Module, val: FaceArray) -> dict[str, float]:
    if len(val) == 0:
        return {}
    return val_figures(embed(model, val.images) + embed(model, val.images[:, :, ::-1].copy()), val.labels)


def val_figures(flip_sum: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The validation record's figures from flip-sum embeddings of the held-out faces (CPU loop and GPU run)."""
    res = open_set(flip_sum, labels)
    return {"val_dir_far1": res.dir_at_far, "val_rank1": res.rank1, "val_tar_far1e-3": res.verification_tar}


def native_bf16() -> bool:
    """Whether bf16 autocast runs on hardware (AMX or AVX512-BF16). Without it (e.g. an AVX2-only AMD EPYC) oneDNN
    emulates bf16 and a training step is about 10x slower than in fp32 (measured: 6 vs 59 img/s, FDFaceNet)."""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())
    except AttributeError:  # an older torch without the probes: trust the recipe
        return True


def kept_checkpoint(state: dict) -> dict:
    """What a new machine needs to continue a run on the same curve, small enough to commit (from a full
    checkpoint, ``Trainer.state()`` / RUN/last.pt): the weights of the net and the heads in fp16 (their rounding,
    ~1e-3 relative, is far below one SGD step's change at the learning rates where a run is paused), the step and
    the history. The optimizer's momentum and the random streams are left out (momentum rebuilds within ~10 steps
    at 0.9; the data order restarts from a stream seeded by the step)."""
    def half(sd: dict | None) -> dict | None:
        return None if sd is None else {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}

    return {"kept": 1, **{k: half(state.get(k)) for k in ("model", "distill_head", "distill_head2", "arcface")},
            **{k: state[k] for k in ("step", "elapsed", "epoch", "history", "recipe", "net", "net_kwargs")}}


class Trainer:
    def __init__(self, recipe: Recipe, out_dir: str | Path) -> None:
        self.r = recipe
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(recipe.seed)
        torch.set_num_threads(recipe.threads)
        self.bf16 = recipe.bf16 and native_bf16()
        if recipe.bf16 and not self.bf16:
            log.warning("this CPU has no native bf16 (AVX512-BF16 or AMX): training in fp32, which is ~10x faster "
                        "here than emulated bf16; step counts per minute differ from a bf16 machine")
        self.model = create_net(recipe.net, **recipe.net_kwargs)
        if recipe.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.distill_head = nn.Linear(512, recipe.teacher_dim) if recipe.loss in ("distill", "both") else None
        self.train_set, self.val_set = load_data(recipe)
        n_cls = int(self.train_set.labels.max()) + 1
        self.arcface = (
            ArcFace(512, n_cls, recipe.arcface_s, recipe.arcface_m) if recipe.loss in ("arcface", "both") else None
        )
        params = list(self.model.parameters())
        for extra in (self.distill_head, self.arcface):
            if extra is not None:
                params += list(extra.parameters())
        self.opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                   weight_decay=recipe.weight_decay)
        self.teacher = None
        self.targets2: np.ndarray | None = None  # [N, 2, D]: the second teacher's crop and mirror targets
        if self.distill_head is not None:
            from desktop_app.train.teacher import cached_targets, open_teacher

            self.teacher = open_teacher(recipe.resolve(recipe.teacher), cache_dir(), recipe.teacher_backend,
                                        recipe.threads, self.bf16)
            if recipe.teacher2:
                t2 = open_teacher(recipe.resolve(recipe.teacher2), cache_dir(), "torch", recipe.threads, self.bf16)
                tag = f"{Path(recipe.teacher2).name}:{recipe.teacher2_dim}:bf16={self.bf16}"
                self.targets2 = cached_targets(t2, self.train_set.images, self.train_set.paths, tag, cache_dir())
                del t2
        self.neighbours: np.ndarray | None = None  # [N, pairs_k] train-set indices, for recipe.pairs
        if recipe.pairs > 0 and self.teacher is not None:  # cached_targets: imported with the teachers above
            if self.targets2 is not None:
                emb, tag = self.targets2[:, 0], f"{Path(recipe.teacher2).name}:{recipe.teacher2_dim}"
            else:
                tag = f"{Path(recipe.teacher).name}:{recipe.teacher_dim}:{recipe.teacher_backend}"
                emb = cached_targets(self.teacher, self.train_set.images, self.train_set.paths, tag, cache_dir())[:, 0]
            self.neighbours = cached_neighbours(emb, recipe.pairs_k, self.train_set.paths, tag, cache_dir())
        self.distill_head2 = nn.Linear(512, recipe.teacher2_dim) if self.targets2 is not None else None
        if self.distill_head2 is not None:
            self.opt.add_param_group({"params": list(self.distill_head2.parameters())})
        # a recipe's shipped export to start from: applied by run() only when there is no checkpoint to continue
        # (a resumed run would overwrite it, after a minute spent embedding the whole labelled pool)
        self.warm_pending: Path | None = recipe.resolve(recipe.init_onnx) if recipe.init_onnx else None
        self.step = 0
        self.elapsed = 0.0
        self.epoch = 0
        self.stopped = False  # set by SIGTERM / Ctrl-C during run()
        self.guard = StepGuard()
        self.rng = np.random.default_rng(recipe.seed)
        self.history: list[dict[str, float]] = []

    def warm_start(self) -> bool:
        """Start from the recipe's shipped export (``init_onnx``), once; False when there is none or it is done."""
        if self.warm_pending is None:
            return False
        path, self.warm_pending = self.warm_pending, None
        self._warm_start(path)
        return True

    def _warm_start(self, path: Path) -> None:
        from desktop_app.train.warmstart import fit_head, init_arcface, unfuse_from_onnx

        idx = self._fit_faces()
        faces = self.train_set.images[idx]
        unfuse_from_onnx(self.model, path, torch.from_numpy(to_input(faces[:512])))
        if self.distill_head is not None and self.teacher is not None:
            s = embed(self.model, faces)
            t = np.concatenate([self.teacher(to_input(faces[i : i + 256])) for i in range(0, len(faces), 256)])
            cos = fit_head(self.distill_head, s, t)
            log.info("distillation head refitted on %d faces: mean cosine to the teacher %.3f", len(faces), cos)
            if self.distill_head2 is not None and self.targets2 is not None:  # the crops' cached targets
                cos2 = fit_head(self.distill_head2, s, self.targets2[idx, 0])
                log.info("second teacher's head refitted on the same faces: mean cosine %.3f", cos2)
        if self.arcface is not None:  # every labelled face: the class rows start at the classes' mean embeddings
            keep = np.flatnonzero(self.train_set.labels >= 0)
            n = init_arcface(self.arcface, embed(self.model, self.train_set.images[keep]), self.train_set.labels[keep])
            log.info("ArcFace head set to the mean embeddings of %d classes (%d labelled faces)", n, len(keep))
        self.model.train()

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "distill_head": self.distill_head.state_dict() if self.distill_head else None,
            "distill_head2": self.distill_head2.state_dict() if self.distill_head2 else None,
            "arcface": self.arcface.state_dict() if self.arcface else None,
            "opt": self.opt.state_dict(),
            "step": self.step, "elapsed": self.elapsed, "epoch": self.epoch,
            "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "history": self.history, "recipe": self.r.name, "net": self.r.net, "net_kwargs": self.r.net_kwargs,
        }

    def save(self, name: str = "last.pt") -> Path:
        tmp = self.out / (name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, self.out / name)  # atomic: a killed run never leaves a half-written checkpoint
        return self.out / name

    def load(self, path: Path) -> None:
        st = torch.load(path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(st["model"])
        if self.distill_head and st["distill_head"]:
            self.distill_head.load_state_dict(st["distill_head"])
        if self.distill_head2 and st.get("distill_head2"):
            self.distill_head2.load_state_dict(st["distill_head2"])
        if self.arcface and st["arcface"]:
            self.arcface.load_state_dict(st["arcface"])
        if self._fit_missing_head2(st):  # the saved optimizer has no group for the new head
            log.warning("the optimizer's momentum starts afresh (at momentum 0.9 it weighs about the last 10 steps)")
        else:
            self.opt.load_state_dict(st["opt"])
        self.step, self.elapsed, self.epoch = st["step"], st["elapsed"], st["epoch"]
        self.rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        self.history = st["history"]

    def _fit_faces(self) -> np.ndarray:
        """The pool faces (``init_faces`` of them, the same each time) that BN statistics and heads are fitted on."""
        rng = np.random.default_rng(self.r.seed + 1)
        return np.sort(rng.choice(len(self.train_set), min(self.r.init_faces, len(self.train_set)), replace=False))

    def _fit_missing_head2(self, st: dict) -> bool:
        """A checkpoint saved before the recipe named its second teacher has no head for it: fit one to the
        checkpoint's own embedding (as the warm start does) rather than continue from a random head, whose first
        steps would pull the trained embedding toward noise. Returns whether it did."""
        if self.distill_head2 is None or self.targets2 is None or st.get("distill_head2"):
            return False
        from desktop_app.train.warmstart import fit_head

        idx = self._fit_faces()
        cos = fit_head(self.distill_head2, embed(self.model, self.train_set.images[idx]), self.targets2[idx, 0])
        log.warning("the checkpoint has no head for the second teacher (it was saved before the recipe named one): "
                    "head fitted on %d faces, mean cosine to that teacher %.3f", len(idx), cos)
        return True

    # -- kept checkpoints (committed between sessions) -------------------------------------------------------------
    def kept_state(self) -> dict:
        return kept_checkpoint(self.state())

    def load_kept(self, path: Path) -> None:
        st = torch.load(path, map_location="cpu", weights_only=False)
        if st.get("kept") != 1 or st["recipe"] != self.r.name:
            raise ValueError(f"{path} is not a kept checkpoint of recipe {self.r.name!r}")

        def full(sd: dict, like: nn.Module) -> dict:
            ref = like.state_dict()
            return {k: v.to(ref[k].dtype) for k, v in sd.items()}

        self.model.load_state_dict(full(st["model"], self.model))
        for name in ("distill_head", "distill_head2", "arcface"):
            mod = getattr(self, name)
            if mod is not None and st.get(name):
                mod.load_state_dict(full(st[name], mod))
        self._fit_missing_head2(st)
        self.step, self.elapsed, self.epoch, self.history = st["step"], st["elapsed"], st["epoch"], st["history"]
        self.rng = np.random.default_rng([self.r.seed, self.step])  # a fresh stream, reproducible from the step

    # -- schedule ----------------------------------------------------------------------------------------------
    def progress(self) -> float:
        p = 0.0
        if self.r.steps > 0:
            p = max(p, self.step / self.r.steps)
        if self.r.minutes > 0:
            p = max(p, self.elapsed / (60 * self.r.minutes))
        return min(p, 1.0)

    def lr_now(self) -> float:
        return scheduled_lr(self.r, self.progress(), self.step)

    # -- one step ----------------------------------------------------------------------------------------------
    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._flipped = np.zeros(len(idx), bool)
        imgs = augment_batch(self.train_set.images[idx], self.r.augment, self.rng, self._flipped)
        labels = self.train_set.labels[idx].copy()
        n_mix = int(round(self.r.mixup * len(idx))) if self.teacher is not None else 0
        self._n_mix = n_mix
        if n_mix:
            lam = self.rng.uniform(0, 1, size=(n_mix, 1, 1, 1)).astype(np.float32)
            other = imgs[self.rng.permutation(len(idx))[:n_mix]]
            mixed = lam * imgs[:n_mix].astype(np.float32) + (1 - lam) * other.astype(np.float32)
            imgs[:n_mix] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
            labels[:n_mix] = -1  # a mixed face has no identity
        return to_input(imgs), labels

    def train_step(self, idx: np.ndarray) -> float:
        x_np, labels_np = self._batch(idx)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_now()
        x = torch.from_numpy(x_np)
        if self.r.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        saved = self.guard.save_bn(self.model)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            emb = self.model(x)
        loss = torch.zeros((), dtype=torch.float32)
        if self.distill_head is not None and self.teacher is not None:
            t = torch.from_numpy(self.teacher(x_np))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                s = self.distill_head(emb)
            loss = loss + cosine_distill(s, t)
            gram = None
            if self.distill_head2 is not None and self.targets2 is not None:
                # the un-mixed faces (the mixed ones come first) against the second teacher's cached target of
                # the same crop, mirrored where the augmentation mirrored it
                m = self._n_mix
                t2 = torch.from_numpy(self.targets2[idx[m:], self._flipped[m:].astype(np.int64)])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    s2 = self.distill_head2(emb[m:])
                loss = loss + self.r.teacher2_weight * cosine_distill(s2, t2)
                if self.r.relational > 0:  # the mean of both teachers' similarities where both are known
                    gram = t @ t.T
                    gram[m:, m:] = 0.5 * (gram[m:, m:] + t2 @ t2.T)
            if self.r.relational > 0:
                loss = loss + self.r.relational * relational_distill(emb, t, gram)
        if self.arcface is not None:
            lab = torch.from_numpy(labels_np)
            keep = lab >= 0
            if keep.any():
                loss = loss + self.r.arcface_weight * self.arcface(emb[keep], lab[keep])
        return self.guard.apply(loss, self.opt, saved, self.step)

    @property
    def skipped(self) -> int:
        return self.guard.skipped

    def _sampling_pool(self) -> np.ndarray:
        if self.teacher is None:  # ArcFace only: labelled samples only
            return np.flatnonzero(self.train_set.labels >= 0)
        return np.arange(len(self.train_set))

    def run(self, resume: bool = True, on_progress=None, kept: Path | None = None) -> dict[str, float]:
        """``kept``: a kept checkpoint (:meth:`kept_state`) to continue from when the run folder has no last.pt
        (a new machine)."""
        last = self.out / "last.pt"
        if resume and last.exists():
            self.load(last)
            log.info("resumed from %s at step %d (%.1f min)", last, self.step, self.elapsed / 60)
        elif kept is not None:
            self.load_kept(kept)
            log.info("continued from the kept checkpoint %s at step %d", kept, self.step)
        else:
            self.warm_start()
        self.warm_pending = None  # a checkpoint holds the run's own weights: the export is not applied over them
        pool = self._sampling_pool()
        bs = self.r.batch
        logf = open(self.out / "log.jsonl", "a")  # noqa: SIM115 (closed at the end; a kill loses no line)
        self.stopped = False
        restore = self._catch_stop()
        try:
            self._loop(pool, bs, logf, resume, on_progress)
        finally:
            for sig, old in restore:
                signal.signal(sig, old)
            logf.close()
        if self.stopped:  # SIGTERM / Ctrl-C: `fdface train` resumes from last.pt on the same curve
            log.info("stopped at step %d (%.1f min); run again to resume", self.step, self.elapsed / 60)
        self.save("last.pt" if self.stopped else "final.pt")
        return self.history[-1] if self.history else {}

    def _catch_stop(self) -> list:
        """SIGTERM or Ctrl-C finish the step in flight, then the run checkpoints and returns (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return []

        def _stop(signum, frame):  # noqa: ARG001
            self.stopped = True

        return [(sig, signal.signal(sig, _stop)) for sig in (signal.SIGTERM, signal.SIGINT)]

    def n_pairs(self) -> int:
        """Faces of each batch that bring a teacher-nearest neighbour along (recipe.pairs)."""
        return round(self.r.pairs * self.r.batch / 2) if self.neighbours is not None else 0

    def _loop(self, pool, bs, logf, resume, on_progress) -> None:
        t_ckpt = time.monotonic()
        loss_ema = None
        n_pairs = self.n_pairs()
        per = bs - n_pairs  # faces of the epoch's order each step takes (the neighbours come on top)
        while self.progress() < 1.0:
            order = self.rng.permutation(pool)
            steps_per_epoch = len(order) // per
            start_in_epoch = self.step % steps_per_epoch if self.step and resume else 0
            for k in range(start_in_epoch, steps_per_epoch):
                t0 = time.monotonic()
                idx = order[k * per : (k + 1) * per]
                loss = self.train_step(pair_batch(idx, n_pairs, self.neighbours, self.rng) if n_pairs else idx)
                self.step += 1
                self.elapsed += time.monotonic() - t0
                if math.isfinite(loss):  # a skipped step (not finite) leaves the running mean alone
                    loss_ema = loss if loss_ema is None else 0.98 * loss_ema + 0.02 * loss
                if on_progress is not None and self.step % 20 == 0:
                    on_progress(self)
                if self.step % 50 == 0:
                    p = self.progress()
                    eta = self.elapsed * (1 - p) / max(p, 1e-9)
                    shown = math.nan if loss_ema is None else loss_ema  # every step so far skipped
                    print(f"[{self.r.name}] step {self.step} ep {self.epoch} {100 * p:5.1f}% loss {shown:.4f} "
                          f"lr {self.lr_now():.4f} {bs * 50 / max(1e-9, self._last_50(t0)):.0f} img/s "
                          f"ETA {eta / 60:.1f} min", flush=True)
                if time.monotonic() - t_ckpt > 60 * self.r.checkpoint_minutes:
                    self.save()
                    t_ckpt = time.monotonic()
                if self.progress() >= 1.0 or self.stopped:
                    break
            else:
                self.epoch += 1
            if self.stopped:  # no validation record for a part-epoch; run() checkpoints
                return
            rec = {"epoch": self.epoch, "step": self.step, "minutes": round(self.elapsed / 60, 2),
                   "loss": round(float(loss_ema or 0), 5), "lr": self.lr_now(), **validate(self.model, self.val_set)}
            if self.guard.skipped:
                rec["skipped"] = self.guard.skipped
            self.history.append(rec)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            print(f"[{self.r.name}] epoch {rec}", flush=True)
            self.save()

    _t50: float | None = None

    def _last_50(self, now: float) -> float:
        prev, self._t50 = self._t50, time.monotonic()
        return (self._t50 - prev) if prev is not None else float("inf")
