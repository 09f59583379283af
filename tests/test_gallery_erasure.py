"""Right to erasure leaves no trace on disk: after a person is deleted, neither the database file, its write-ahead
log, the saved index files nor anything else in the data folder holds their name, an embedding of theirs or the
bytes of their face crops and event snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder
from desktop_app.config import AttendanceSettings
from desktop_app.gallery.service import Gallery, default_index_path, erase_person

DIM = 64
MODEL = "m@1"
NAME = "Zebulon Quartermaine-Oyelaran"
T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def jpeg(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def traces(folder: Path, needles: dict[str, bytes]) -> list[str]:
    """"file: what" for every needle found in any file under ``folder``."""
    found = []
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{f.name}: {what}" for what, needle in needles.items() if needle in data]
    return found


def _needles(embeddings: list[np.ndarray], jpegs: list[bytes]) -> dict[str, bytes]:
    out = {"name": NAME.encode(), "name (UTF-16)": NAME.encode("utf-16-le")}
    for i, e in enumerate(embeddings):  # 64 bytes out of the middle: the stored float32 values
        out[f"embedding {i}"] = st.embedding_bytes(e)[64:128]
    for i, j in enumerate(jpegs):
        out[f"jpeg {i}"] = j[len(j) // 2:len(j) // 2 + 64]
    return out


def _enroll(engine, name: str, seeds: list[int], crops: list[bytes] | None = None) -> tuple[int, list[int]]:
    with Session(engine) as s, s.begin():
        p = st.add_person(s, name, external_id=f"X-{seeds[0]}")
        rows = st.add_templates(s, p.id, [st.NewTemplate(vec(k), MODEL, crop_jpeg=(crops[i] if crops else None))
                                          for i, k in enumerate(seeds)])
        return p.id, [r.id for r in rows]


@pytest.mark.parametrize("hnsw_above", [10_000, 50], ids=["exact", "graph"])
def test_erasure_leaves_no_trace_in_the_data_folder(tmp_path, hnsw_above: int) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'fdface.db'}"
    engine = st.open_engine(url)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    others = [_enroll(engine, f"Other {i}", [1000 + 3 * i, 1001 + 3 * i, 1002 + 3 * i]) for i in range(30)]
    crops = [jpeg(1), jpeg(2)]
    snaps = [jpeg(3), jpeg(4)]
    pid, _ = _enroll(engine, NAME, [7, 8], crops)
    rec = AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0, keep_snapshots=True))
    assert rec.record(pid, 0.9, ts=T0, snapshot_jpeg=snaps[0]) is not None
    assert rec.record(pid, 0.9, ts=T0 + timedelta(hours=8), snapshot_jpeg=snaps[1]) is not None
    rec.record(others[0][0], 0.9, ts=T0)

    g = Gallery(engine, MODEL, DIM, hnsw_above=hnsw_above, background=False, url=url,
                index_path=default_index_path(url, MODEL))
    g.load()
    assert g.index.kind == ("hnsw" if hnsw_above == 50 else "exact")
    g.index.save(g.index_path, g.fingerprint)  # as a kiosk leaves it (exact indexes are saved too)
    needles = _needles([vec(7), vec(8)], crops + snaps)
    before = traces(data, needles)
    assert any("faiss" in t and "embedding" in t for t in before), before  # the check can see what it looks for
    assert any("name" in t for t in before) and any("jpeg" in t for t in before), before

    er = g.delete_person(pid)
    assert er.templates == 2 and er.snapshots == 2 and er.events_pseudonymised == 2
    assert traces(data, needles) == []
    if hnsw_above == 50:
        assert g.index_path.exists()  # the index was saved again at once, without the person
    g.close()
    assert traces(data, needles) == []
    # the kiosk starts again from what is left: the others are all there
    g2 = Gallery(engine, MODEL, DIM, hnsw_above=hnsw_above, background=False, url=url,
                 index_path=default_index_path(url, MODEL))
    g2.load()
    assert sorted(g2.index.person_ids) == sorted(p for p, _ in others)
    g2.close()


def _saved_gallery_with_the_person(tmp_path):
    """Another person and NAME enrolled, the index saved to its file: what erasure must wipe."""
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'fdface.db'}"
    engine = st.open_engine(url)
    _enroll(engine, "Other", [1, 2, 3])
    pid, _ = _enroll(engine, NAME, [7, 8])
    g = Gallery(engine, MODEL, DIM, url=url, index_path=default_index_path(url, MODEL))
    g.load()
    g.index.save(g.index_path, g.fingerprint)
    return data, url, engine, pid


def test_cli_style_erasure_without_an_open_gallery_wipes_saved_index_files(tmp_path) -> None:
    """`fdface people remove` has no gallery open: the saved index files of the database go all the same."""
    data, url, engine, pid = _saved_gallery_with_the_person(tmp_path)
    needles = _needles([vec(7), vec(8)], [])
    assert traces(data, needles)
    erase_person(engine, url, pid)
    assert traces(data, needles) == []
    engine.dispose()


def test_people_remove_wipes_the_saved_index(tmp_path, capsys) -> None:
    from desktop_app.cli import main

    data, url, engine, pid = _saved_gallery_with_the_person(tmp_path)
    engine.dispose()
    needles = _needles([vec(7), vec(8)], [])
    assert traces(data, needles)
    cfg = tmp_path / "settings.toml"
    cfg.write_text("")
    assert main(["people", "remove", f"#{pid}", "--yes", "--db", url, "--config", str(cfg)]) == 0
    assert f"deleted {NAME} (#{pid})" in capsys.readouterr().out
    assert traces(data, needles) == []


def test_erasure_drops_the_persons_sightings_waiting_in_the_spool(tmp_path) -> None:
    """Sightings kept for a busy database (attendance's spool) hold the person's id and face snapshot: erasure
    takes them out too, and wipes the old file; other people's waiting sightings stay."""
    import base64

    from desktop_app.attendance.recorder import Sighting, read_spool, write_spool
    from desktop_app.gallery.service import spool_path

    data, url, engine, pid = _saved_gallery_with_the_person(tmp_path)
    other = next(p for p in st_people(engine) if p != pid)
    snap = cv2.imencode(".jpg", np.full((112, 112, 3), 77, np.uint8))[1].tobytes() + b"ann-face"
    spool = spool_path(url, data)
    t0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    write_spool(spool, [Sighting(pid, 0.9, t0, snap), Sighting(other, 0.8, t0 + timedelta(seconds=5)),
                        Sighting(pid, 0.9, t0 + timedelta(seconds=9), snap)])
    erase_person(engine, url, pid, spool_folder=data)
    assert [s.person_id for s in read_spool(spool)] == [other]
    b64 = base64.b64encode(snap).decode()
    assert not any(b64[40:100] in f.read_text(errors="ignore") for f in data.rglob("*") if f.is_file())
    erase_person(engine, url, other, spool_folder=data)
    assert not spool.exists()
    engine.dispose()


def st_people(engine) -> list[int]:
    from sqlalchemy import select

    with Session(engine) as s:
        return list(s.scalars(select(st.Person.id)).all())
