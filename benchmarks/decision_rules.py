"""How should a person's templates be scored against a face? The app's rule against two alternatives, on LFW.

Same open-set protocol, data and grid as benchmarks/calibrate_threshold.py (500 LFW identities enrolled with up to
3 photos, their other photos as genuine probes, one photo of every other identity as a stranger, 5 splits, the
model's cached LFW embeddings), but the per-person score varies:

- ``best``: the best template of the person (the app's rule, issue "Gallery and attendance core");
- ``centroid``: the normalised mean of the person's templates;
- ``best_or_centroid``: the larger of the two.

For each, the calibration rule's choice (highest DIR with FPIR <= 1 % and mis-identification <= 0.5 %) and the
figures at the app's defaults (threshold 0.47, margin 0.08).

    .venv/bin/python benchmarks/decision_rules.py          # needs ../shared and the cache calibrate_threshold.py writes
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import calibrate_threshold as ct  # noqa: E402

from desktop_app.manifest import default_models_dir, load_manifest  # noqa: E402

RULES = ("best", "centroid", "best_or_centroid")


def main() -> int:
    entry = load_manifest(default_models_dir() / "manifest.json")["fdfacenet"]  # the model the calibration uses
    emb, _, ids = ct.embed_lfw(entry, threads=0, cache_dir=Path.home() / ".cache" / "fdface-calibration", limit=None)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    parts, lab = ct.open_set_splits(ids, gallery=500, templates=3, splits=5, seed=0)  # the calibration's defaults
    acc = {r: [np.zeros((len(ct.THRESHOLDS), len(ct.MARGINS))) for _ in range(3)] for r in RULES}
    n_gen = n_imp = 0
    for tids, pids, gprobe, iprobe in parts:
        people = np.unique(pids)
        col = np.searchsorted(people, pids)
        cent = np.zeros((len(people), emb.shape[1]))
        np.add.at(cent, col, emb[tids])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        for probes, genuine in ((gprobe, True), (iprobe, False)):
            sims = emb[probes] @ emb[tids].T
            best = np.full((len(probes), len(people)), -2.0)
            for j in range(len(tids)):
                best[:, col[j]] = np.maximum(best[:, col[j]], sims[:, j])
            c = emb[probes] @ cent.T
            for rule, score in (("best", best), ("centroid", c), ("best_or_centroid", np.maximum(best, c))):
                order = np.argsort(-score, axis=1)[:, :2]
                s1 = score[np.arange(len(score)), order[:, 0]]
                s2 = score[np.arange(len(score)), order[:, 1]]
                right = people[order[:, 0]] == lab[probes]
                ct.accumulate(acc[rule], s1, s1 - s2, right if genuine else None)
            n_gen += len(probes) * genuine
            n_imp += len(probes) * (not genuine)
    th, ma = ct.THRESHOLDS, np.asarray(ct.MARGINS)
    ti, mi = int(np.argmin(abs(th - 0.47))), list(ma).index(0.08)
    print(f"model {entry.name} ({entry.sha256[:12]}), {n_gen} genuine and {n_imp} stranger probes over 5 splits")
    print(f"{'rule':<17} {'chosen t / m':>12} {'DIR':>6} {'FPIR':>7} {'mis-id':>7} | at 0.47 / 0.08: "
          f"{'DIR':>6} {'FPIR':>7} {'mis-id':>7}")
    for rule in RULES:
        os_ = {"dir": acc[rule][0] / n_gen, "fpir": acc[rule][1] / n_imp, "misid": acc[rule][2] / n_gen}
        t, m, at = ct.choose(os_, 0.01, 0.005)
        print(f"{rule:<17} {t:>5.2f} / {m:.2f} {at['dir']:>6.3f} {at['fpir']:>7.4f} {at['misid']:>7.4f} |"
              f"                 {os_['dir'][ti, mi]:>6.3f} {os_['fpir'][ti, mi]:>7.4f} {os_['misid'][ti, mi]:>7.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
