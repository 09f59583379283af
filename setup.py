"""setuptools hook (the project's metadata is in pyproject.toml): a wheel carries the shipped models and the
self-test image as package data, desktop_app/models/ and desktop_app/assets/, where desktop_app.manifest and
desktop_app.selftest look for them in an installed copy. The source tree keeps models/ and assets/ at the top;
an editable install reads them there."""

from __future__ import annotations

import json
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def shipped_files() -> list[tuple[Path, str]]:
    """(file in the checkout, path inside the package): the manifest, exactly the models it names (as the bundle
    spec ships them), and the self-test image."""
    manifest = ROOT / "models" / "manifest.json"
    out = [(manifest, "models/manifest.json")]
    for name, entry in sorted(json.loads(manifest.read_text(encoding="utf-8"))["models"].items()):
        f = ROOT / "models" / entry["file"]
        if f.parent != ROOT / "models":
            raise SystemExit(f"model {name!r} is outside models/ ({f}); the wheel ships only files from models/")
        out.append((f, f"models/{f.name}"))
    out.append((ROOT / "assets" / "selftest" / "face.jpg", "assets/selftest/face.jpg"))
    return out


class BuildPyWithModels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install finds models/ and assets/ beside the package
        for src, rel in shipped_files():
            if not src.is_file():
                raise SystemExit(f"{src} is missing: the wheel would have no model; export or restore it first")
            dst = Path(self.build_lib) / "desktop_app" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithModels})
