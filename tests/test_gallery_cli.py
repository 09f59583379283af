"""`fdface enroll / people / run / export / gallery` end to end on a temporary SQLite database (--db and FDFACE_DB),
with the real pipeline and photos from ../shared/media."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from desktop_app.cli import main
from tests.conftest import shared_path
from tests.test_gallery_enroll import embedder_entry


@pytest.fixture
def db(tmp_path, monkeypatch):
    entry = embedder_entry()
    if entry.name != "fdfacenet":
        pytest.skip("the CLI uses the installed model: models/fdfacenet.onnx is absent or does not match its manifest")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FDFACE_DB", url)
    from desktop_app.storage import open_engine

    open_engine(url).dispose()  # an installed app's database (listing and export do not create one)
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\ntimezone = "Europe/Paris"\nstation = "hall"\n')
    return url, cfg


def photo(name: str, i: int) -> str:
    return str(shared_path("media", "people", name, f"{name}{i}.png"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_enroll_list_run_export_remove(db, tmp_path, capsys) -> None:
    url, cfg = db
    c = ("--config", str(cfg), "--threads", "1")
    code, out, err = run(capsys, "enroll", "Amy", photo("amy", 1), photo("amy", 2), photo("amy", 3),
                         "--id", "E1", "--group", "eng", *c)
    assert code == 0 and "enrolled Amy (#1): 3 template(s)" in out
    # refusals are listed, and an all-refused enrollment fails with one line
    bbt = str(shared_path("media", "scenes", "bbt1.jpg"))
    code, out, err = run(capsys, "enroll", "Group", bbt, photo("stuart", 5), *c)
    assert code == 2 and "faces in the photo" in err and "turned sideways" in err and "nothing enrolled" in err
    assert "hint: add --largest" in err  # the way this front end takes the largest face
    assert "Traceback" not in err
    # Raj enrolled with --yes (the early placeholder model may find him close to Amy)
    code, out, err = run(capsys, "enroll", "Raj", photo("raj", 1), photo("raj", 2), "--yes", *c)
    assert code == 0 and "enrolled Raj (#2)" in out
    # a second person under a name already taken is asked about (here: refused, nobody answers), not enrolled
    code, out, err = run(capsys, "enroll", " raj ", photo("penny", 1), *c)
    assert code == 2 and "Raj (#2) is already enrolled under this name" in err and "nothing enrolled" in err
    assert "--yes" in err and "--id" in err and "--add-to" in err and "Traceback" not in err
    code, out, err = run(capsys, "enroll", "ignored", photo("amy", 4), "--add-to", "E1", "--yes", *c)
    assert code == 0 and "added Amy (#1): 1 template(s)" in out

    code, out, _ = run(capsys, "people", "list", "--json", "--config", str(cfg))
    people = {p["name"]: p for p in json.loads(out)}
    assert people["Amy"]["templates"] == 4 and people["Amy"]["external_id"] == "E1"
    assert people["Raj"]["templates"] == 2

    # headless run over a folder of photos: events printed (after commit) as JSON lines
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(photo("amy", 5), frames / "a.png")
    shutil.copy(photo("raj", 3), frames / "b.png")
    code, out, err = run(capsys, "run", str(frames), "--json", "--threshold", "0.2", "--margin", "0.0", *c)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events and all(e["station"] == "hall" and e["kind"] == "check-in" for e in events)
    assert events[0]["time"].endswith(("+01:00", "+02:00"))  # Europe/Paris from the settings file
    names = [e["name"] for e in events]
    assert len(names) == len(set(names))  # one check-in per person

    out_csv = tmp_path / "events.csv"
    code, out, err = run(capsys, "export", "events", "-o", str(out_csv), "--config", str(cfg))
    assert code == 0 and f"wrote {len(events)} row(s)" in err
    rows = list(csv.DictReader(out_csv.read_text(encoding="utf-8-sig").splitlines()))
    assert [r["name"] for r in rows] == names
    code, out, _ = run(capsys, "export", "summary", "--config", str(cfg))
    assert out.splitlines()[0].startswith("day,person_id")
    code, out, _ = run(capsys, "export", "absent", "--group", "eng", "--config", str(cfg))
    assert code == 0

    code, out, err = run(capsys, "people", "remove", "Raj", "--yes", "--events", "keep", "--config", str(cfg))
    assert code == 0 and "deleted Raj (#2): 2 template(s)" in out
    code, out, _ = run(capsys, "people", "--json", "--config", str(cfg))
    assert [p["name"] for p in json.loads(out)] == ["Amy"]
    code, out, _ = run(capsys, "gallery", "status", *c)
    assert code == 0 and "4 templates" in out and "exact" in out


def test_a_second_run_over_the_same_photos_says_they_were_already_recorded(db, tmp_path, capsys) -> None:
    """The second run makes no event (the dedupe window), and its summary says why instead of a bare 0 events."""
    url, cfg = db
    c = ("--config", str(cfg), "--threads", "1")
    for name in ("amy", "raj"):
        code, out, err = run(capsys, "enroll", name.title(), photo(name, 1), photo(name, 2), "--yes", *c)
        assert code == 0, err
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(photo("amy", 5), frames / "a.png")
    shutil.copy(photo("raj", 3), frames / "b.png")
    argv = ("run", str(frames), "--json", "--threshold", "0.2", "--margin", "0.0", *c)
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    first = {json.loads(line)["name"] for line in out.splitlines()}
    assert first and "already recorded" not in err
    code, out, err = run(capsys, *argv)
    assert code == 0 and out == "", err
    assert (f"2 frame(s), 0 event(s), {len(first)} person(s) recognised but already recorded within the last 5 min "
            "(attendance.dedupe_minutes)") in err, err


def test_user_errors_are_one_line(db, tmp_path, capsys) -> None:
    url, cfg = db
    cases = [
        (["people", "--db", "nosuchdb://kiosk/attendance"], "cannot use"),  # (a plain text is a SQLite file path)
        (["people", "remove", "Nobody", "--yes"], "no person named"),
        (["export", "events", "--from", "2026-02-30"], "is not a date"),
        (["export", "events", "--from", "2026-03-02", "--to", "2026-03-01"], "before"),
        (["enroll", "X", str(tmp_path / "missing.png")], "not found"),
        (["run", str(tmp_path / "nowhere")], "not a camera index"),
    ]
    for argv, want in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert want in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_db_option_overrides_the_environment(db, tmp_path, capsys) -> None:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st

    other = f"sqlite:///{tmp_path / 'other.db'}"
    engine = st.open_engine(other)
    with Session(engine) as s, s.begin():
        st.add_person(s, "Zed Only-In-Other")
    engine.dispose()
    code, out, _ = run(capsys, "people", "--db", other)
    assert code == 0 and "Zed Only-In-Other" in out
    code, out, _ = run(capsys, "people")
    assert code == 0 and "nobody enrolled" in out


def test_run_on_a_video_tracks_votes_and_dedupes(db, tmp_path, capsys) -> None:
    """Enroll the main face of one frame, then run the whole pipeline (tracking, voting, rules) on the video: that
    person gets exactly one check-in however many frames show them."""
    import cv2

    url, cfg = db
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    cap = cv2.VideoCapture(str(video))
    for _ in range(101):
        ok, frame = cap.read()
        assert ok
    cap.release()
    still = tmp_path / "frame100.png"
    cv2.imwrite(str(still), frame)
    code, out, err = run(capsys, "enroll", "Lead", str(still), "--largest", "--threads", "1", "--config", str(cfg))
    assert code == 0, err
    code, out, err = run(capsys, "run", str(video), "--max-frames", "150", "--json", "--threads", "1",
                         "--config", str(cfg))
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["name"], e["kind"]) for e in events] == [("Lead", "check-in")], events
    assert "150 frame(s), 1 event(s)" in err


def test_model_change_is_caught_up_from_kept_crops(db, tmp_path, capsys) -> None:
    """Templates of an older model (here: relabelled in the database) are recomputed from their crops before use."""
    from sqlalchemy import create_engine, text

    url, cfg = db
    c = ("--config", str(cfg), "--threads", "1")
    code, out, err = run(capsys, "enroll", "Amy", photo("amy", 1), photo("amy", 2), *c)
    assert code == 0, err
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE templates SET model_id = 'fdfacenet@000000000000'"))
    eng.dispose()
    code, out, err = run(capsys, "gallery", "status", *c)
    assert "stale      2 template(s) of another model" in out and "index      exact, 0 templates" in out
    code, out, err = run(capsys, "gallery", "recompute", *c)
    assert code == 0 and "recomputed 2 template(s)" in out
    code, out, err = run(capsys, "gallery", *c)
    assert "index      exact, 2 templates" in out and "stale" not in out


def test_people_set_and_export_filters_without_a_model(tmp_path, capsys, monkeypatch) -> None:
    """Commands that need no recognition model: editing people and exporting, on a store filled directly."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from desktop_app import storage as st

    url = f"sqlite:///{tmp_path / 'plain.db'}"
    monkeypatch.setenv("FDFACE_DB", url)
    e = st.open_engine(url)
    with Session(e) as s, s.begin():
        a = st.add_person(s, "Ada", external_id="E1")
        b = st.add_person(s, "Bob", group="ops")
        st.add_event(s, a, datetime(2026, 4, 1, 9, tzinfo=UTC), "UTC", "door", "check-in", 0.8)
        st.add_event(s, b, datetime(2026, 4, 1, 9, 5, tzinfo=UTC), "UTC", "gate", "check-in", 0.7)
    e.dispose()
    code, out, err = run(capsys, "people", "set", "E1", "--group", "lab", "--name", "Ada L.")
    assert code == 0 and "Ada L." in out and "group lab" in out
    code, out, err = run(capsys, "people", "set", "#2", "--active", "no")
    assert code == 0 and "inactive" in out
    code, out, _ = run(capsys, "people", "--json")
    assert [p["name"] for p in json.loads(out)] == ["Ada L."]
    code, out, _ = run(capsys, "people", "--json", "--all")
    assert len(json.loads(out)) == 2
    code, out, err = run(capsys, "people", "set", "E1", "--id", "")
    code, out, err = run(capsys, "people", "set", "#2", "--id", "X")
    code, out, err = run(capsys, "people", "set", "#1", "--id", "X")
    assert code == 2 and "already belongs to Bob" in err
    cfg = tmp_path / "utc.toml"
    cfg.write_text('[attendance]\ntimezone = "UTC"\n')
    day = ("--day", "2026-04-01", "--config", str(cfg))
    code, out, _ = run(capsys, "export", "events", *day, "--person", "#1")
    assert len(out.splitlines()) == 2 and "Ada L." in out
    code, out, _ = run(capsys, "export", "events", *day, "--station", "gate")
    assert len(out.splitlines()) == 2 and "Bob" in out
    code, out, _ = run(capsys, "export", "events", *day, "--group", "lab")
    assert len(out.splitlines()) == 2 and "Ada L." in out
    code, out, _ = run(capsys, "export", "summary", "--from", "2026-04-01", "--to", "2026-04-02", "--config", str(cfg))
    assert len(out.splitlines()) == 3
