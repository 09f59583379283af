"""Enrollment and the gallery service with the real pipeline (RetinaFace + the shipped embedder) on real photos
(../shared/media), a real SQLite store and a real FAISS index."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.queries import list_people
from desktop_app.config import Settings
from desktop_app.gallery.enroll import Enroller, EnrollmentError, EnrollmentPlan
from desktop_app.gallery.service import Gallery, default_index_path, model_id_for
from desktop_app.manifest import ManifestError, ModelEntry, default_models_dir, load_manifest
from desktop_app.vision.media import read_image
from desktop_app.vision.pipeline import Pipeline
from desktop_app.vision.quality import EnrollmentGate
from tests.conftest import SHARED, shared_path

PEOPLE = ("amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")


def embedder_entry() -> ModelEntry:
    """The shipped model when installed; otherwise (early in the project) the teacher, for tests only."""
    manifest = default_models_dir() / "manifest.json"
    if manifest.exists():
        entry = load_manifest(manifest).get("fdfacenet")
        try:
            if entry is not None:
                entry.verify()  # a model file being replaced (training writes a new one) fails its checksum
                return entry
        except ManifestError:
            pass
    teacher = SHARED / "teachers" / "mobilefacenet-foamliu" / "MobileFaceNet.onnx"
    if not teacher.exists():
        pytest.skip("no embedding model: models/fdfacenet.onnx and the teacher are both absent")
    return ModelEntry(name="teacher-mobilefacenet", file=str(teacher), output_dim=128)


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(Settings(), embedder_entry=embedder_entry(), threads=1)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings().with_changes("storage", database_url=f"sqlite:///{tmp_path / 'g.db'}")


def open_gallery(settings: Settings, pipeline: Pipeline, persist: bool = True) -> Gallery:
    e = pipeline.embedder
    return Gallery.open(settings, model_id_for(e.entry), e.dim, persist_index=persist)


def photo(name: str, i: int) -> Path:
    return shared_path("media", "people", name, f"{name}{i}.png")


def enroll(enroller: Enroller, name: str, idx: tuple[int, ...], **kw):
    plan = enroller.prepare_files([photo(name, i) for i in idx])
    return enroller.commit(plan, name=name.title(), **kw)


# ------------------------------------------------------------------------------------------- gates and refusals
def test_refusals_say_why(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    bbt = shared_path("media", "scenes", "bbt1.jpg")
    empty = Path(settings.storage.database_url.replace("sqlite:///", "")).with_name("wall.png")
    cv2.imwrite(str(empty), np.tile(np.linspace(60, 200, 320, dtype=np.uint8), (240, 1)))  # a bare wall
    stuart5 = photo("stuart", 5)  # head turned well sideways
    plan = en.prepare_files([bbt, empty, stuart5])
    reasons = {r.source: " ".join(r.reasons) for r in plan.refused}
    assert not plan.accepted
    assert "faces in the photo" in reasons["bbt1.jpg"] and "largest" in reasons["bbt1.jpg"]
    assert "no face found" in reasons["wall.png"]
    assert "turned sideways" in reasons["stuart5.png"]
    with pytest.raises(EnrollmentError, match="no usable photo"):
        en.commit(plan, name="Nobody")
    # a blurred photo and a tiny one
    amy = read_image(photo("amy", 1))
    # padded first: the aligned crop of a tight 150 px photo has black borders whose edges look "sharp"
    padded = cv2.copyMakeBorder(amy, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(padded, (0, 0), 4)
    tiny = cv2.resize(amy, (40, 40), interpolation=cv2.INTER_AREA)
    plan = en.prepare([("blurred", blurred), ("tiny", tiny)])
    reasons = {r.source: " ".join(r.reasons) for r in plan.refused}
    assert "blurry" in reasons["blurred"]
    assert "too small" in reasons["tiny"] or "no face" in reasons["tiny"]
    # unreadable file
    bad = settings.storage.database_url.replace("sqlite:///", "")
    Path(bad + ".png").write_bytes(b"not an image")
    plan = en.prepare_files([bad + ".png"])
    assert "not a readable image" in str(plan.refused[0])
    with Session(g.engine) as s:
        assert st.count_people(s) == 0
    g.close()


def test_largest_face_of_a_group_photo_on_request(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    plan = en.prepare_files([shared_path("media", "scenes", "bbt1.jpg")], largest=True)
    # the largest face is either enrolled or refused for its quality, never for the number of faces
    assert len(plan.accepted) + len(plan.refused) == 1
    for r in plan.refused:
        assert "faces in the photo" not in str(r)
    g.close()


# ------------------------------------------------------------------------------------------- enroll, recognise
def test_enroll_then_recognise_held_out_photos(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    for name in PEOPLE:
        res = enroll(en, name, (1, 2, 3, 4), confirm=True)
        assert len(res.template_ids) == 4
    with Session(g.engine) as s:
        assert st.count_people(s) == 8
        assert s.scalar(select(func.count(st.TemplateCrop.template_id))) == 32  # keep_crops default
    queries = np.stack([pipeline.analyze_still(read_image(photo(n, 5))).faces[0].embedding for n in PEOPLE])
    ids = {name: pid for pid, name in g.index.names.items()}
    matches = g.decide(queries, threshold=-1.0, margin=0.0)
    right = sum(m.candidate_id == ids[n.title()] for m, n in zip(matches, PEOPLE, strict=True))
    assert right >= 5, [(m.name, m.similarity) for m in matches]
    g.close()


def test_more_templates_improve_recognition(pipeline, tmp_path) -> None:
    """Leave-one-out on the 8 people x 5 photos: a gallery with 4 templates per person identifies the held-out
    photo better (rank-1 and the margin over the best other person) than one with a single template."""
    emb = {(n, i): pipeline.analyze_still(read_image(photo(n, i))).faces[0].embedding
           for n in PEOPLE for i in range(1, 6)}
    scores = {}
    for k in (1, 4):
        rank1, margins = 0, []
        for held in range(1, 6):
            url = f"sqlite:///{tmp_path / f'k{k}-{held}.db'}"
            settings = Settings().with_changes("storage", database_url=url)
            g = Gallery.open(settings, "test-model", pipeline.embedder.dim, persist_index=False)
            en = Enroller(pipeline, g, settings, gate=EnrollmentGate(max_yaw=90.0))  # stuart5 looks aside
            others = [(held + t) % 5 + 1 for t in range(k)]
            for n in PEOPLE:
                en.commit(en.prepare_files([photo(n, i) for i in others]), name=n, confirm=True)
            ids = {name: pid for pid, name in g.index.names.items()}
            for n in PEOPLE:
                (m,) = g.decide(emb[(n, held)], threshold=-1.0, margin=0.0)
                rank1 += m.candidate_id == ids[n]
                hits = g.index.search(emb[(n, held)], k=64)
                true = hits.similarities[0][hits.person_ids[0] == ids[n]].max()
                other = hits.similarities[0][hits.person_ids[0] != ids[n]].max()
                margins.append(true - other)
            g.close()
        scores[k] = (rank1 / 40, float(np.mean(margins)))
    assert scores[4][0] >= scores[1][0], scores
    assert scores[4][1] > scores[1][1], scores


# ------------------------------------------------------------------------------------------- duplicates, atomicity
def test_duplicate_face_needs_confirmation(pipeline, settings) -> None:
    settings = settings.with_changes("recognition", threshold=0.3)
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    amy = enroll(en, "amy", (1, 2, 3))
    plan = en.prepare_files([photo("amy", 4)])
    assert plan.needs_confirmation
    r = plan.resembles[0]
    assert r.person_id == amy.person_id and r.name == "Amy" and r.similarity >= 0.3
    with pytest.raises(EnrollmentError, match="looks like Amy.*confirm"):
        en.commit(plan, name="Amy Twin")
    with Session(g.engine) as s:
        assert st.count_people(s) == 1
    twin = en.commit(plan, name="Amy Twin", confirm=True)
    assert twin.person_id != amy.person_id
    # adding photos to the same person is not a duplicate of themselves
    more = en.prepare_files([photo("amy", 5)], person_id=amy.person_id)
    assert all(x.person_id != amy.person_id for x in more.resembles)
    g.close()


def test_a_name_already_taken_needs_confirmation(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    amy = enroll(en, "amy", (1, 2), external_id="S-7")
    plan = en.prepare_files([photo("penny", 1)], name="  AMY ")  # up to case and spacing
    assert plan.needs_confirmation and [x.person_id for x in plan.same_name] == [amy.person_id]
    assert plan.warnings[0] == f"Amy (#{amy.person_id}, id S-7) is already enrolled under this name"
    with pytest.raises(EnrollmentError, match="already enrolled under this name.*confirm"):
        en.commit(plan, name="Amy")
    with Session(g.engine) as s:
        assert st.count_people(s) == 1
    second = en.commit(plan, name="Amy", confirm=True)  # two people may share a name, once someone says so
    assert second.person_id != amy.person_id
    assert not en.prepare_files([photo("penny", 2)], name="Penny").same_name
    assert not en.prepare_files([photo("amy", 3)], person_id=amy.person_id, name="Amy").same_name  # adding photos
    g.close()


def test_enrollment_is_all_or_nothing(pipeline, settings, monkeypatch) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    enroll(en, "raj", (1, 2), external_id="E-1")
    plan = en.prepare_files([photo("penny", i) for i in (1, 2, 3)])
    with pytest.raises(st.StoreError, match="already belongs to Raj"):
        en.commit(plan, name="Penny", external_id="E-1", confirm=True)
    real = st.add_templates

    def failing(s, person_id, templates):
        real(s, person_id, templates[:2])
        raise st.StoreError("disk full (simulated)")

    monkeypatch.setattr(st, "add_templates", failing)
    before = len(g.index)
    with pytest.raises(st.StoreError, match="simulated"):
        en.commit(plan, name="Penny", confirm=True)
    with Session(g.engine) as s:
        assert [p.name for p in list_people(s)] == ["Raj"]
        assert s.scalar(select(func.count(st.Template.id))) == 2
    assert len(g.index) == before
    g.close()


# ------------------------------------------------------------------------------------------- index from the store
def test_index_is_rebuilt_from_the_store_when_its_file_is_bad(pipeline, tmp_path) -> None:
    settings = Settings().with_changes("storage", database_url=f"sqlite:///{tmp_path / 'g.db'}", hnsw_above=100)
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    for n in PEOPLE[:4]:
        enroll(en, n, (1, 2, 3), confirm=True)
    # a large synthetic crowd so that the index is HNSW and gets persisted
    rng = np.random.default_rng(0)
    with Session(g.engine) as s, s.begin():
        crowd = st.add_person(s, "Crowd")
        vecs = rng.standard_normal((150, g.dim)).astype(np.float32)
        st.add_templates(s, crowd.id, [st.NewTemplate(v / np.linalg.norm(v), g.model_id) for v in vecs])
    g.close()
    q = np.stack([pipeline.analyze_still(read_image(photo(n, 4))).faces[0].embedding for n in PEOPLE[:4]])

    g1 = open_gallery(settings, pipeline)
    assert g1.load_source == "store" and len(g1.index) == 162
    assert g1.index.wait_ready(60) and g1.index.kind == "hnsw"  # built on a thread; saved when ready
    want = [m.candidate_id for m in g1.decide(q, -1.0, 0.0)]
    g1.close()
    path = default_index_path(settings.storage.database_url, g1.model_id)
    assert path.exists()
    g2 = open_gallery(settings, pipeline)
    assert g2.load_source == "file" and [m.candidate_id for m in g2.decide(q, -1.0, 0.0)] == want
    g2.engine.dispose()
    path.write_bytes(b"\x00garbage" * 100)  # corrupt
    g3 = open_gallery(settings, pipeline)
    assert g3.load_source == "store" and [m.candidate_id for m in g3.decide(q, -1.0, 0.0)] == want
    assert g3.index.wait_ready(60)  # its graph, once built, is saved again
    g3.engine.dispose()
    path.unlink()  # deleted
    Path(str(path) + ".npz").unlink()
    g4 = open_gallery(settings, pipeline)
    assert g4.load_source == "store" and len(g4.index) == 162
    assert g4.index.wait_ready(60)
    # an enrollment behind the file's back (another kiosk) makes the file stale: rebuilt, and refresh() sees it
    g4.close()
    g5 = open_gallery(settings, pipeline)
    other = open_gallery(settings, pipeline, persist=False)
    enroll(Enroller(pipeline, other, settings), "sheldon", (1, 2), confirm=True)
    assert g5.refresh() and len(g5.index) == 164
    g5.close()
    other.engine.dispose()


def test_delete_and_deactivate_update_the_index_in_place(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    a = enroll(en, "amy", (1, 2, 3))
    b = enroll(en, "howard", (1, 2), confirm=True)
    assert set(g.index.person_ids) == {a.person_id, b.person_id}
    g.set_active(a.person_id, False)
    assert g.index.person_ids == [b.person_id]
    g.set_active(a.person_id, True)
    assert len(g.index.templates_of(a.person_id)) == 3
    er = g.delete_person(a.person_id)
    assert er.templates == 3 and g.index.person_ids == [b.person_id]
    g.close()
    assert open_gallery(settings, pipeline).index.person_ids == [b.person_id]


def test_model_change_recomputes_from_crops_or_asks_for_reenrollment(pipeline, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    settings = Settings().with_changes("storage", database_url=url)
    no_crops = settings.with_changes("attendance", keep_crops=False)
    dim = pipeline.embedder.dim
    old = Gallery.open(settings, "old-model@1", dim, persist_index=False)
    enroll(Enroller(pipeline, old, settings), "amy", (1, 2))
    enroll(Enroller(pipeline, old, no_crops), "raj", (1, 2), confirm=True)
    old.close()
    new = Gallery.open(settings, "new-model@2", dim, persist_index=False)
    assert len(new.index) == 0  # another model's templates are never searched
    report = new.stale()
    assert report.recomputable == 2 and [n for _, n in report.people_to_reenroll] == ["Raj"]
    assert new.recompute(pipeline.embedder.infer) == 2
    assert len(new.index) == 2 and list(new.index.names.values()) == ["Amy", "Raj"]
    q = pipeline.analyze_still(read_image(photo("amy", 3))).faces[0].embedding
    (m,) = new.decide(q, -1.0, 0.0)
    assert new.index.names[m.candidate_id] == "Amy"
    assert new.stale().recomputable == 0
    new.close()


def test_plan_for_missing_person(pipeline, settings) -> None:
    g = open_gallery(settings, pipeline)
    en = Enroller(pipeline, g, settings)
    plan = en.prepare_files([photo("amy", 1)])
    with pytest.raises(EnrollmentError, match="no person #999"):
        en.commit(EnrollmentPlan(plan.accepted, (), (), person_id=999))
    g.close()


def test_refresh_picks_up_another_kiosks_changes(tmp_path) -> None:
    """Two app instances on one database: enrollment, renaming and deactivation by one reach the other."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = Settings().with_changes("storage", database_url=url)
    a = Gallery.open(settings, "m@1", 8, persist_index=False)
    b = Gallery.open(settings, "m@1", 8, persist_index=False)
    v = np.eye(8, dtype=np.float32)
    with Session(a.engine) as s, s.begin():
        p = st.add_person(s, "Ada")
        rows = st.add_templates(s, p.id, [st.NewTemplate(v[0], "m@1"), st.NewTemplate(v[1], "m@1")])
        pid, tids = p.id, [r.id for r in rows]
    a.index_added(pid, "Ada", tids, v[:2])
    assert not a.refresh()  # its own change is already in
    assert b.refresh() and b.index.names == {pid: "Ada"} and len(b.index) == 2
    assert not b.refresh()
    a.rename(pid, "Ada L.")
    assert b.refresh() and b.index.names == {pid: "Ada L."}
    a.set_active(pid, False)
    assert b.refresh() and len(b.index) == 0
    a.close()
    b.close()
