"""Compare the arm64 pipeline's faces with the x86_64 reference, or read the INT8 agreement tables (packaging/arm64).

    python3 compare_results.py X86.jsonl ARM64.jsonl     # `fdface identify --json` outputs: names and boxes
    python3 compare_results.py --int8 int8-cortex-a72.txt ...   # benchmarks/int8_agreement.py outputs

Faces are paired per (file name, frame) by the nearest box, never by print order (two faces of nearly equal
detection score may swap places between processors). Pass: the same number of faces everywhere, the same name
for every pair, every box corner within ``--px`` pixels (default 1). Exit 1 otherwise, naming what differs.
INT8: pass when every table's mean cosine between FP32 and INT8 embeddings is at least ``--min-cos`` (0.99).
Standard library only: it runs on the host, outside the emulated root.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

Key = tuple[str, int]


def load(path: Path) -> dict[Key, list[dict]]:
    """Faces of an `identify --json` output, grouped by (file name, frame; -1 for photos)."""
    out: dict[Key, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        if line.startswith("{"):  # a JSON face; anything else (a status line) is not one
            face = json.loads(line)
            out[(Path(face["source"]).name, int(face.get("frame", -1)))].append(face)
    return out


def box_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def compare(ref: dict[Key, list[dict]], got: dict[Key, list[dict]], px: float = 1.0) -> tuple[list[str], dict]:
    """(problems, figures): every face of ``ref`` paired with the nearest-box face of ``got`` at the same key."""
    problems: list[str] = []
    worst = 0.0
    pairs = 0
    names: dict[str, int] = defaultdict(int)
    for key in sorted(set(ref) | set(got)):
        a, b = ref.get(key, []), list(got.get(key, []))
        where = key[0] if key[1] < 0 else f"{key[0]} frame {key[1]}"
        if len(a) != len(b):
            problems.append(f"{where}: {len(a)} faces on x86_64, {len(b)} on arm64")
            continue
        for fa in a:
            fb = min(b, key=lambda f: box_diff(fa["box"], f["box"]))
            b.remove(fb)
            d = box_diff(fa["box"], fb["box"])
            worst = max(worst, d)
            pairs += 1
            names[fa["name"] or "(unknown)"] += 1
            if fa["name"] != fb["name"]:
                problems.append(f"{where}: {fa['name']} on x86_64, {fb['name']} on arm64 (box {fa['box']})")
            if d > px:
                problems.append(f"{where}: box {fa['box']} on x86_64, {fb['box']} on arm64 ({d:.2f} px apart)")
    return problems, {"faces": pairs, "keys": len(set(ref) | set(got)), "max_box_px": worst, "names": dict(names)}


def int8_means(path: Path) -> list[tuple[str, float]]:
    """(model, mean cosine) rows of an int8_agreement.py table."""
    rows = []
    for line in path.read_text().splitlines():
        m = re.match(r"\|\s*([^|]+?)\s*\|\s*([0-9.]+)\s*\|", line)
        if m:
            rows.append((m.group(1), float(m.group(2))))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--px", type=float, default=1.0, help="largest allowed box difference in pixels")
    ap.add_argument("--int8", action="store_true", help="the files are int8_agreement.py outputs")
    ap.add_argument("--min-cos", type=float, default=0.99)
    args = ap.parse_args(argv)
    if args.int8:
        ok = True
        for f in args.files:
            rows = int8_means(f)
            if not rows:
                print(f"{f}: no table (did the benchmark fail?)")
                ok = False
            for model, mean in rows:
                good = mean >= args.min_cos
                ok &= good
                print(f"{f.name}: {model} mean cosine {mean:.4f} {'>=' if good else '<'} {args.min_cos}: "
                      f"{'INT8 follows FP32' if good else 'INT8 does NOT follow FP32'}")
        return 0 if ok else 1
    if len(args.files) != 2:
        ap.error("give the x86_64 output and the arm64 output")
    ref, got = load(args.files[0]), load(args.files[1])
    problems, fig = compare(ref, got, args.px)
    print(f"{args.files[0].name} vs {args.files[1].name}: {fig['faces']} faces in {fig['keys']} images/frames; "
          f"largest box difference {fig['max_box_px']:.2f} px (allowed {args.px}); names {fig['names']}")
    for p in problems[:30]:
        print("  DIFFERS:", p)
    if len(problems) > 30:
        print(f"  ... and {len(problems) - 30} more")
    if problems:
        kinds = [sum(k in p for p in problems) for k in (" faces on ", " px apart", "on arm64 (box")]
        print(f"{len(problems)} differences: {kinds[0]} images/frames with another number of faces, {kinds[1]} boxes "
              f"more than {args.px} px apart, {kinds[2]} other names")
    print("same names, boxes within tolerance" if not problems and fig["faces"] else "NOT the same")
    return 0 if not problems and fig["faces"] else 1


if __name__ == "__main__":
    sys.exit(main())
