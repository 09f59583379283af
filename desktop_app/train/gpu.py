"""One-shot distillation on a lent GPU (issue 16): ``pack`` here, ``train`` there, ``fdface ship`` here again.

A lent GPU comes for minutes, with a 64 MiB carry and no ../shared, so the run is prepared on this machine:

* ``pack`` writes the recipe's training pool and its held-out validation faces as WebP (the pool's JPEGs are
  197 MB; WebP at quality 55, the run's, made 40.6 MB: docs/TRAINING.md) and both teachers, converted to PyTorch
  (:mod:`desktop_app.train.onnx_torch`) and stored in fp16, into one folder to carry.
* ``train`` decodes the pack onto the GPU once and trains there with everything on the device: the augmentation
  of :class:`~desktop_app.train.augment.AugmentConfig` done batch-wise in torch (:class:`GpuAugment`), mixup, and
  both teachers run online on every augmented view (on the CPU the second teacher is too slow for that and
  supervises only the un-mixed faces through cached targets). The loss is the CPU loop's: cosine distillation to
  each teacher through its head plus the relational term on the mean of both teachers' similarity matrices.
  The schedule is the recipe's cosine over a wall-clock budget (``minutes``), after a linear warm-up
  (``warmup``), so the run ends annealed when the lease's minutes are spent, whatever the step rate.
* It writes ``final.pt`` in the trainer's kept-checkpoint layout (the net in fp32, the heads; no optimizer state),
  which ``fdface ship RUN --recipe ...`` exports and measures. Its budget is spent, so it is not a run to resume;
  a run folder that holds one is refused.
* The validation faces travel as WebP too, so the figures the device prints are on slightly degraded crops: they
  follow the run; the figures to compare models by are ``fdface ship``'s and ``benchmarks/students.py``'s here.

Run ``python -m desktop_app.train.gpu train --help`` for the arguments; docs/TRAINING.md has the command used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from desktop_app.train.augment import AugmentConfig
from desktop_app.train.loop import StepGuard, kept_checkpoint, val_figures
from desktop_app.train.losses import cosine_distill, relational_distill
from desktop_app.train.recipe import Recipe, load_recipe, scheduled_lr

PACK_FILES = ("faces.bin", "faces.npz", "teacher1.pt", "teacher2.pt")


# -- the pack ------------------------------------------------------------------------------------------------------
def encode_faces(images_rgb: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """WebP bytes of every face, concatenated, and the offsets [N + 1] that cut them apart."""
    blobs = []
    for img in images_rgb:
        ok, buf = cv2.imencode(".webp", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
            raise ValueError("WebP encoding failed")
        blobs.append(buf.tobytes())
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return b"".join(blobs), offsets


def decode_faces(blob: bytes, offsets: np.ndarray, threads: int = 8) -> np.ndarray:
    """uint8 RGB [N, H, W, 3] from :func:`encode_faces`'s output."""
    buf = np.frombuffer(blob, np.uint8)

    def one(i: int) -> np.ndarray:
        img = cv2.imdecode(buf[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"face {i} of the pack does not decode")
        return img[:, :, ::-1]

    with ThreadPoolExecutor(max(1, threads)) as ex:
        faces = list(ex.map(one, range(len(offsets) - 1)))
    return np.ascontiguousarray(np.stack(faces)) if faces else np.zeros((0, 112, 112, 3), np.uint8)


def pack(recipe: Recipe, out: Path, quality: int = 60) -> dict[str, int]:
    """Write the recipe's pool (train and validation split, as the CPU trainer splits it) and both teachers."""
    from desktop_app.train.loop import cache_dir, load_data
    from desktop_app.train.onnx_torch import convert
    from desktop_app.train.teacher import batched_teacher

    refuse_unsupported(recipe)  # here already, not after the pack has travelled
    out.mkdir(parents=True, exist_ok=True)
    train, val = load_data(recipe)
    blob, offsets = encode_faces(np.concatenate([train.images, val.images]), quality)
    (out / "faces.bin").write_bytes(blob)
    np.savez(out / "faces.npz", offsets=offsets, labels=np.concatenate([train.labels, val.labels]),
             n_train=len(train), quality=quality)
    for name, src in (("teacher1", recipe.teacher), ("teacher2", recipe.teacher2)):
        m = convert(batched_teacher(recipe.resolve(src), cache_dir())).half()
        torch.save(m, out / f"{name}.pt")
    return {"train": len(train), "val": len(val), "bytes": sum((out / f).stat().st_size for f in PACK_FILES)}


def load_teacher(path: Path, device: torch.device) -> nn.Module:
    m = torch.load(path, map_location="cpu", weights_only=False).float().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m.to(device).to(memory_format=torch.channels_last)


# -- augmentation on the device -----------------------------------------------------------------------------------
class GpuAugment:
    """:func:`desktop_app.train.augment.augment_batch` batch-wise in torch: uint8 NHWC in, float NCHW in [0, 255]
    out. Flip, one affine warp (rotation, scale, shift; border reflected), down-sampling and back, Gaussian blur,
    grey, brightness/contrast. Down-sampling and blur draw one factor (sigma) per batch for the faces they take;
    the CPU version draws one per face. Low light and JPEG are not done here: a recipe that asks for them is
    refused rather than trained without them."""

    def __init__(self, cfg: AugmentConfig, generator: torch.Generator) -> None:
        if cfg.lowlight_p > 0 or cfg.jpeg_p > 0:
            raise ValueError("the GPU augmentation has no low-light or JPEG step; set lowlight_p and jpeg_p to 0")
        self.cfg = cfg
        self.g = generator

    def _u(self, n: int, lo: float, hi: float, device) -> torch.Tensor:
        return torch.rand(n, generator=self.g, device=device) * (hi - lo) + lo

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the augmented batch and which faces were mirrored."""
        cfg, dev = self.cfg, images.device
        x = images.permute(0, 3, 1, 2).float()
        n, _, h, w = x.shape
        flip = torch.rand(n, generator=self.g, device=dev) < cfg.flip
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        # the CPU augmentation's warp (cv2.getRotationMatrix2D about (w/2, h/2), then the shift), as a sampling grid
        ang = self._u(n, -cfg.rotate_deg, cfg.rotate_deg, dev)
        sc = self._u(n, cfg.scale[0], cfg.scale[1], dev)
        shift = self._u(2 * n, -cfg.shift_px, cfg.shift_px, dev).view(n, 2)
        theta = theta_of_warp(rotation_matrices(ang, sc, shift, h, w), h, w)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if cfg.downsample_p > 0:
            take = torch.rand(n, generator=self.g, device=dev) < cfg.downsample_p
            f = float(self._u(1, cfg.downsample[0], cfg.downsample[1], dev))
            small = F.interpolate(x, size=(max(8, int(h * f)), max(8, int(w * f))), mode="area")
            x = torch.where(take[:, None, None, None], F.interpolate(small, size=(h, w), mode="bilinear",
                                                                      align_corners=False), x)
        if cfg.blur_p > 0:
            take = torch.rand(n, generator=self.g, device=dev) < cfg.blur_p
            sigma = float(self._u(1, 0.5, 1.5, dev))
            r = int(math.ceil(3 * sigma))
            k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=dev, dtype=x.dtype) / sigma) ** 2)
            k = k / k.sum()
            xb = F.pad(x, (r, r, r, r), mode="reflect")
            xb = F.conv2d(xb, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
            xb = F.conv2d(xb, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
            x = torch.where(take[:, None, None, None], xb, x)
        if cfg.grey_p > 0:
            take = torch.rand(n, generator=self.g, device=dev) < cfg.grey_p
            grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand(-1, 3, -1, -1)
            x = torch.where(take[:, None, None, None], grey, x)
        a = self._u(n, cfg.brightness[0], cfg.brightness[1], dev).view(n, 1, 1, 1)
        b = self._u(n, -cfg.offset, cfg.offset, dev).view(n, 1, 1, 1)
        return (x * a + b).clamp_(0, 255), flip


def rotation_matrices(ang_deg: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, h: int, w: int
                      ) -> torch.Tensor:
    """[N, 2, 3] pixel-space warps as the CPU augmentation makes them: ``cv2.getRotationMatrix2D((w / 2, h / 2),
    angle, scale)`` with ``shift`` (px, [N, 2]) added to the translation (input -> output)."""
    rad = ang_deg * (math.pi / 180)
    a, b = scale * torch.cos(rad), scale * torch.sin(rad)
    cx, cy = w / 2.0, h / 2.0
    return torch.stack([torch.stack([a, b, (1 - a) * cx - b * cy + shift[:, 0]], 1),
                        torch.stack([-b, a, b * cx + (1 - a) * cy + shift[:, 1]], 1)], 1)


def theta_of_warp(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The ``F.affine_grid`` theta (output -> input, normalised coordinates, align_corners=False) that samples what
    ``cv2.warpAffine(img, m, (w, h))`` shows: m inverted, between the two coordinate systems."""
    n = m.shape[0]
    full = torch.zeros(n, 3, 3, dtype=m.dtype, device=m.device)
    full[:, :2] = m
    full[:, 2, 2] = 1
    to_pix = torch.tensor([[w / 2, 0, (w - 1) / 2], [0, h / 2, (h - 1) / 2], [0, 0, 1]], dtype=m.dtype,
                          device=m.device)  # normalised -> pixel centres
    return (torch.linalg.inv(to_pix) @ torch.linalg.inv(full) @ to_pix)[:, :2]


def mixup(x: torch.Tensor, frac: float, generator: torch.Generator) -> int:
    """Mix the first ``round(frac * N)`` faces of ``x`` (in place) with random faces of the batch; returns how many."""
    n = x.shape[0]
    m = int(round(frac * n))
    if m:
        lam = torch.rand(m, 1, 1, 1, generator=generator, device=x.device)
        other = x[torch.randperm(n, generator=generator, device=x.device)[:m]]
        x[:m] = lam * x[:m] + (1 - lam) * other
    return m


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> the model's input convention, (x - 127.5) / 128 (as :func:`augment.to_input`)."""
    return (x - 127.5) / 128.0


# -- the run -------------------------------------------------------------------------------------------------------
def unsupported(r: Recipe) -> list[str]:
    """What of a recipe this path does not do: refused rather than trained without (it distils from two teachers
    online, over a wall-clock cosine, from scratch)."""
    out = []
    if r.loss != "distill":
        out.append(f'loss = "{r.loss}" (only distillation)')
    if r.schedule != "cosine":
        out.append(f'schedule = "{r.schedule}" (only the cosine over the wall clock)')
    if r.steps:
        out.append("steps (the budget is minutes of wall clock)")
    if r.init_onnx:
        out.append("init_onnx (no warm start)")
    if r.pairs:
        out.append("pairs (no hard-example mining)")
    if not r.teacher2:
        out.append("a recipe without teacher2 (two teachers)")
    return out


def refuse_unsupported(r: Recipe) -> None:
    if problems := unsupported(r):
        raise ValueError(f"recipe {r.name}: the GPU run does not do " + "; ".join(problems))


class GpuRun:
    def __init__(self, recipe: Recipe, pack_dir: Path, device: str = "cuda", threads: int = 8) -> None:
        from desktop_app.nets import create_net

        refuse_unsupported(recipe)
        self.r = recipe
        self.dev = torch.device(device)
        torch.manual_seed(recipe.seed)
        self.g = torch.Generator(device=self.dev)
        self.g.manual_seed(recipe.seed)
        z = np.load(pack_dir / "faces.npz")
        faces = decode_faces((pack_dir / "faces.bin").read_bytes(), z["offsets"], threads)
        nt = int(z["n_train"])
        if nt < recipe.batch:
            raise ValueError(f"the pack holds {nt} training faces, fewer than one batch of {recipe.batch}")
        self.train_faces = torch.from_numpy(faces[:nt]).to(self.dev)
        self.val_faces, self.val_labels = faces[nt:], z["labels"][nt:]
        self.t1 = load_teacher(pack_dir / "teacher1.pt", self.dev)
        self.t2 = load_teacher(pack_dir / "teacher2.pt", self.dev)
        self.model = create_net(recipe.net, **recipe.net_kwargs).to(self.dev).to(memory_format=torch.channels_last)
        self.head1 = nn.Linear(512, recipe.teacher_dim).to(self.dev)
        self.head2 = nn.Linear(512, recipe.teacher2_dim).to(self.dev)
        params = [*self.model.parameters(), *self.head1.parameters(), *self.head2.parameters()]
        self.opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                   weight_decay=recipe.weight_decay)
        self.aug = GpuAugment(recipe.augment, self.g)
        from desktop_app.train.loop import native_bf16

        bf16 = recipe.bf16 and (self.dev.type == "cuda" or native_bf16())  # emulated bf16 is ~10x slower on a CPU
        self.amp = dict(device_type=self.dev.type, dtype=torch.bfloat16, enabled=bf16)
        self.step = self.epoch = 0
        self.guard = StepGuard()
        self.elapsed = 0.0
        self.history: list[dict] = []

    @torch.no_grad()
    def teachers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(**self.amp):
            return F.normalize(self.t1(x).float(), dim=1), F.normalize(self.t2(x).float(), dim=1)

    def train_step(self, idx: torch.Tensor, lr: float) -> float:
        x, _ = self.aug(self.train_faces[idx])
        mixup(x, self.r.mixup, self.g)
        x = normalise(x).contiguous(memory_format=torch.channels_last)
        t1, t2 = self.teachers(x)
        for grp in self.opt.param_groups:
            grp["lr"] = lr
        saved = self.guard.save_bn(self.model)
        with torch.autocast(**self.amp):
            emb = self.model(x)
            s1, s2 = self.head1(emb), self.head2(emb)
        loss = cosine_distill(s1, t1) + self.r.teacher2_weight * cosine_distill(s2, t2)
        if self.r.relational > 0:
            loss = loss + self.r.relational * relational_distill(emb, t1, 0.5 * (t1 @ t1.T + t2 @ t2.T))
        return self.guard.apply(loss, self.opt, saved, self.step)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if len(self.val_faces) == 0:
            return {}
        self.model.eval()
        out = []
        for flip in (False, True):
            e = []
            for i in range(0, len(self.val_faces), 512):
                v = torch.from_numpy(self.val_faces[i : i + 512]).to(self.dev).permute(0, 3, 1, 2).float()
                v = normalise(v.flip(3) if flip else v).contiguous(memory_format=torch.channels_last)
                with torch.autocast(**self.amp):
                    e.append(self.model(v).float().cpu().numpy())
            out.append(np.concatenate(e))
        self.model.train()
        return val_figures(out[0] + out[1], self.val_labels)

    def state(self, full: bool) -> dict:
        """The trainer's kept-checkpoint layout (:func:`~desktop_app.train.loop.kept_checkpoint`), with the net in
        fp32 when ``full`` (what ``fdface ship`` exports)."""
        def cpu(m: nn.Module) -> dict:
            return {k: v.detach().cpu() for k, v in m.state_dict().items()}

        raw = {"model": cpu(self.model), "distill_head": cpu(self.head1), "distill_head2": cpu(self.head2),
               "arcface": None, "step": self.step, "elapsed": self.elapsed, "epoch": self.epoch,
               "history": self.history, "recipe": self.r.name, "net": self.r.net, "net_kwargs": self.r.net_kwargs}
        kept = kept_checkpoint(raw)
        if full:
            kept["model"] = raw["model"]
        return kept

    def save(self, path: Path, full: bool) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(full), tmp)
        os.replace(tmp, path)

    def run(self, out: Path, seconds: float, save_every_s: float = 90.0, val_every_s: float = 60.0,
            log=print) -> dict:
        """Train for ``seconds`` of wall clock (the budget the schedule anneals over), then write final.pt."""
        out.mkdir(parents=True, exist_ok=True)
        if any((out / f).exists() for f in ("final.pt", "last.pt", "log.jsonl")):  # no resume: a new run each time
            raise ValueError(f"{out} holds a run already; give a new folder (this path does not resume)")
        logf = open(out / "log.jsonl", "w")  # noqa: SIM115 (closed below; a kill loses no line)
        n, bs = len(self.train_faces), self.r.batch
        per_epoch = n // bs
        t0 = time.monotonic()
        t_save = t_val = t_print = t0
        loss_ema = None
        samples_at = (0, t0)
        try:
            while True:
                order = torch.randperm(n, generator=self.g, device=self.dev)
                for k in range(per_epoch):
                    p = min(1.0, (time.monotonic() - t0) / seconds)
                    if p >= 1.0:
                        break
                    v = self.train_step(order[k * bs : (k + 1) * bs], scheduled_lr(self.r, p))
                    self.step += 1
                    if math.isfinite(v):
                        loss_ema = v if loss_ema is None else 0.98 * loss_ema + 0.02 * v
                    now = time.monotonic()
                    self.elapsed = now - t0
                    if now - t_print > 15:
                        rate = (self.step - samples_at[0]) * bs / (now - samples_at[1])
                        samples_at, t_print = (self.step, now), now
                        shown = math.nan if loss_ema is None else loss_ema
                        log(f"step {self.step} ep {self.epoch} {100 * p:5.1f}% loss {shown:.4f} "
                            f"lr {scheduled_lr(self.r, p):.4f} {rate:.0f} img/s skipped {self.guard.skipped}")
                    if now - t_val > val_every_s:
                        self._record(logf, loss_ema, p, log)
                        t_val = time.monotonic()
                    if now - t_save > save_every_s:
                        self.save(out / "last.pt", full=False)
                        t_save = time.monotonic()
                else:
                    self.epoch += 1
                    continue
                break
            rec = self._record(logf, loss_ema, 1.0, log)
        finally:
            logf.close()
        self.save(out / "final.pt", full=True)
        (out / "last.pt").unlink(missing_ok=True)
        return rec

    def _record(self, logf, loss_ema, p: float, log) -> dict:
        rec = {"epoch": self.epoch, "step": self.step, "minutes": round(self.elapsed / 60, 2),
               "loss": round(float(loss_ema or 0), 5), "lr": scheduled_lr(self.r, p), **self.validate()}
        if self.guard.skipped:
            rec["skipped"] = self.guard.skipped
        self.history.append(rec)
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        log(f"record {json.dumps(rec)}")
        return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m desktop_app.train.gpu", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write the recipe's pool and teachers into a folder to carry to the GPU")
    p.add_argument("recipe")
    p.add_argument("out")
    p.add_argument("--quality", type=int, default=60, help="WebP quality of the faces (default 60)")
    t = sub.add_parser("train", help="train on the packed pool; budget: the recipe's minutes or --seconds")
    t.add_argument("recipe")
    t.add_argument("pack")
    t.add_argument("out", help="run folder: final.pt, log.jsonl (last.pt while it runs)")
    t.add_argument("--seconds", type=float, help="wall-clock budget of the steps (default: the recipe's minutes)")
    t.add_argument("--device", default="cuda")
    t.add_argument("--threads", type=int, default=8, help="threads decoding the pack")
    a = ap.parse_args(argv)
    try:
        r = load_recipe(a.recipe)
        if a.cmd == "pack":
            print(json.dumps(pack(r, Path(a.out), a.quality)))
            return 0
        if a.device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ValueError("no CUDA device here; pass --device cpu for a trial on the CPU")
            torch.backends.cudnn.benchmark = True
        seconds = a.seconds if a.seconds else 60 * r.minutes
        if seconds <= 0:
            raise ValueError("set the recipe's minutes or --seconds")
        t = time.monotonic()
        run = GpuRun(r, Path(a.pack), a.device, a.threads)
        print(f"loaded {len(run.train_faces)} training faces and {len(run.val_faces)} validation faces in "
              f"{time.monotonic() - t:.1f} s; training for {seconds:.0f} s", flush=True)
        rec = run.run(Path(a.out), seconds, log=lambda s: print(s, flush=True))
        print(f"final {json.dumps(rec)}", flush=True)
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
