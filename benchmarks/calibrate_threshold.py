"""Calibrate recognition.threshold and recognition.margin for an embedder on ../shared data.

How (see docs/CALIBRATION.md):

1. Embed every LFW crop of ../shared/datasets/faces112 (aligned exactly like the live pipeline's crops).
2. Verification: cosine similarity of the 3000 genuine LFW View-2 pairs, and of up to 2M impostor pairs drawn
   between different identities: the threshold for a false-accept rate (FAR) per comparison of 1e-3 / 1e-4 / 1e-5.
3. Open-set identification, the app's own decision (``GalleryIndex.decide``): ``--gallery`` LFW identities with at
   least two photos are enrolled with up to ``--templates`` photos each; their other photos are genuine probes, one
   photo of every identity not enrolled an impostor probe. For every (threshold, margin) on a grid: DIR (genuine
   probe accepted as the right person), FPIR (impostor probe accepted as anybody) and mis-identification (genuine
   probe accepted as someone else), averaged over ``--splits`` random splits.
4. Choice: among the grid points with FPIR <= ``--fpir`` and mis-identification <= ``--misid``, those within
   ``DIR_TIE`` of the highest DIR; of these the largest margin, then the highest threshold.
5. Check on ../shared/media/people (8 people x 5 photos, leave-one-out through the full pipeline).

    .venv/bin/python benchmarks/calibrate_threshold.py                      # the shipped models/fdfacenet.onnx
    .venv/bin/python benchmarks/calibrate_threshold.py --teacher            # the MobileFaceNet teacher, for reference
    .venv/bin/python benchmarks/calibrate_threshold.py --write docs/CALIBRATION.md
    .venv/bin/python benchmarks/calibrate_threshold.py --into-manifest      # what `fdface ship` runs: the chosen
        threshold and margin go into the model's manifest entry, where the app reads them
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from desktop_app.gallery.index import GalleryIndex  # noqa: E402
from desktop_app.manifest import ModelEntry, default_models_dir, load_manifest, sha256_file, write_entry  # noqa: E402
from desktop_app.vision.embedder import Embedder  # noqa: E402

SHARED = Path(os.environ.get("FDFACE_SHARED", REPO.parent / "shared"))
THRESHOLDS = np.round(np.arange(0.10, 0.901, 0.01), 2)
MARGINS = (0.0, 0.02, 0.03, 0.05, 0.08, 0.10, 0.15)
FARS = (1e-3, 1e-4, 1e-5)
DIR_TIE = 0.002  # DIR differences below this are noise (about 10k genuine probes: standard error ~0.004)
MARK_START, MARK_END = "<!-- calibration:start -->", "<!-- calibration:end -->"


def model_entry(args: argparse.Namespace) -> ModelEntry:
    if args.teacher:
        path = SHARED / "teachers" / "mobilefacenet-foamliu" / "MobileFaceNet.onnx"
        return ModelEntry(name="teacher-mobilefacenet", file=str(path), output_dim=128)
    manifest = Path(args.manifest) if args.manifest else default_models_dir() / "manifest.json"
    entries = load_manifest(manifest)
    if args.model not in entries:
        raise SystemExit(f"no model {args.model!r} in {manifest}")
    return entries[args.model]


def embed_lfw(entry: ModelEntry, threads: int, cache_dir: Path, limit: int | None) -> tuple[np.ndarray, list[str],
                                                                                             list[str]]:
    """Embeddings [N, D] of LFW crops (cached by model checksum), their paths and identities."""
    root = SHARED / "datasets" / "faces112"
    with open(root / "lfw" / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if limit:
        rows = rows[:limit]
    paths = [r["path"] for r in rows]
    ids = [r["identity"] for r in rows]
    sha = sha256_file(entry.path)  # the file as it is (a manifest may lag behind a replaced file)
    cache = cache_dir / f"lfw-{entry.name}-{sha[:12]}-{len(paths)}{'-flip' if entry.flip else ''}.npy"
    if cache.exists():
        return np.load(cache), paths, ids
    emb_model = Embedder(entry, threads=threads, verify=False)
    out = np.empty((len(paths), entry.output_dim), np.float32)
    t0 = time.perf_counter()
    for a in range(0, len(paths), 64):
        crops = np.stack([cv2.imread(str(root / p)) for p in paths[a:a + 64]])
        out[a:a + len(crops)] = emb_model.infer(crops)
        if a % 2048 == 0:
            print(f"  embedded {a + len(crops)}/{len(paths)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out, paths, ids


def verification(emb: np.ndarray, paths: list[str], ids: list[str], impostors: int, seed: int) -> dict:
    pos = {p: i for i, p in enumerate(paths)}
    gen = []
    with open(SHARED / "datasets" / "faces112" / "lfw-pairs.txt") as fh:
        next(fh)
        for line in fh:
            f = line.split()
            if len(f) == 3:
                a, b = f"lfw/{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"lfw/{f[0]}/{f[0]}_{int(f[2]):04d}.jpg"
                if a in pos and b in pos:
                    gen.append(float(emb[pos[a]] @ emb[pos[b]]))
    rng = np.random.default_rng(seed)
    lab = np.unique(np.asarray(ids), return_inverse=True)[1]
    i = rng.integers(0, len(emb), impostors)
    j = rng.integers(0, len(emb), impostors)
    keep = lab[i] != lab[j]
    imp = np.einsum("nd,nd->n", emb[i[keep]], emb[j[keep]])
    gen_a = np.asarray(gen)
    out = {"genuine_pairs": len(gen_a), "impostor_pairs": int(keep.sum()),
           "genuine_mean": float(gen_a.mean()) if len(gen_a) else None, "impostor_mean": float(imp.mean()),
           "impostor_max": float(imp.max()), "far": {}}
    for far in FARS:
        thr = float(np.quantile(imp, 1 - far))
        out["far"][f"{far:g}"] = {"threshold": thr, "tar": float((gen_a >= thr).mean()) if len(gen_a) else None}
    return out


def open_set_splits(ids: list[str], gallery: int, templates: int, splits: int, seed: int):
    """The open-set protocol's random splits: per split (template rows, their identity labels, genuine probe rows,
    stranger probe rows) and, once, the label of every row."""
    names, lab = np.unique(np.asarray(ids), return_inverse=True)
    multi = np.flatnonzero(np.bincount(lab) >= 2)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(splits):
        enrolled = rng.choice(multi, size=min(gallery, len(multi) // 2), replace=False)
        is_enrolled = np.zeros(len(names), bool)
        is_enrolled[enrolled] = True
        tids, pids, gprobe = [], [], []
        for person in enrolled:
            idx = rng.permutation(np.flatnonzero(lab == person))
            k = min(templates, len(idx) - 1)
            tids += idx[:k].tolist()
            pids += [int(person)] * k
            gprobe += idx[k:].tolist()
        iprobe = [int(rng.choice(np.flatnonzero(lab == p))) for p in np.flatnonzero(~is_enrolled)]
        out.append((np.array(tids), np.array(pids), gprobe, iprobe))
    return out, lab


def accumulate(acc: list[np.ndarray], best: np.ndarray, gap: np.ndarray, right: np.ndarray | None) -> None:
    """Add one batch of probes to the (DIR, FPIR, mis-identification) counts on the grid; ``right`` is None for
    strangers."""
    ok = (best[None, :, None] >= THRESHOLDS[:, None, None]) & (gap[None, :, None] >= np.asarray(MARGINS))
    if right is None:
        acc[1] += ok.sum(1)
    else:
        acc[0] += (ok & right[None, :, None]).sum(1)
        acc[2] += (ok & ~right[None, :, None]).sum(1)


def open_set(emb: np.ndarray, ids: list[str], gallery: int, templates: int, splits: int, seed: int,
             rule: str = "best") -> dict:
    """DIR / FPIR / mis-identification on the (threshold, margin) grid, through GalleryIndex.decide."""
    parts, lab = open_set_splits(ids, gallery, templates, splits, seed)
    acc = [np.zeros((len(THRESHOLDS), len(MARGINS))) for _ in range(3)]
    n_gen = n_imp = 0
    for tids, pids, gprobe, iprobe in parts:
        index = GalleryIndex(emb.shape[1], hnsw_above=10**9)
        index.add(tids, pids, emb[tids])
        for probes, genuine in ((gprobe, True), (iprobe, False)):
            ms = index.decide(emb[probes], threshold=-1.0, margin=0.0, rule=rule)
            best = np.array([m.similarity for m in ms])
            gap = best - np.array([m.runner_up for m in ms])
            right = np.array([m.candidate_id == lab[p] for m, p in zip(ms, probes, strict=True)])
            accumulate(acc, best, gap, right if genuine else None)
            n_gen += len(probes) * genuine
            n_imp += len(probes) * (not genuine)
    return {"dir": acc[0] / n_gen, "fpir": acc[1] / n_imp, "misid": acc[2] / n_gen, "genuine_probes": n_gen,
            "impostor_probes": n_imp, "gallery": len(np.unique(parts[0][1])) if parts else 0,
            "splits": splits}


def choose(os_: dict, fpir_max: float, misid_max: float) -> tuple[float, float, dict]:
    """Highest DIR among the points within both error bounds; DIRs within ``DIR_TIE`` of the best count as equal
    (smaller than the sampling error), and among those the larger margin, then the higher threshold, wins: the
    margin buys fewer mis-identifications for a negligible loss."""
    ok = (os_["fpir"] <= fpir_max) & (os_["misid"] <= misid_max)
    if not ok.any():
        raise SystemExit(f"no grid point meets FPIR <= {fpir_max} and mis-identification <= {misid_max}")
    top = float(os_["dir"][ok].max())
    near = ok & (os_["dir"] >= top - DIR_TIE)
    cands = [(float(MARGINS[m]), float(THRESHOLDS[t]), t, m) for t, m in zip(*np.nonzero(near), strict=True)]
    _, _, t, m = max(cands)
    return float(THRESHOLDS[t]), float(MARGINS[m]), {k: float(os_[k][t, m]) for k in ("dir", "fpir", "misid")}


def people_check(entry: ModelEntry, threshold: float, margin: float, threads: int, rule: str = "best") -> dict:
    """Leave-one-out on media/people through the full pipeline: 4 templates per person, the 5th photo queried."""
    from desktop_app.config import Settings
    from desktop_app.vision.media import read_image
    from desktop_app.vision.pipeline import Pipeline

    root = SHARED / "media" / "people"
    pipe = Pipeline(Settings(), embedder_entry=entry, threads=threads, verify_model=False)
    people = sorted(p.name for p in root.iterdir() if p.is_dir())
    emb = {(n, i): pipe.analyze_still(read_image(root / n / f"{n}{i}.png")).faces[0].embedding
           for n in people for i in range(1, 6)}
    right = accepted_wrong = 0
    for held in range(1, 6):
        index = GalleryIndex(entry.output_dim)
        k = 0
        for pid, n in enumerate(people):
            for i in range(1, 6):
                if i != held:
                    index.add([k], [pid], emb[(n, i)][None])
                    k += 1
        for pid, n in enumerate(people):
            (m,) = index.decide(emb[(n, held)], threshold, margin, rule=rule)
            right += m.accepted and m.person_id == pid
            accepted_wrong += m.accepted and m.person_id != pid
    total = 5 * len(people)
    return {"queries": total, "accepted_right": right / total, "accepted_wrong": accepted_wrong / total}


def report(entry: ModelEntry, ver: dict, os_: dict, thr: float, mar: float, at: dict, ppl: dict,
           args: argparse.Namespace) -> str:
    sha = sha256_file(entry.path)[:12]
    info = (entry.info or {}) if entry.sha256.startswith(sha) else {}  # manifest facts only if they are this file's
    lines = [
        f"Model: `{entry.name}` (sha256 {sha}..., {entry.output_dim}-d, "
        f"{'crop + mirror embedded' if entry.flip else 'crop only'}"
        + (f", {info.get('net')}, {info.get('steps')} training steps, LFW {info.get('lfw')} % in its manifest"
           if info.get("net") else "") + ")",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: `{args.command_line}`",
        "",
        f"**Chosen: threshold {thr:.2f}, margin {mar:.2f}, rule {getattr(args, 'chosen_rule', 'best')}** "
        f"(FPIR <= {args.fpir:g}, mis-identification <= "
        f"{args.misid:g}, highest DIR within {DIR_TIE}, then the largest margin): DIR {at['dir']:.3f}, "
        f"FPIR {at['fpir']:.4f}, mis-identification {at['misid']:.4f}.",
        "",
        f"Verification ({ver['genuine_pairs']} genuine LFW pairs, {ver['impostor_pairs']:,} random impostor pairs): "
        f"genuine mean cosine {ver['genuine_mean']:.3f}, impostor mean {ver['impostor_mean']:.3f}, "
        f"max {ver['impostor_max']:.3f}.",
        "",
        "| FAR per comparison | threshold | TAR (LFW genuine pairs) |",
        "|---|---|---|",
    ]
    for far, v in ver["far"].items():
        lines.append(f"| {far} | {v['threshold']:.3f} | {v['tar']:.3f} |")
    lines += [
        "",
        f"Open-set identification: {os_['gallery']} enrolled LFW identities x up to {args.templates} templates, "
        f"{os_['splits']} random splits, {os_['genuine_probes']:,} genuine and {os_['impostor_probes']:,} impostor "
        "probes. DIR / FPIR / mis-identification at a few thresholds (margin as chosen):",
        "",
        "| threshold | DIR | FPIR | mis-id |",
        "|---|---|---|---|",
    ]
    m = MARGINS.index(mar)
    for thr_show in sorted({round(thr + d, 2) for d in (-0.10, -0.05, 0.0, 0.05, 0.10)}):
        t = int(np.argmin(np.abs(THRESHOLDS - thr_show)))
        lines.append(f"| {THRESHOLDS[t]:.2f} | {os_['dir'][t, m]:.3f} | {os_['fpir'][t, m]:.4f} | "
                     f"{os_['misid'][t, m]:.4f} |")
    lines += [
        "",
        f"Check on media/people (8 people, leave-one-out, 4 templates each, full pipeline): "
        f"{ppl['accepted_right']:.3f} of {ppl['queries']} held-out photos accepted as the right person, "
        f"{ppl['accepted_wrong']:.3f} as a wrong one.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="calibrate recognition threshold and margin on ../shared data")
    ap.add_argument("--model", default="fdfacenet", help="manifest entry (default: fdfacenet)")
    ap.add_argument("--manifest", help="manifest.json (default: the installed models)")
    ap.add_argument("--teacher", action="store_true", help="calibrate the MobileFaceNet teacher instead")
    ap.add_argument("--gallery", type=int, default=500, help="enrolled identities per split")
    ap.add_argument("--templates", type=int, default=3, help="templates per enrolled identity (at most)")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--impostors", type=int, default=2_000_000, help="random impostor pairs for FAR")
    ap.add_argument("--fpir", type=float, default=0.01, help="largest acceptable FPIR per decision")
    ap.add_argument("--misid", type=float, default=0.005, help="largest acceptable mis-identification rate")
    ap.add_argument("--limit", type=int, help="only the first N LFW crops (quick checks)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fdface-calibration"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write all figures to this file")
    ap.add_argument("--write", help="replace the generated section of this Markdown file (docs/CALIBRATION.md)")
    ap.add_argument("--rule", default="best", choices=("best", "centroid", "best_or_centroid", "auto"),
                    help="the per-person score (GalleryIndex.decide); auto: each one, and the simplest (in the order "
                         f"above) whose DIR at the bounds is within {DIR_TIE} of the highest")
    ap.add_argument("--into-manifest", action="store_true",
                    help="write the chosen threshold and margin into the model's manifest entry (the app's values "
                         "for this model unless a setting overrides them)")
    args = ap.parse_args(argv)
    args.command_line = "python benchmarks/calibrate_threshold.py " + " ".join(argv if argv is not None
                                                                                 else sys.argv[1:])
    entry = model_entry(args)
    print(f"model {entry.name} ({entry.path})", flush=True)
    emb, paths, ids = embed_lfw(entry, args.threads, Path(args.cache), args.limit)
    ver = verification(emb, paths, ids, args.impostors, args.seed)
    rules = ("best", "centroid", "best_or_centroid") if args.rule == "auto" else (args.rule,)
    by_rule = {}
    for rule in rules:
        o = open_set(emb, ids, args.gallery, args.templates, args.splits, args.seed, rule)
        by_rule[rule] = (o, *choose(o, args.fpir, args.misid))
        print(f"rule {rule}: threshold {by_rule[rule][1]:.2f}, margin {by_rule[rule][2]:.2f}, "
              f"DIR {by_rule[rule][3]['dir']:.4f}", flush=True)
    top = max(v[3]["dir"] for v in by_rule.values())  # the simplest rule within the tie of the best DIR
    rule = next(r for r in rules if by_rule[r][3]["dir"] >= top - DIR_TIE)
    os_, thr, mar, at = by_rule[rule]
    args.chosen_rule = rule
    ppl = people_check(entry, thr, mar, args.threads, rule)
    text = report(entry, ver, os_, thr, mar, at, ppl, args)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": entry.name, "sha256": sha256_file(entry.path), "threshold": thr, "margin": mar, "rule": rule,
            "at_choice": at,
            "verification": ver, "people": ppl, "thresholds": THRESHOLDS.tolist(), "margins": list(MARGINS),
            **{k: os_[k].tolist() for k in ("dir", "fpir", "misid")}}, indent=1))
    if args.write:
        doc = Path(args.write)
        old = doc.read_text() if doc.exists() else f"{MARK_START}\n{MARK_END}\n"
        if MARK_START not in old or MARK_END not in old:
            old += f"\n{MARK_START}\n{MARK_END}\n"
        head, rest = old.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        doc.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}")
        print(f"wrote {doc}")
    if args.into_manifest and not args.teacher:
        manifest = Path(args.manifest) if args.manifest else default_models_dir() / "manifest.json"
        calibration = {"date": time.strftime("%Y-%m-%d"), "command": args.command_line,
                       "lfw_crops": len(paths), **{k: round(v, 4) for k, v in at.items()},
                       "dir_by_rule": {r: round(v[3]["dir"], 4) for r, v in by_rule.items()}}
        write_entry(manifest, replace(entry, threshold=round(thr, 4), margin=round(mar, 4), rule=rule,
                                      info={**entry.info, "calibration": calibration}))
        print(f"wrote threshold {thr:.2f}, margin {mar:.2f} and rule {rule} into {manifest} ({entry.name})")
    print(f"[recognition]\nthreshold = {thr:.2f}\nmargin = {mar:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
