"""`fdface eval lfw` says how far it is (loading and embedding take half a minute on the real pack): progress
lines on stderr about every 10 %, the result alone on stdout. A tiny LFW-style pack built from the repository's
face photo and the installed model; no ../shared needed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop_app.cli import main
from desktop_app.manifest import default_models_dir, load_manifest

FACE = Path(__file__).resolve().parent.parent / "assets" / "selftest" / "face.jpg"


def tiny_pack(root: Path) -> Path:
    """Two 'people' of 10 crops each and 20 pairs in the pairs file's format (header, 'name i j', 'a i b j')."""
    face = cv2.resize(cv2.imread(str(FACE)), (112, 112))
    other = cv2.cvtColor(cv2.cvtColor(face[:, ::-1], cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    for name, base in (("Ann_A", face), ("Bob_B", other)):
        (root / "lfw" / name).mkdir(parents=True)
        for i in range(1, 11):
            img = np.clip(base.astype(np.int16) + 4 * i - 20, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / "lfw" / name / f"{name}_{i:04d}.jpg"), img)
    lines = ["10 2"]
    for i in range(1, 11):
        lines.append(f"Ann_A {i} {i % 10 + 1}")
        lines.append(f"Ann_A {i} Bob_B {i}")
    (root / "lfw-pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_eval_lfw_prints_progress_to_stderr(tmp_path, capsys) -> None:
    manifest = default_models_dir() / "manifest.json"
    if not manifest.exists() or "fdfacenet" not in load_manifest(manifest):
        pytest.skip("no installed model (models/manifest.json with fdfacenet)")
    pack = tiny_pack(tmp_path / "faces112")
    assert main(["eval", "lfw", "fdfacenet", "--pack", str(pack), "--threads", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["pairs"] == 20  # stdout: the result only
    lines = err.splitlines()
    assert [ln for ln in lines if "loading faces" in ln] == [
        f"LFW: loading faces {p} % ({n} of 20)" for p, n in zip(range(10, 101, 10), range(2, 21, 2), strict=True)]
    assert lines[-1] == "LFW: embedding faces 100 % (20 of 20)"
