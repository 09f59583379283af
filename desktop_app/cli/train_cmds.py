"""`fdface train RECIPE`, `fdface eval lfw MODEL`, `fdface ship RUN`. Training and shipping need ``[train]``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from desktop_app.cli import threads_arg
from desktop_app.manifest import ManifestError, ModelEntry, default_models_dir, load_manifest, sha256_file

REPO = Path(__file__).resolve().parents[2]
# recipes/*.json: training-time manifests (teachers), never read by the app
MANIFESTS = (default_models_dir() / "manifest.json", *sorted((REPO / "recipes").glob("*.json")))


def _cli_error(msg: str) -> Exception:
    from desktop_app.cli import CliError

    return CliError(msg)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from desktop_app.train.loop import Trainer
        from desktop_app.train.recipe import load_recipe
    except ImportError as exc:
        raise _cli_error(f"training needs PyTorch ({exc}): pip install -e '.[train]'") from None
    try:
        recipe = load_recipe(args.recipe)
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    out = args.out or f"runs/{recipe.name}"
    kept = Path(args.resume_from) if args.resume_from else None
    if kept is not None and not kept.is_file():
        raise _cli_error(f"--resume-from {kept}: no such file")
    tr = Trainer(recipe, out)
    try:
        final = tr.run(resume=not args.fresh, kept=kept)
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    if tr.stopped:
        print(f"stopped at step {tr.step} ({tr.elapsed / 60:.1f} of {recipe.minutes or '-'} min), checkpoint in "
              f"{Path(out) / 'last.pt'}; run the same command again to resume")
        return 0
    print(f"done: {final}")
    return 0


def cmd_keep(args: argparse.Namespace) -> int:
    """A committed copy of a paused run: runs/ lives outside git, a new machine would lose it."""
    try:
        import torch

        from desktop_app.train.loop import kept_checkpoint
        from desktop_app.train.recipe import load_recipe
    except ImportError as exc:
        raise _cli_error(f"keeping a run needs PyTorch ({exc}): pip install -e '.[train]'") from None
    last = Path(args.run) / "last.pt"
    if not last.is_file():
        raise _cli_error(f"no checkpoint at {last}")
    recipe = load_recipe(args.recipe)
    state = torch.load(last, map_location="cpu", weights_only=False)
    if state.get("recipe") != recipe.name:
        raise _cli_error(f"{last} is a checkpoint of {state.get('recipe')!r}, not of {recipe.name!r}")
    kept = kept_checkpoint(state)
    out = Path(args.out or Path(__file__).resolve().parents[2] / "checkpoints" / f"{recipe.name}.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(kept, tmp)
    tmp.replace(out)
    print(f"kept step {kept['step']} of {recipe.name} in {out} ({out.stat().st_size / 1e6:.1f} MB); on a new machine: "
          f"fdface train {args.recipe} --resume-from {out}")
    return 0


def resolve_model(spec: str, manifest: str | None = None) -> ModelEntry:
    """A manifest name, or an .onnx path described by an entry of the given or known manifests."""
    paths = [Path(manifest)] if manifest else [p for p in MANIFESTS if p.exists()]
    entries: list[ModelEntry] = []
    for p in paths:
        try:
            entries += load_manifest(p).values()
        except ManifestError as exc:
            raise _cli_error(str(exc)) from None
    for e in entries:
        if e.name == spec:
            return e
    target = Path(spec).resolve()
    for e in entries:
        if e.path == target:
            return e
    raise _cli_error(f"{spec!r} is not described by a manifest entry ({', '.join(map(str, paths))}); "
                     "pass --manifest with an entry for it")


def _progress_line(what: str):
    """A progress callback printing "LFW: embedding 40 % (4,800 of 12,000)" lines to stderr (stdout stays the
    result, JSON included)."""

    def show(stage: str, done: int, total: int) -> None:
        print(f"{what}: {stage} {100 * done // total} % ({done:,} of {total:,})", file=sys.stderr, flush=True)

    return show


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    from desktop_app.train.evaluate import evaluate_lfw_entry

    entry = resolve_model(args.model, args.manifest)
    if not entry.path.exists():
        raise _cli_error(f"model file not found: {entry.path}")
    pack = Path(args.pack) if args.pack else None
    try:
        res = evaluate_lfw_entry(entry, pack, flip=args.flip, threads=args.threads, progress=_progress_line("LFW"))
    except OSError as exc:
        raise _cli_error(f"LFW pack unusable: {exc}") from None
    out = {"model": entry.name, "file": str(entry.path), "flip": args.flip, "accuracy": round(res.accuracy, 2),
           "std": round(res.std, 2), "threshold": round(res.threshold, 4), "pairs": res.n_pairs}
    print(json.dumps(out) if args.json else
          f"{entry.name}: LFW {res.accuracy:.2f} % +- {res.std:.2f} (10-fold View 2, {res.n_pairs} pairs, "
          f"flip-sum {'on' if args.flip else 'off'}, mean threshold {res.threshold:.3f})")
    return 0


def _val_faces(recipe) -> tuple:  # the recipe's held-out identities (BGR crops, labels)
    from desktop_app.train.data import identity_split, load_index_csv
    from desktop_app.train.loop import cache_dir

    arr, sources = load_index_csv(recipe.resolve(recipe.data_root), recipe.index, cache_dir=cache_dir())
    _, va = identity_split(arr, sources, recipe.val_source, recipe.val_ids, seed=1234)
    v = arr.subset(va)
    return v.images[..., ::-1].copy(), v.labels, arr.images


def _calib_faces(pool: np.ndarray, n: int) -> np.ndarray:
    """The same ``n`` pool faces (seed 0) for every INT8 calibration, from `ship --int8` or `quantize`."""
    return pool[np.random.default_rng(0).choice(len(pool), size=n, replace=False)]


INT8_NOTE = ("static QDQ: int8 per-channel weights with reduce_range (7 bits), uint8 activations, MinMax on {n} "
             "pool faces")


def _measure_and_write(name: str, path: Path, info: dict, vimg, vlab, flip: bool, threads: int,
                       manifest: Path) -> None:
    """LFW with and without flip-sum, open-set on the held-out identities, then the manifest entry."""
    from desktop_app.cpuinfo import cpu_description
    from desktop_app.train.evaluate import evaluate_lfw_entry, open_set
    from desktop_app.train.export import manifest_entry, ship
    from desktop_app.vision.embedder import Embedder

    entry = manifest_entry(name, path, info)
    lfw_flip = evaluate_lfw_entry(entry, flip=True, threads=threads)
    lfw_plain = evaluate_lfw_entry(entry, flip=False, threads=threads)
    e = Embedder(entry, threads=threads)
    ve = np.concatenate([e.infer(vimg[i : i + 128], flip=True) for i in range(0, len(vimg), 128)])
    osr = open_set(ve, vlab)
    info.update({"lfw_flip": round(lfw_flip.accuracy, 2), "lfw": round(lfw_plain.accuracy, 2),
                 "val_open_set_dir_far1": round(osr.dir_at_far, 2), "val_rank1": round(osr.rank1, 2),
                 "val_tar_far1e-3": round(osr.verification_tar, 2),
                 "measured_on": cpu_description()})
    entry = manifest_entry(name, path, info, flip=flip)
    ship(entry, manifest)
    print(json.dumps({"name": name, **info}))


def _int8_info(info: dict, calib: int, fp_sha256: str) -> dict:
    """The entry info of an INT8 copy: its FP32 source's info, how it was quantized and from which file."""
    return {**info, "precision": "int8", "quantization": INT8_NOTE.format(n=calib), "from_sha256": fp_sha256}


def cmd_quantize(args: argparse.Namespace) -> int:
    """Re-quantize an installed FP32 model (no checkpoint needed): models/NAME-int8.onnx, measured, in the manifest."""
    try:
        from desktop_app.train.export import quantize_int8
        from desktop_app.train.recipe import load_recipe
    except ImportError as exc:
        raise _cli_error(f"quantizing needs the train extra ({exc}): pip install -e '.[train]'") from None
    models = default_models_dir()
    try:
        fp = load_manifest(models / "manifest.json")[args.name]
        src = fp.verify()
    except (KeyError, ManifestError) as exc:
        raise _cli_error(f"no usable FP32 model {args.name!r} in {models / 'manifest.json'}: {exc}") from None
    recipe = load_recipe(Path(__file__).resolve().parents[2] / fp.info["recipe"])
    vimg, vlab, pool = _val_faces(recipe)
    out = quantize_int8(src, models / f"{args.name}-int8.onnx", _calib_faces(pool, args.calib))
    info = _int8_info({k: v for k, v in fp.info.items() if not k.startswith(("lfw", "val_", "measured_on"))},
                      args.calib, fp.sha256)
    _measure_and_write(f"{args.name}-int8", out, info, vimg, vlab, fp.flip, args.threads, models / "manifest.json")
    return 0


def provenance(recipe, recipe_path: Path, st: dict) -> dict:
    """What a shipped model's manifest entry says of where it comes from: the recipe, the net, how long it trained,
    on what, and from which teachers (by name: the teachers themselves are never shipped)."""
    info = {"recipe": f"recipes/{recipe_path.name}", "net": st["net"], "steps": st["step"],
            "train_minutes": round(st["elapsed"] / 60, 1),
            "data": f"faces112 train/ pool minus {recipe.val_ids} held-out {recipe.val_source} identities"
            if not recipe.image_folder else f"image folder {Path(recipe.image_folder).name}"}
    if recipe.loss in ("distill", "both"):
        info["teacher"] = Path(recipe.teacher).parent.name
        if recipe.teacher2:
            info["teacher2"] = Path(recipe.teacher2).name
    return info


def cmd_ship(args: argparse.Namespace) -> int:
    """Export RUN/final.pt (or --ckpt) to models/NAME.onnx, measure LFW and open-set, write the manifest."""
    try:
        from desktop_app.train.export import export_checkpoint, quantize_int8
        from desktop_app.train.recipe import load_recipe
    except ImportError as exc:
        raise _cli_error(f"shipping needs PyTorch ({exc}): pip install -e '.[train]'") from None

    run = Path(args.run)
    ckpt = Path(args.ckpt) if args.ckpt else run / "final.pt"
    if not ckpt.exists():
        raise _cli_error(f"no checkpoint at {ckpt}")
    recipe = load_recipe(args.recipe)
    models = Path(args.out) if args.out else default_models_dir()
    models.mkdir(parents=True, exist_ok=True)
    path, st = export_checkpoint(ckpt, models / f"{args.name}.onnx")
    vimg, vlab, pool = _val_faces(recipe)
    base = provenance(recipe, Path(args.recipe), st)
    todo = [(args.name, path, {**base, "precision": "fp32"})]
    if args.int8:
        calib = _calib_faces(pool, args.calib)
        todo.append((f"{args.name}-int8", quantize_int8(path, models / f"{args.name}-int8.onnx", calib),
                     _int8_info(base, args.calib, sha256_file(path))))
    for name, p, info in todo:
        _measure_and_write(name, p, info, vimg, vlab, args.flip, args.threads, models / "manifest.json")
        if args.calibrate:
            _calibrate(name, models / "manifest.json", args.threads)
    return 0


def _calibrate(name: str, manifest: Path, threads: int) -> None:
    """Threshold, margin and decision rule belong to the model: benchmarks/calibrate_threshold.py chooses them
    (docs/CALIBRATION.md; the rule with the best DIR on the open-set protocol) and writes them into the manifest
    entry, where the app reads them."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrate_threshold.py"
    if not script.exists():
        raise _cli_error(f"{script} not found: shipping calibrates from a source checkout (or pass --no-calibrate)")
    cmd = [sys.executable, str(script), "--model", name, "--manifest", str(manifest), "--into-manifest",
           "--rule", "auto", "--threads", str(threads or 2)]
    if subprocess.run(cmd).returncode != 0:
        raise _cli_error(f"calibrating {name} failed (command: {' '.join(cmd)}); its entry has no threshold, so the "
                         "app would use the fallback (config.FALLBACK_THRESHOLD)")


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("ship", help="export a training run to models/ (BN-fused ONNX, INT8, manifest)")
    sp.add_argument("run", help="run directory holding final.pt")
    sp.add_argument("--recipe", required=True, help="the recipe the run used")
    sp.add_argument("--ckpt", help="checkpoint (default RUN/final.pt)")
    sp.add_argument("--name", default="fdfacenet")
    sp.add_argument("--out", metavar="DIR", help="write the model and a manifest there instead of models/ (to measure "
                                                 "an intermediate checkpoint without shipping it)")
    sp.add_argument("--int8", action="store_true", help="also write NAME-int8.onnx (static QDQ)")
    sp.add_argument("--calib", type=int, default=256, help="pool faces for INT8 calibration")
    sp.add_argument("--threads", type=threads_arg, default=0, help="ONNX Runtime threads (0: all cores)")
    sp.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                    help="calibrate the match threshold and margin and write them into the manifest entry "
                         "(benchmarks/calibrate_threshold.py, a few minutes)")
    sp.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                    help="the app embeds crop + mirror with this model (LFW +0.26 points on the first run; "
                         "twice the embedding work per new face)")
    sp.set_defaults(func=cmd_ship)

    q = sub.add_parser("quantize", help="re-quantize an installed FP32 model to NAME-int8.onnx and measure it")
    q.add_argument("--name", default="fdfacenet", help="the FP32 manifest entry")
    q.add_argument("--calib", type=int, default=256, help="pool faces for INT8 calibration")
    q.add_argument("--threads", type=threads_arg, default=0, help="ONNX Runtime threads (0: all cores)")
    q.set_defaults(func=cmd_quantize)

    p = sub.add_parser("train", help="train a net from a recipe (recipes/*.toml); resumes from RUN/last.pt")
    p.add_argument("recipe")
    p.add_argument("--out", help="run directory (default runs/<recipe name>)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--resume-from", metavar="FILE",
                   help="a kept checkpoint (fdface keep) to continue from when RUN/last.pt is absent (a new machine)")
    p.set_defaults(func=cmd_train)

    k = sub.add_parser("keep", help="write a small copy of RUN/last.pt to commit (resume with train --resume-from)")
    k.add_argument("run", help="run directory holding last.pt")
    k.add_argument("--recipe", required=True, help="the recipe the run uses")
    k.add_argument("--out", help="file to write (default checkpoints/<recipe name>.pt)")
    k.set_defaults(func=cmd_keep)

    ev = sub.add_parser("eval", help="evaluate an embedder")
    evs = ev.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    lfw = evs.add_parser("lfw", help="LFW 10-fold View 2 on the faces112 pack")
    lfw.add_argument("model", help="manifest name (models/ or recipes/*.json) or an .onnx path in a manifest")
    lfw.add_argument("--manifest", help="manifest JSON describing the model")
    lfw.add_argument("--pack", help="faces112 folder (default ../shared/datasets/faces112)")
    lfw.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False,
                     help="sum the embeddings of the crop and its mirror")
    lfw.add_argument("--threads", type=threads_arg, default=0, help="ONNX Runtime threads (0: all cores)")
    lfw.add_argument("--json", action="store_true")
    lfw.set_defaults(func=cmd_eval_lfw)
