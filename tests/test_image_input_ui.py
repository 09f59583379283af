"""The GUI's image reads go through the one guarded reader: photo enrolment refuses hostile files with the reason,
and an image folder source goes on past them (the capture thread used to die on a 100000 x 100000 PNG header).
Real models, a temporary SQLite database, offscreen Qt; no ../shared needed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from desktop_app.capture import CaptureState  # noqa: E402
from desktop_app.config import Settings  # noqa: E402
from desktop_app.ui.controller import AppController  # noqa: E402
from desktop_app.vision.pipeline import resolve_model  # noqa: E402
from tests.test_image_input import FACE, REASONS, write_bad_images  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def bad_images(tmp_path: Path) -> dict[str, Path]:
    return write_bad_images(tmp_path / "in")


@pytest.fixture
def ctl(qtbot, tmp_path):
    entry, _ = resolve_model(Settings())
    if entry is None:
        pytest.skip("no recognition model installed (models/fdfacenet.onnx)")
    s = (Settings().with_changes("storage", database_url=f"sqlite:///{tmp_path / 'attendance.db'}")
         .with_changes("performance", threads=1).with_changes("capture", source=""))
    c = AppController(s, tmp_path / "settings.toml", source="", embedder_entry=entry, pace=False,
                      camera_lister=lambda: [])
    qtbot.addWidget(c.window)
    with qtbot.waitSignal(c.storeReady, timeout=WAIT_MS):
        c.start()
    yield c
    c.shutdown()


def test_photo_enrolment_refuses_hostile_files_with_the_reason(ctl, qtbot, bad_images) -> None:
    dlg = ctl.show_enrollment()
    dlg.name.setText("Sam")
    dlg.import_photos([*bad_images.values(), FACE])
    qtbot.waitUntil(lambda: not dlg.busy and dlg.list.count() == 5, timeout=WAIT_MS)
    refused = {r.source: " ".join(r.reasons) for r in dlg.refusals}
    for kind, path in bad_images.items():
        assert REASONS[kind] in refused[path.name], refused
        assert str(path) not in refused[path.name]  # the list names the file; the reason does not repeat it
    assert [c.source for c in dlg.usable] == [FACE.name]


def test_image_folder_goes_on_past_hostile_files_and_names_them(ctl, qtbot, bad_images) -> None:
    folder = bad_images["huge"].parent
    (folder / "z_face.jpg").write_bytes(FACE.read_bytes())
    shown: list[str] = []
    finished = []
    ctl.packetShown.connect(lambda pk: shown.append(Path(pk.source).name))
    ctl.worker.sourceFinished.connect(finished.append)
    ctl.open_source(str(folder))
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "z_face.jpg" in shown, timeout=WAIT_MS)
    st = finished[0]
    assert st.state is CaptureState.ENDED, st.message
    assert [s.path.name for s in st.skipped] == sorted(p.name for p in bad_images.values())
    assert all(f"{p.name}: {REASONS[k]}" in st.message for k, p in bad_images.items())


def test_a_single_unreadable_photo_as_the_source_says_why_in_one_line(ctl, qtbot, bad_images) -> None:
    """It said "Not one of its 1 image(s) could be read" for one file."""
    kind, path = next(iter(bad_images.items()))
    ctl.open_source(str(path))
    qtbot.waitUntil(lambda: ctl.window.showing_no_source, timeout=WAIT_MS)
    detail = ctl.window.no_source.detail.text()
    assert detail.startswith(f"{path.name} could not be read: {REASONS[kind]}") and "\n" not in detail
    assert ctl.window.no_source.title.text() == f"Cannot open {path.name}"
