"""Settings as a person meets them: the typed config's checks and messages, the settings dialog (real widgets,
offscreen), the GUI's settings file, command-line overrides, and About. No camera, model or video needed."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from desktop_app.config import ConfigError, RecognitionSettings, Settings  # noqa: E402
from desktop_app.ui.settings_dialog import SettingsDialog  # noqa: E402


@pytest.fixture
def dialog(qtbot):
    def make(settings: Settings | None = None, path: str = "", calibrated: float = 0.47) -> SettingsDialog:
        dlg = SettingsDialog(settings or Settings(), ["fdfacenet"], [], path,
                             calibrated=RecognitionSettings(threshold=calibrated, margin=0.08))
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
    assert box.isVisible() and "strangers" in box.text() and "(0.47)" in box.text()
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
    near.set_field("recognition", "threshold", 0.47 + 0.05)  # close: no question
    near.accept()
    assert not near.isVisible() and got


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


# ---------------------------------------------------------------------------------------------- 2. number fields
@pytest.fixture
def locale():
    """Run with the system's language set to ``name`` (the dialog reads QLocale() as it is built)."""
    from PySide6.QtCore import QLocale

    before = QLocale()
    yield lambda name: QLocale.setDefault(QLocale(name))
    QLocale.setDefault(before)


@pytest.mark.parametrize("lang", ["en_US", "de_DE"])
def test_comma_and_point_both_mean_a_decimal_point_whatever_the_language(qtbot, dialog, locale, lang):
    """"2,5" was read as 25.0 and "0,5" as 5 (the comma taken as a thousands separator): both separators now mean
    the decimal point, the field shows what it understood, and text it cannot read is refused with a message."""
    locale(lang)
    dlg = dialog()
    got = accepted(dlg)
    field = dlg.widgets[("attendance", "dedupe_minutes")]
    point = "," if lang == "de_DE" else "."
    assert field.text() == f"5{point}0"  # shown in the system's language
    for typed, value, shown in [("2,5", 2.5, "2#5"), ("0,5", 0.5, "0#5"), ("2.5", 2.5, "2#5"), (" 12 ", 12.0, "12#0")]:
        field.clear()
        qtbot.keyClicks(field, typed)
        field.editingFinished.emit()
        assert field.value() == value and not dlg.error.isVisible()
        assert field.text() == shown.replace("#", point)  # what was understood, in the system's language
    field.clear()
    qtbot.keyClicks(field, "abc")  # every keystroke stays on screen, with the reason next to it
    assert field.text() == "abc" and dlg.error.isVisible()
    assert "Ignore repeats for (min)" in dlg.error.text() and "not a number" in dlg.error.text()
    dlg.accept()
    assert dlg.isVisible() and not got and "Not saved" in dlg.error.text()
    field.clear()
    qtbot.keyClicks(field, "1.000,5")  # a thousands separator: ambiguous, refused rather than guessed
    assert "separator" in dlg.error.text()
    field.clear()
    qtbot.keyClicks(field, "0,5")
    assert not dlg.error.isVisible()  # the message goes once the text is a number
    frames = dlg.widgets[("recognition", "vote_frames")]
    frames.clear()
    qtbot.keyClicks(frames, "2,5")  # a whole-number field: no guessing either way
    assert "whole number" in dlg.error.text()
    frames.clear()
    qtbot.keyClicks(frames, "4")
    dlg.accept()
    assert got and got[-1].attendance.dedupe_minutes == 0.5 and got[-1].recognition.vote_frames == 4


def test_number_fields_keep_every_digit_and_step_with_the_arrow_keys(qtbot, dialog):
    from PySide6.QtCore import Qt

    dlg = dialog(Settings().with_changes("recognition", threshold=0.4725))
    th = dlg.widgets[("recognition", "threshold")]
    assert th.value() == 0.4725  # not rounded to the field's step
    qtbot.keyClick(th, Qt.Key.Key_Up)
    assert abs(th.value() - 0.4825) < 1e-3 and len(th.text()) == 5  # one step, rounded to the step


# ------------------------------------------------------------------------------ 3. one bad key costs only itself
MISSPELT = """
[storage]
database_url = "sqlite:////srv/attendance/kiosk.db"

[recognition]
treshold = 0.5
margin = 0.1
vote_frames = 7.0

[attendance]
station = "door-2"
"""


def gui(args: list[str], qtbot, monkeypatch):
    """The app as ``fdface-gui ARGS`` builds it (not started: no camera, model or database is opened), with the
    warnings it shows at start collected instead of waiting for a click."""
    from desktop_app.ui import controller
    from desktop_app.ui.app import parse_args

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a, **k: warnings.append(text))
    _, ctl = controller.create_app(parse_args(args))
    qtbot.addWidget(ctl.window)
    return ctl, warnings


def test_a_misspelt_key_keeps_every_other_setting_and_is_named_with_the_file(tmp_path, qtbot, monkeypatch,
                                                                               caplog):
    f = tmp_path / "settings.toml"
    f.write_text(MISSPELT, encoding="utf-8")
    s, problems = Settings.load_keeping_valid(f)
    assert s.storage.database_url == "sqlite:////srv/attendance/kiosk.db" and s.recognition.margin == 0.1
    assert s.attendance.station == "door-2" and s.recognition.vote_frames == Settings().recognition.vote_frames
    assert len(problems) == 2 and all(str(f) in p for p in problems)
    assert "treshold" in problems[0] and "did you mean threshold" in problems[0] and "vote_frames" in problems[1]

    ctl, warnings = gui(["--settings", str(f)], qtbot, monkeypatch)
    try:
        assert ctl.settings.storage.database_url == "sqlite:////srv/attendance/kiosk.db"  # not the empty default
        assert ctl.settings.attendance.station == "door-2"
        qtbot.waitUntil(lambda: bool(warnings))
        assert "recognition.treshold" in warnings[0] and str(f) in warnings[0]
        assert any("treshold" in r.getMessage() and str(f) in r.getMessage() for r in caplog.records)
    finally:
        ctl.shutdown()


# --------------------------------------------------------------------------- 4. --db is for this session only
def test_a_db_given_on_the_command_line_is_not_written_to_the_settings_file(tmp_path, qtbot, monkeypatch):
    f = tmp_path / "settings.toml"
    f.write_text('[storage]\ndatabase_url = "sqlite:////srv/attendance/kiosk.db"\n', encoding="utf-8")
    ctl, _ = gui(["--settings", str(f), "--db", str(tmp_path / "session.db")], qtbot, monkeypatch)
    try:
        assert ctl.settings.storage.resolved_url() == f"sqlite:///{tmp_path / 'session.db'}"
        dlg = ctl.show_settings()
        dlg.set_field("attendance", "station", "door-3")
        dlg.accept()
        saved = Settings.load(f)
        assert saved.attendance.station == "door-3"  # the edit is saved...
        assert saved.storage.database_url == "sqlite:////srv/attendance/kiosk.db"  # ...the one-off --db is not
        assert ctl.settings.storage.database_url == f"sqlite:///{tmp_path / 'session.db'}"  # still in use
        assert dlg.session_note.text().startswith("The database was given on the command line (--db)")
    finally:
        ctl.shutdown()


@pytest.mark.parametrize("given", ["~/att.db", "att.db", "sqlite:///{tmp}/att.db", "{tmp}/att.db"])
def test_the_gui_takes_a_database_file_path_or_url(given, tmp_path, monkeypatch):
    from desktop_app import dburl
    from desktop_app.ui import controller, settings_dialog

    # one conversion for the GUI and the CLI
    assert settings_dialog.database_url is dburl.database_url and controller.database_url is dburl.database_url
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert dburl.database_url(given.format(tmp=tmp_path)) == f"sqlite:///{tmp_path / 'att.db'}"


# ------------------------------------------------------------------- 5. labels, messages that follow the values
def test_messages_name_the_field_by_its_label_in_the_cli_and_the_dialog(tmp_path, capsys, dialog):
    from desktop_app.cli import main

    # the command line (an empty settings file: no user settings involved)
    (tmp_path / "s.toml").write_text("", encoding="utf-8")
    rc = main(["run", str(tmp_path), "--threshold", "7.0", "--config", str(tmp_path / "s.toml"),
               "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    err = capsys.readouterr().err
    assert rc != 0 and "Match threshold" in err and "0.2" in err and "Traceback" not in err
    assert not err.lstrip().startswith("recognition.threshold")
    # a settings file names the key too (that is what the file holds)
    (tmp_path / "s.toml").write_text("[recognition]\nvote_frames = 2.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        Settings.load(tmp_path / "s.toml")
    assert "Frames to agree (recognition.vote_frames)" in str(e.value) and "whole number" in str(e.value)
    # the dialog: the label only
    dlg = dialog()
    dlg.set_field("capture", "width", 10)
    dlg.accept()
    assert dlg.error.text() == "Not saved: Width (px): 10 is out of range; use a value from 64 to 7680"


def test_the_red_message_goes_once_the_value_is_corrected(qtbot, dialog):
    dlg = dialog()
    dlg.set_field("attendance", "timezone", "Europe/Pariss")
    dlg.accept()
    assert dlg.error.isVisible() and "Time zone" in dlg.error.text() and "Europe/Pariss" in dlg.error.text()
    dlg.set_field("capture", "width", 10)  # still wrong, now twice: the message follows the values
    assert dlg.error.isVisible() and dlg.error.text().startswith("Not saved: ")
    dlg.set_field("capture", "width", 640)
    tz = dlg.widgets[("attendance", "timezone")]
    tz.lineEdit().clear()
    qtbot.keyClicks(tz.lineEdit(), "Europe/Paris")
    assert not dlg.error.isVisible() and dlg.error.text() == ""  # corrected: gone before OK is pressed


def test_saved_to_is_said_only_after_the_file_is_written(tmp_path, qtbot, monkeypatch):
    f = tmp_path / "settings.toml"
    ctl, _ = gui(["--settings", str(f)], qtbot, monkeypatch)
    try:
        dlg = ctl.show_settings()
        assert "Saved to" not in dlg.where.text() and str(f) in dlg.where.text() and not f.exists()
        dlg.set_field("attendance", "station", "door-9")
        dlg.accept()
        assert f.exists() and ctl.window.statusBar().currentMessage().startswith(f"Settings saved to {f}")
        assert "Station name" in ctl.window.statusBar().currentMessage()  # the label, not attendance.station

        f.unlink()
        f.mkdir()  # cannot be written now
        dlg = ctl.show_settings()
        dlg.set_field("attendance", "station", "door-10")
        dlg.accept()
        msg = ctl.window.statusBar().currentMessage()
        assert "NOT saved" in msg and "saved to" not in msg
    finally:
        ctl.shutdown()


# ------------------------------------------------------------------------------------------------------ 6. About
def test_about_reports_the_installed_pyside6_and_wraps_long_lines(qtbot):
    """PySide6 is installed as the PySide6-Essentials distribution: About said "not installed". Long values (paths,
    checksums) were cut at the window's edge: they wrap, and the text can be selected."""
    import PySide6
    from PySide6.QtCore import Qt

    from desktop_app.ui.about_dialog import AboutDialog, versions

    found = dict(versions())["PySide6"]
    assert found != "not installed" and found.startswith(PySide6.__version__)
    long_path = "/very/long/" + "folder-name-that-goes-on/" * 20 + "attendance.db"
    checksum = "ab" * 64  # one word, no space to break at
    dlg = AboutDialog([("Data", [("Database file", long_path), ("sha256", checksum)]),
                       ("Versions", versions())])
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    view = dlg.view
    text = view.toPlainText()
    assert long_path in text.replace("\u2029", "").replace("\n", "") and checksum in text
    assert view.horizontalScrollBar().maximum() == 0  # nothing runs past the right edge
    assert view.document().size().width() <= view.viewport().width() + 1
    assert view.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert f"Database file: {long_path}" in dlg.text()  # the copied report is whole as well


def test_a_settings_file_that_is_not_toml_is_kept_aside_before_the_defaults_are_used(tmp_path):
    from desktop_app.ui.controller import load_settings

    f = tmp_path / "settings.toml"
    written = '[storage]\ndatabase_url = "sqlite:////srv/kiosk.db"\n[recognition\nthreshold = 0.5\n'
    f.write_text(written, encoding="utf-8")
    s, message = load_settings(f)
    assert s == Settings() and message is not None
    kept = list(tmp_path.glob("settings.toml.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == written and str(kept[0]) in message


@pytest.mark.parametrize("station", ["", "   ", "x" * 101])
def test_a_station_name_the_store_would_refuse_is_refused_by_the_settings(station, tmp_path):
    """An empty or over-long station used to be saved, then every start failed to record anything."""
    from desktop_app.config import ConfigError

    with pytest.raises(ConfigError, match="Station"):
        Settings().with_changes("attendance", station=station)
    f = tmp_path / "settings.toml"
    f.write_text(f'[attendance]\nstation = "{station}"\ntimezone = "UTC"\n', encoding="utf-8")
    s, problems = Settings.load_keeping_valid(f)
    assert s.attendance.station == Settings().attendance.station and s.attendance.timezone == "UTC"
    assert any("station" in p for p in problems)


def test_threshold_and_margin_follow_the_model_until_a_person_sets_them(qtbot, dialog, tmp_path):
    """Empty fields mean the model's calibrated values (shown greyed); the settings file then has no such key, so a
    new model brings its own; a value typed in overrides it, and the warning measures from the model's value."""
    dlg = dialog(calibrated=0.6)
    w = dlg.widgets[("recognition", "threshold")]
    assert w.text() == "" and "0.6" in w.placeholderText()
    got = accepted(dlg)
    dlg.accept()
    assert got and got[-1].recognition.threshold is None and got[-1].recognition.margin is None
    f = got[-1].save(tmp_path / "s.toml")
    assert "threshold = " not in f.read_text().split("[recognition]")[1].split("[")[0]
    again = Settings.load(f)
    assert again.recognition.threshold is None
    assert again.recognition.for_model(type("E", (), {"threshold": 0.61, "margin": 0.05})()).threshold == 0.61

    other = dialog(calibrated=0.6)
    other.set_field("recognition", "threshold", 0.45)  # 0.15 below this model's value (close to 0.47 though)
    other.accept()
    assert other.confirm.isVisible() and "(0.6)" in other.confirm.text()


def test_a_set_threshold_overrides_the_models():
    s = Settings.from_dict({"recognition": {"threshold": 0.5}})
    entry = type("E", (), {"threshold": 0.62, "margin": 0.03})()
    r = s.recognition.for_model(entry)
    assert (r.threshold, r.margin) == (0.5, 0.03)
    assert Settings().recognition.for_model(None).threshold == 0.47  # an uncalibrated model: the fallback


def test_the_decision_rule_comes_from_the_model_unless_the_settings_file_names_one():
    entry = type("E", (), {"threshold": 0.5, "margin": 0.05, "rule": "centroid"})()
    assert Settings().recognition.for_model(entry).rule == "centroid"
    assert Settings().recognition.for_model(None).rule == "best"
    mine = Settings.from_dict({"recognition": {"rule": "best_or_centroid"}})
    assert mine.recognition.for_model(entry).rule == "best_or_centroid"
    with pytest.raises(ConfigError, match=r"Decision rule.*'mean'.*centroid"):
        Settings.from_dict({"recognition": {"rule": "mean"}})


@pytest.mark.parametrize("key, value", [("vote_frames", 0), ("vote_frames", 101), ("recheck_frames", 0)])
def test_every_recognition_range_is_checked(key, value):
    with pytest.raises(ConfigError, match=key):
        Settings.from_dict({"recognition": {key: value}})


def test_a_database_location_that_cannot_hold_one_is_refused_before_it_is_saved(tmp_path, dialog, monkeypatch):
    """It used to be saved, and then every start opened with the same error box and no database."""
    from desktop_app.storage import engine

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dlg = dialog()
    got = accepted(dlg)
    dlg.set_field("storage", "database_url", str(blocker / "sub" / "attendance.db"))
    dlg.accept()
    assert dlg.isVisible() and not got
    assert f"Database: {blocker} is a file, so the folder for the database cannot be made there" in dlg.error.text()
    assert "Settings > Storage > Database" in dlg.error.text() and "sqlite:" not in dlg.error.text()
    monkeypatch.setattr(engine, "_read_only_disk", lambda p: True)  # a read-only stick or share
    dlg.set_field("storage", "database_url", str(tmp_path / "att.db"))
    dlg.accept()
    assert not got and f"the folder {tmp_path} is on a read-only disk" in dlg.error.text()
    monkeypatch.setattr(engine, "_read_only_disk", lambda p: False)
    dlg.accept()  # a location that can hold a database is saved, and nothing is created by asking
    assert len(got) == 1 and got[0].storage.database_url == f"sqlite:///{tmp_path / 'att.db'}"
    assert not (tmp_path / "att.db").exists() and not blocker.with_name("sub").exists()


def test_a_database_location_problem_names_the_cause_and_creates_nothing(tmp_path, monkeypatch):
    from desktop_app.storage import StoreError, database_location_problem, engine, open_engine

    assert database_location_problem("sqlite://") is None
    assert database_location_problem("postgresql+psycopg://kiosk@db.lab/attendance") is None  # a connection tells
    assert database_location_problem(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'a.db'}") is None
    assert not (tmp_path / "new").exists()
    assert "is a folder, not a file" in database_location_problem(f"sqlite:///{tmp_path}")
    monkeypatch.setattr(engine, "_read_only_disk", lambda p: True)
    (tmp_path / "old.db").write_bytes(b"")
    assert "is on a read-only disk" in database_location_problem(f"sqlite:///{tmp_path / 'old.db'}")
    with pytest.raises(StoreError, match="read-only disk.*choose another location"):  # opening says the same
        open_engine(f"sqlite:///{tmp_path / 'old.db'}")

    def locked(self):  # a folder on the way that may not be looked into (as root nothing is: simulated)
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))

    monkeypatch.setattr(engine.Path, "is_dir", locked)
    said = database_location_problem(f"sqlite:///{tmp_path / 'locked' / 'sub' / 'a.db'}")
    assert said.startswith(f"the database {tmp_path / 'locked' / 'sub' / 'a.db'} cannot be reached: Permission "
                           f"denied ({tmp_path / 'locked'})")


def test_a_settings_file_named_on_the_command_line_that_is_missing_is_said(tmp_path, qtbot, monkeypatch):
    """It started on the defaults without a word (the CLI refuses such a file). A new file is a fair wish, so this is
    a status-bar notice, not a box that waits for a click."""
    missing = tmp_path / "nope.toml"
    ctl, warnings = gui(["--settings", str(missing)], qtbot, monkeypatch)
    try:
        assert ctl.settings == Settings()
        qtbot.waitUntil(lambda: "does not exist yet" in ctl.window.statusBar().currentMessage())
        assert str(missing) in ctl.window.statusBar().currentMessage() and warnings == []
    finally:
        ctl.shutdown()
