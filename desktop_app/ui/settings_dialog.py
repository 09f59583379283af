"""Settings: every field of :class:`desktop_app.config.Settings` a person may change, validated by Settings itself
(the message names the field and the accepted range). The dialog only edits; the controller saves and applies."""

from __future__ import annotations

import contextlib
import zoneinfo
from dataclasses import fields
from typing import Any

from PySide6.QtCore import QLocale, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.attendance.unknowns import privacy_text
from desktop_app.capture import CameraInfo
from desktop_app.config import FAR_FROM_CALIBRATED, ConfigError, RecognitionSettings, Settings, field_label
from desktop_app.dburl import database_url
from desktop_app.storage import database_location_problem
from desktop_app.ui.qtcompat import emit

RESOLUTIONS = [(640, 480), (640, 360), (1280, 720), (1920, 1080)]

# (section, key): (tooltip, extra widget options). Order is the form order; labels are config.LABELS (the messages
# about a field use the same words).
FIELDS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("capture", "source"): ("Camera index (0, 1…), video file, image folder or rtsp:// URL", {}),
    ("capture", "width"): ("Camera resolution asked for (the camera may pick the nearest)", {}),
    ("capture", "height"): ("", {}),
    ("capture", "reconnect_seconds"): ("", {"step": 0.5, "decimals": 1}),
    ("detector", "detect_scale"): ("Frames are detected at this fraction of their size: lower is faster but misses "
                                   "small faces", {"step": 0.05, "decimals": 2}),
    ("detector", "score_threshold"): ("", {"step": 0.05, "decimals": 2}),
    ("detector", "min_face_px"): ("Smaller faces are ignored", {}),
    ("detector", "max_side"): ("", {}),
    ("recognition", "model"): ("A model of models/manifest.json, or auto", {}),
    ("recognition", "threshold"): ("Cosine similarity a face needs to be named. Leave empty to use the value "
                                   "calibrated for the model", {"step": 0.01, "decimals": 3, "optional": True}),
    ("recognition", "margin"): ("How much the best person must beat the next best. Leave empty to use the value "
                                "calibrated for the model", {"step": 0.01, "decimals": 3, "optional": True}),
    ("recognition", "vote_frames"): ("Frames a face must be recognised in before it counts", {}),
    ("recognition", "recheck_frames"): ("", {}),
    ("attendance", "dedupe_minutes"): ("A person seen again within this window makes no new event",
                                       {"step": 1.0, "decimals": 1}),
    ("attendance", "day_boundary_hour"): ("Local hour at which a new attendance day begins", {}),
    ("attendance", "timezone"): ("IANA name such as Europe/Paris, or local", {}),
    ("attendance", "station"): ("Recorded with every event (which door / kiosk)", {}),
    ("attendance", "keep_crops"): ("Lets templates be recomputed when the model changes", {}),
    ("attendance", "keep_snapshots"): ("", {}),
    ("attendance", "erase_events_on_delete"): ("Otherwise past events keep a pseudonymous reference", {}),
    ("storage", "database_url"): ("Empty: SQLite in the user's data folder; or a file, or a SQLAlchemy URL "
                                  "(postgresql+psycopg://…)", {}),
    ("storage", "hnsw_above"): ("Larger galleries are searched through a graph of persons (approximate, much "
                                "faster)", {}),
    ("storage", "hnsw_ef_search"): ("Higher finds the best match more often, but slower", {}),
    ("backup", "scheduled"): ("Once a day, while the app runs, the SQLite database is copied into the backup folder "
                              "(File > Back up now does it at once)", {}),
    ("backup", "folder"): ("Empty: 'backups' in the user's data folder. Another disk keeps the backups safe when "
                           "this one fails", {}),
    ("backup", "keep_daily"): ("The newest backup of each of the last N days is kept", {}),
    ("backup", "keep_weekly"): ("And the newest of each of the last N weeks", {}),
    ("unknowns", "enabled"): ("Faces that stay unknown over their whole visit are logged once (Attendance > Unknown "
                              "visitors)", {}),
    ("unknowns", "keep_days"): ("Entries older than this are deleted automatically", {}),
    ("unknowns", "keep_snapshots"): ("Needed for 'Enroll this person' from the list; off: no face picture is kept",
                                     {}),
    ("unknowns", "min_seconds"): ("Shorter unknown faces (a passer-by, a false detection) are not logged",
                                  {"step": 0.5, "decimals": 1}),
    ("reports", "late_after"): ("Monthly report: a first check-in after this local time (HH:MM, 24-hour clock) "
                                "marks the day late", {}),
    ("performance", "threads"): ("0: all cores", {}),
}


def label_of(section: str, key: str) -> str:
    return field_label(f"{section}.{key}")


TABS = [("Camera", "capture"), ("Detection", "detector"), ("Recognition", "recognition"),
        ("Attendance", "attendance"), ("Storage", "storage"), ("Backups", "backup"),
        ("Unknown visitors", "unknowns"), ("Reports", "reports"), ("Performance", "performance")]


def parse_number(text: str, integer: bool, decimal_point: str = ".") -> float | int:
    """A number typed by a person. "," and "." (and the locale's own decimal point) are all read as the decimal
    separator, so "2,5" and "2.5" are both 2.5 whatever the system's language; thousands separators are refused
    rather than guessed (is "1.000" one or a thousand?). Raises ValueError with a message in plain words."""
    t = text.strip().replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    if not t:
        raise ValueError("empty: type a number")
    body = t[1:] if t[0] in "+-" else t
    seps = [c for c in body if c in {",", ".", decimal_point}]
    digits = body.replace(",", "").replace(".", "").replace(decimal_point, "")
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"“{text.strip()}” is not a number")
    if integer and seps:
        raise ValueError(f"“{text.strip()}” is not a whole number")
    if len(seps) > 1:
        raise ValueError(f"“{text.strip()}” has more than one separator: write it with one decimal separator "
                         f"and no thousands separator, e.g. 2.5 or 2,5")
    if integer:
        return int(t)
    return float(t.replace(",", ".").replace(decimal_point, "."))


class NumberField(QLineEdit):
    """A number field that reads what a person types in any language (see :func:`parse_number`), shows numbers
    with the system's decimal point, keeps text it cannot read on screen (the dialog says why) instead of
    dropping keystrokes or reading "2,5" as 25, and steps with the Up / Down keys."""

    def __init__(self, integer: bool, decimals: int = 2, step: float = 1, parent: QWidget | None = None,
                 default: float | None = None) -> None:
        super().__init__(parent)
        self.integer, self.decimals, self.step = integer, decimals, step
        self.point = QLocale().decimalPoint() or "."
        self.default = default  # not None: an empty field means this value (shown greyed), and value() is None
        if default is not None:
            self.setPlaceholderText(f"model: {self.format(default)}")
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.editingFinished.connect(self._normalise)
        self.textChanged.connect(self._mark)

    def format(self, v: float) -> str:
        if self.integer:
            return str(int(v))
        text = f"{v:.10f}".rstrip("0")  # every digit the value has (a file may hold more than the step's)
        return (text + "0" if text.endswith(".") else text).replace(".", self.point)

    def setValue(self, v: float | None) -> None:  # noqa: N802 (Qt naming, like the spin boxes it replaces)
        self.setText("" if v is None else self.format(v))

    def value(self) -> float | int | None:
        """The number shown (None: empty, where an empty field means the default); raises ValueError (with the
        reason) when the text is not one."""
        if self.default is not None and not self.text().strip():
            return None
        return parse_number(self.text(), self.integer, self.point)

    def problem(self) -> str:
        try:
            self.value()
        except ValueError as exc:
            return str(exc)
        return ""

    def _normalise(self) -> None:
        """Show what was understood: "2,5" becomes "2.5" where the decimal point is "." (and the reverse)."""
        if not self.problem() and (v := self.value()) is not None:
            self.setText(self.format(v))

    def _mark(self) -> None:
        self.setStyleSheet("border: 1px solid #c0392b;" if self.problem() else "")

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down) and not self.problem():
            sign = 1 if e.key() == Qt.Key.Key_Up else -1
            v = self.value()
            self.setValue(round((self.default if v is None else v) + sign * self.step, self.decimals))
            self.textEdited.emit(self.text())
            return
        super().keyPressEvent(e)


class SettingsDialog(QDialog):
    settingsAccepted = Signal(object)  # Settings, validated

    def __init__(self, settings: Settings, models: list[str] | None = None, cameras: list[CameraInfo] | None = None,
                 settings_path: str = "", parent: QWidget | None = None,
                 calibrated: RecognitionSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._base = settings
        # the threshold and margin calibrated for the model in use (what an empty field means)
        self.calibrated = calibrated or RecognitionSettings().for_model(None)
        self.widgets: dict[tuple[str, str], QWidget] = {}
        tabs = QTabWidget()
        tabs.setUsesScrollButtons(False)  # every tab in sight: the dialog widens to show them all
        for title, section in TABS:
            page = QWidget()
            form = QFormLayout(page)
            for (sec, key), (tip, opts) in FIELDS.items():
                if sec != section:
                    continue
                w = self._make_widget(sec, key, getattr(getattr(settings, sec), key), opts, models, cameras)
                w.setToolTip(tip)
                self.widgets[(sec, key)] = w
                form.addRow(label_of(sec, key), self._with_browse(sec, key, w))
            if section == "unknowns":  # what the log keeps, in plain words, following the values on screen
                self.unknowns_note = QLabel(privacy_text(settings.unknowns))
                self.unknowns_note.setObjectName("unknownsNote")
                self.unknowns_note.setWordWrap(True)
                form.addRow(self.unknowns_note)
            tabs.addTab(page, title)
        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.error.hide()
        self.session_note = QLabel()
        self.session_note.setObjectName("sessionNote")
        self.session_note.setWordWrap(True)
        self.session_note.hide()
        # where OK will save (the controller says "Saved to ..." once it has); nothing is saved while this is open
        self.where = QLabel(f"Settings file: {settings_path}" if settings_path else "")
        self.where.setStyleSheet("color: gray;")
        self.where.setWordWrap(True)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.set_settings(Settings()))
        lay = QVBoxLayout(self)
        lay.addWidget(tabs)
        lay.addWidget(self.error)
        lay.addWidget(self.session_note)
        lay.addWidget(self.where)
        for w in self.widgets.values():  # a message about a value goes (or changes) as soon as the value is edited
            sig = {QCheckBox: "toggled", QComboBox: "currentTextChanged"}.get(type(w), "textChanged")
            getattr(w, sig).connect(self._revalidate)
            getattr(w, sig).connect(self._update_unknowns_note)
        lay.addWidget(self.buttons)

    # -- widgets ---------------------------------------------------------------------------------------------------
    def _make_widget(self, sec: str, key: str, value: Any, opts: dict, models: list[str] | None,
                     cameras: list[CameraInfo] | None) -> QWidget:
        if (sec, key) == ("recognition", "model"):
            w = QComboBox()
            w.setEditable(True)
            w.addItems(["auto", *[m for m in (models or []) if m != "auto"]])
            w.setCurrentText(str(value))
            return w
        if (sec, key) == ("attendance", "timezone"):
            w = QComboBox()
            w.setEditable(True)
            w.addItems(["local", *sorted(zoneinfo.available_timezones())])
            w.setCurrentText(str(value))
            return w
        if (sec, key) == ("capture", "source"):
            w = QComboBox()
            w.setEditable(True)
            for c in cameras or []:
                w.addItem(str(c.index))
            w.setCurrentText(str(value))
            return w
        if isinstance(value, bool):
            w = QCheckBox()
            w.setChecked(value)
            return w
        if opts.get("optional"):  # None: the model's calibrated value
            w = NumberField(False, opts.get("decimals", 2), opts.get("step", 1),
                            default=getattr(self.calibrated, key))
            w.setValue(value)
            return w
        if isinstance(value, int | float):  # Settings.validate owns the ranges and says them
            w = NumberField(isinstance(value, int), opts.get("decimals", 2), opts.get("step", 1))
            w.setValue(value)
            return w
        w = QLineEdit(str(value))
        return w

    def _with_browse(self, sec: str, key: str, w: QWidget) -> QWidget:
        """The field with a Browse… button beside it, for the fields that name a file or folder."""
        if (sec, key) == ("backup", "folder"):
            from desktop_app.config import BackupSettings

            w.setPlaceholderText(f"default: {BackupSettings().resolved_folder()}")
            pick = lambda: self._browse_folder(w)  # noqa: E731
        elif (sec, key) == ("storage", "database_url"):
            w.setPlaceholderText("default: SQLite in the user's data folder")
            pick = self._browse_database
        elif (sec, key) == ("capture", "source"):
            pick = self._browse_source
        else:
            return w
        box = QWidget()
        h = QHBoxLayout(box)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(w, 1)
        b = QPushButton("Browse…")
        h.addWidget(b)
        b.clicked.connect(pick)
        return box

    def _browse_folder(self, w: QLineEdit) -> None:
        if path := QFileDialog.getExistingDirectory(self, "Backup folder", w.text()):
            w.setText(path)

    def _browse_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Database file", "attendance.db", "SQLite database (*.db)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.widgets[("storage", "database_url")].setText(database_url(path))

    def _browse_source(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Video file")
        if path:
            self.widgets[("capture", "source")].setCurrentText(path)

    # -- values ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _value(w: QWidget) -> Any:
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, NumberField):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText().strip()
        if isinstance(w, QLineEdit):
            return w.text().strip()
        raise TypeError(type(w))

    def values(self) -> dict[str, dict[str, Any]]:
        d = self._base.to_dict()
        for (sec, key), w in self.widgets.items():
            d[sec][key] = self._value(w)
        d["storage"]["database_url"] = database_url(d["storage"]["database_url"])
        return d

    def settings(self) -> Settings:
        """The edited settings, validated; raises ConfigError naming the field."""
        return Settings.from_dict(self.values())

    @Slot(object)
    def set_settings(self, s: Settings) -> None:
        for (sec, key), w in self.widgets.items():
            v = getattr(getattr(s, sec), key)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, NumberField):
                w.setValue(v)
            elif isinstance(w, QComboBox):
                w.setCurrentText(str(v))
            elif isinstance(w, QLineEdit):
                w.setText(str(v))

    def set_field(self, section: str, key: str, value: Any) -> None:
        """Set one field as a person would (for tests and scripted use)."""
        w = self.widgets[(section, key)]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, NumberField):
            w.setValue(value)
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        else:
            w.setText(str(value))

    def note_session_database(self, saved_url: str) -> None:
        """The database was given on the command line (--db): say that it is for this session only."""
        self.session_note.setText(
            f"The database was given on the command line (--db) for this session only; the settings file keeps "
            f"{saved_url or 'the default database'}. Choose another database here to save it.")
        self.session_note.show()

    def number_problems(self) -> list[str]:
        """One line per number field whose text is not a number, naming the field by its label."""
        return [f"{label_of(*k)}: {p}" for k, w in self.widgets.items()
                if isinstance(w, NumberField) and (p := w.problem())]

    def problem(self) -> str:
        """What stops these values from being saved, naming fields by their labels; empty when nothing does."""
        if problems := self.number_problems():
            return "\n".join(problems)
        try:
            s = self.settings()
        except ConfigError as exc:
            return exc.plain
        changed = s.storage.database_url != self._base.storage.database_url
        if changed and (where := database_location_problem(s.storage.resolved_url())):  # can it hold a database?
            return f"{label_of('storage', 'database_url')}: {where}"
        return ""

    def _show_problem(self, text: str, refused: bool) -> None:
        self.error.setText(f"Not saved: {text}" if refused else text)
        self.error.setVisible(bool(text))

    def _update_unknowns_note(self) -> None:
        with contextlib.suppress(ConfigError, ValueError):  # else the message under the tabs says what is wrong
            self.unknowns_note.setText(privacy_text(self.settings().unknowns))

    def _revalidate(self) -> None:
        """After an edit: a number that cannot be read is said at once; a message shown before is updated, or
        taken away once the values are right (it stayed after the value was corrected)."""
        if problems := self.number_problems():
            self._show_problem("\n".join(problems), False)
        elif not self.error.isHidden():
            text = self.problem()
            self._show_problem(text, refused=bool(text))

    def accept(self) -> None:
        if text := self.problem():
            self._show_problem(text, True)
            return
        s = self.settings()
        self._show_problem("", False)
        if (question := threshold_warning(s.recognition.threshold, self._base.recognition.threshold,
                                          float(self.calibrated.threshold))) is not None:
            self._ask(question, s)
            return
        self._finish(s)

    def _ask(self, question: str, s: Settings) -> None:
        """A match threshold far from the calibrated one changes who gets named: say how, and save only on Yes
        (No is the default button: a stray Enter keeps the dialog open)."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Match threshold", question,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText("Save anyway")
        box.button(QMessageBox.StandardButton.No).setText("Go back")
        box.finished.connect(lambda r: self._finish(s) if r == QMessageBox.StandardButton.Yes else None)
        self.confirm = box
        box.open()

    def _finish(self, s: Settings) -> None:
        emit(self.settingsAccepted, s)
        super().accept()


def threshold_warning(value: float | None, current: float | None, calibrated: float) -> str | None:
    """The question to ask before saving a match threshold far from the model's calibrated one, in plain words;
    None when it is the model's (empty), close to it, or unchanged (a value already in use was accepted before)."""
    if value is None or abs(value - calibrated) <= FAR_FROM_CALIBRATED + 1e-9 or (
            current is not None and abs(value - current) < 1e-9):
        return None
    if value < calibrated:
        effect = ("More strangers will be named as someone enrolled, and their arrivals recorded under that "
                  "person's name.")
    else:
        effect = "More enrolled people will be left unknown, and their arrivals not recorded."
    return (f"The match threshold {value:g} is far from the value calibrated for this model "
            f"({calibrated:g}). {effect}\n\nSave it anyway?")


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """'section.key' of every value that differs."""
    out = []
    for f in fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        for g in fields(a):
            if getattr(a, g.name) != getattr(b, g.name):
                out.append(f"{f.name}.{g.name}")
    return out
