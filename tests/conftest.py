"""Shared fixtures: where ../shared lives, and skips with a reason when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FDFACE_SHARED", REPO.parent / "shared")).resolve()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Tests that change the machine they run on (install and remove a system package, build ~1 GB) run only where this is
# set to 1: CI (.ci/run) sets it; the README's plain test command on a developer's machine leaves it unset.
SYSTEM_ENV = "FDFACE_TEST_SYSTEM"
SYSTEM_SKIP = (f"changes this machine (installs and removes a system package, full PyInstaller build): "
               f"set {SYSTEM_ENV}=1 to run it (CI does)")


def system_tests_enabled() -> bool:
    return os.environ.get(SYSTEM_ENV, "") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"system: changes the machine (system packages, big builds); runs only with "
                                       f"{SYSTEM_ENV}=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if system_tests_enabled():
        return
    skip = pytest.mark.skip(reason=SYSTEM_SKIP)
    for item in items:
        if item.get_closest_marker("system"):
            item.add_marker(skip)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying what is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs ../shared data: {p} is absent")
    return p


@pytest.fixture
def shared() -> Path:
    return shared_path()


def write_video(path: Path, frames: int = 150, fps: int = 10) -> str:
    """A small video file whose frames differ (a counter on a changing background)."""
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(frames):
        img = np.full((240, 320, 3), (i * 7) % 200 + 30, np.uint8)
        cv2.putText(img, str(i), (90, 150), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        out.write(img)
    out.release()
    return str(path)
