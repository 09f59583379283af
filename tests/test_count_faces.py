"""benchmarks/count_faces.py: the face counts of the registry survey (docs/TRAINING.md, "More faces")."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from conftest import REPO, shared_path


def _load():
    spec = importlib.util.spec_from_file_location("count_faces", REPO / "benchmarks" / "count_faces.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_counts_faces_per_candidate_and_skips_unreadable_files(tmp_path: Path, capsys) -> None:
    people = shared_path("media", "people", "amy")
    pkg = tmp_path / "root" / "somepackage" / "nested"
    pkg.mkdir(parents=True)
    for name in ("amy1.png", "amy2.png"):
        shutil.copy(people / name, pkg / name)
    (pkg / "broken.jpg").write_bytes(b"not an image")  # unreadable: skipped, not counted, no traceback
    (pkg / "README.md").write_text("text")
    (tmp_path / "root" / "empty").mkdir()
    assert _load().main([str(tmp_path / "root")]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {r.split(" | ")[0]: r.split(" | ")[1:] for r in lines[1:]}
    assert rows["empty"] == ["0", "0", "0", "0"]
    n_img, n_with, n_face, med = rows["somepackage"]
    assert (n_img, n_with) == ("2", "2") and int(n_face) >= 2 and int(med) >= 40


def test_missing_root_is_a_message(tmp_path: Path, capsys) -> None:
    assert _load().main([str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().out
