"""`fdface detect / identify / bench pipeline` end to end through the CLI entry point (real models, real data)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop_app.cli import main
from tests.conftest import shared_path
from tests.test_vision_data import embedder_entry


def embedder_args(tmp_path: Path) -> list[str]:
    """--embedder-manifest for the embedder the data tests use (a temporary manifest for the teacher)."""
    from desktop_app.manifest import write_entry

    e = embedder_entry()
    m = tmp_path / "manifest.json"
    write_entry(m, type(e)(**{**e.__dict__, "name": "fdfacenet", "file": str(e.path), "base_dir": ""}))
    return ["--embedder-manifest", str(m)]


def test_detect_json_and_annotated_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = shared_path("media", "scenes", "dlib", "2008_002470.jpg")
    out = tmp_path / "ann.jpg"
    assert main(["detect", str(img), "--json", "--out", str(out), "--threads", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6
    for r in rows:
        x1, y1, x2, y2 = r["box"]
        assert 0 <= x1 < x2 <= 500 and 0 <= y1 < y2 <= 332 and 0.6 < r["score"] <= 1.0
        assert len(r["landmarks"]) == 5 and all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in r["landmarks"])
    ann = cv2.imread(str(out))
    assert ann.shape == (332, 500, 3) and not np.array_equal(ann, cv2.imread(str(img)))


def test_detect_text_several_images_and_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(shared_path("media", "scenes", "bbt3.jpg").read_bytes()[:2000])
    good = shared_path("media", "scenes", "bbt3.jpg")
    rc = main(["detect", str(good), str(bad), "--out", str(tmp_path / "ann"), "--threads", "1"])
    cap = capsys.readouterr()
    assert rc == 1  # one image failed, the other was still processed
    assert "5 face(s)" in cap.out and "not a readable image" in cap.err and "Traceback" not in cap.err
    assert (tmp_path / "ann" / "bbt3.annotated.jpg").exists()


def test_identify_image_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    people = shared_path("media", "people")
    scene = shared_path("media", "scenes", "bbt3.jpg")
    cast = ["howard", "leonard", "penny", "raj", "sheldon"]
    # at the calibrated defaults a face may stay unknown, never be misnamed
    assert main(["identify", "--people", str(people), str(scene), "--json", "--threads", "1",
                 *embedder_args(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and len({r["name"] for r in rows} - {None}) == sum(r["name"] is not None for r in rows)
    assert {r["name"] for r in rows} - {None} <= set(cast)
    # a looser threshold and margin given on the command line name all five
    assert main(["identify", "--people", str(people), str(scene), "--json", "--threads", "1",
                 "--threshold", "0.40", "--margin", "0.05", *embedder_args(tmp_path)]) == 0
    loose = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(str(r["name"]) for r in loose) == cast
    assert all(r["similarity"] > 0 and len(r["box"]) == 4 for r in loose)
    assert all(a["name"] in (None, b["name"]) for a, b in zip(rows, loose, strict=True))
    # a folder: every image in it, one with no face at all
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.imread(str(scene)))
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 300, 3), 90, np.uint8))
    assert main(["identify", "--people", str(people), str(folder), "--threads", "1", *embedder_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a.jpg: 5 face(s)" in out and "blank.png: 0 face(s)" in out


def test_identify_video_and_bad_sources(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    people = shared_path("media", "people")
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    args = ["--threads", "1", *embedder_args(tmp_path)]
    assert main(["identify", "--people", str(people), str(video), "--max-frames", "30", *args]) == 0
    out = capsys.readouterr().out
    assert "track(s):" in out and "frames 0-" in out
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert main(["identify", "--people", str(people), str(empty), *args]) == 2
    err = capsys.readouterr().err
    assert "not a readable video" in err and "Traceback" not in err
    w = cv2.VideoWriter(str(tmp_path / "noframes.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    w.release()
    assert main(["identify", "--people", str(people), str(tmp_path / "noframes.avi"), *args]) == 2
    assert "video" in capsys.readouterr().err
    assert main(["identify", "--people", str(tmp_path / "nobody"), str(video), *args]) == 2
    assert "one sub-folder" in capsys.readouterr().err
    # several sources: each named in turn; a bad one is said and the others still go (exit 1); a missing one stops
    # everything at once, before the people are enrolled
    scene = shared_path("media", "scenes", "bbt3.jpg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 90, np.uint8))
    assert main(["identify", "--people", str(people), str(scene), str(empty), str(blank), *args]) == 1
    out, err = capsys.readouterr()
    assert f"{scene}: 5 face(s)" in out and f"{blank}: 0 face(s)" in out
    assert "not a readable video" in err and "Traceback" not in err
    assert main(["identify", "--people", str(people), str(scene), str(tmp_path / "nope.jpg"), *args]) == 2
    out, err = capsys.readouterr()
    assert f"not found: {tmp_path / 'nope.jpg'}" in err and "enrolled" not in err and out == ""


def test_bench_pipeline_short_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    js = tmp_path / "bench.json"
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nother sections stay\n")
    args = ["bench", "pipeline", str(video), "--repeats", "1", "--max-frames", "15", "--threads", "1",
            "--json", str(js), "--write", str(md), "--targets", "1:1000000", *embedder_args(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "FPS" in out and "decode" in out
    (res,) = json.loads(js.read_text())
    assert res["frames"] == 15 and res["fps"] > 0 and res["threads"] == 1
    assert res["stage_ms"]["detect"] > 0 and res["faces_per_frame"] > 0
    text = md.read_text()
    assert "other sections stay" in text and "<!-- bench-pipeline-short_hamilton_clip:start -->" in text
    assert "| one thread |" in text and "not met" in text and "--max-frames 15" in text
    assert main(args) == 0  # a second run replaces its section instead of adding one
    assert md.read_text().count("bench-pipeline-short_hamilton_clip:start") == 1


def test_identify_enrols_through_the_same_quality_gate_as_enroll(tmp_path: Path, capsys: pytest.CaptureFixture
                                                                  ) -> None:
    """A photo `fdface enroll` would refuse (the face far too small) is skipped by identify's --people too, with
    the enrolment's reason; the good photos of the same person still enrol."""
    people = tmp_path / "people"
    (people / "amy").mkdir(parents=True)
    src = shared_path("media", "people", "amy")
    for i in (1, 2):
        (people / "amy" / f"amy{i}.png").write_bytes((src / f"amy{i}.png").read_bytes())
    small = cv2.imread(str(src / "amy3.png"))
    small = cv2.resize(small, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)  # a face of about 44 px
    cv2.imwrite(str(people / "amy" / "small.png"), cv2.copyMakeBorder(small, 200, 200, 200, 200, cv2.BORDER_CONSTANT))
    assert main(["identify", "--people", str(people), str(src / "amy4.png"), "--threads", "1",
                 *embedder_args(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "small.png" in err and "too small" in err and "enrolled 1 people, 2 photos" in err
