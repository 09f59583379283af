"""How many usable faces a folder of images holds, by the app's own detector (the registry survey of issue 16).

Each sub-folder of ROOT is one candidate (the images unpacked from one package); for each the script prints the
images read, the images with at least one face, the faces, and the median face size (shorter box side, px). A face
counts when RetinaFace scores it >= 0.9 and it is at least 40 px: the bar below which an aligned 112x112 crop is
mostly upscaled blur. Duplicates are not removed: the counts are an upper bound.

    .venv/bin/python benchmarks/count_faces.py /work/faces-extra/imgs

docs/TRAINING.md ("More faces") says how the packages were fetched and what the counts mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.vision.detector import RetinaFaceDetector  # noqa: E402
from desktop_app.vision.media import ImageReadError, read_image  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp"}
MIN_SCORE = 0.9
MIN_FACE_PX = 40


def count(folder: Path, det: RetinaFaceDetector) -> tuple[int, int, int, float]:
    """(images read, images with a face, faces, median face size in px) of every image under ``folder``."""
    n_img = n_with = n_face = 0
    sizes: list[float] = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in SUFFIXES or not p.is_file():
            continue
        try:
            img = read_image(p)
        except ImageReadError:
            continue
        d = det.infer(img)
        n_img += 1
        n_with += len(d) > 0
        n_face += len(d)
        sizes += np.minimum(d.boxes[:, 2] - d.boxes[:, 0], d.boxes[:, 3] - d.boxes[:, 1]).tolist()
    return n_img, n_with, n_face, float(np.median(sizes)) if sizes else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a folder with one sub-folder of images per candidate package")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"{args.root}: not a folder; unpack each package's images into ROOT/<package>/ first")
        return 2
    det = RetinaFaceDetector(threads=1, score_threshold=MIN_SCORE, min_face_px=MIN_FACE_PX)
    print("candidate | images | with a face | faces | median face px")
    for sub in sorted(p for p in args.root.iterdir() if p.is_dir()):
        n_img, n_with, n_face, med = count(sub, det)
        print(f"{sub.name} | {n_img} | {n_with} | {n_face} | {med:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
