"""Settings as a person meets them: the typed config's checks and messages, the settings dialog (real widgets,
offscreen), the GUI's settings file, command-line overrides, and About. No camera, model or video needed."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from desktop_app.config import CALIBRATED_THRESHOLD, ConfigError, Settings  # noqa: E402
from desktop_app.ui.settings_dialog import SettingsDialog  # noqa: E402


@pytest.fixture
def dialog(qtbot):
    def make(settings: Settings | None = None, path: str = "") -> SettingsDialog:
        dlg = SettingsDialog(settings or Settings(), ["fdfacenet"], [], path)
        qtbot.addWidget(dlg)
        dlg.show()
        return dlg

    return make


def accepted(dlg: SettingsDialog) -> list[Settings]:
    got: list[Settings] = []
    dlg.settingsAccepted.connect(got.append)
    return got


# ------------------------------------------------------------------------------------------ 1. match threshold
@pytest.mark.parametrize("value", [-0.5, 0.0, 0.1, 0.99, 1.0])
def test_a_match_threshold_outside_the_safe_range_is_refused(value, tmp_path, dialog):
    """-0.5 names every stranger as the one enrolled person: refused in the file, on the command line and in
    the dialog."""
    with pytest.raises(ConfigError, match="threshold"):
        Settings().with_changes("recognition", threshold=value)
    f = tmp_path / "settings.toml"
    f.write_text(f"[recognition]\nthreshold = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"0\.2.*0\.95"):
        Settings.load(f)
    dlg = dialog()
    got = accepted(dlg)
    dlg.set_field("recognition", "threshold", value)
    dlg.accept()
    assert dlg.isVisible() and not got and "0.95" in dlg.error.text()


def test_a_threshold_far_from_the_calibrated_one_asks_first_in_plain_words(qtbot, dialog):
    dlg = dialog()
    got = accepted(dlg)
    dlg.set_field("recognition", "threshold", 0.3)  # in range, but 0.17 below the calibrated value
    dlg.accept()
    box = dlg.confirm
    assert box.isVisible() and "strangers" in box.text() and str(CALIBRATED_THRESHOLD) in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.No), qtbot_button())
    assert dlg.isVisible() and not got  # gone back: nothing saved

    dlg.set_field("recognition", "threshold", 0.7)
    dlg.accept()
    assert "left unknown" in dlg.confirm.text()
    qtbot.mouseClick(dlg.confirm.button(QMessageBox.StandardButton.Yes), qtbot_button())
    assert not dlg.isVisible() and got[-1].recognition.threshold == 0.7

    near = dialog()
    got = accepted(near)
    near.set_field("recognition", "threshold", CALIBRATED_THRESHOLD + 0.05)  # close: no question
    near.accept()
    assert not near.isVisible() and got


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
