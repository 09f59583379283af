"""Enrollment: name, external id, group; captures from the live view with guidance, or photo files; each
capture's verdict from the core (accepted with its aligned crop, or refused with the reasons); the duplicate
warning; an atomic save (all templates or none, done by the core on the task thread).

The dialog asks, the controller does: ``controller.analyze(image)`` runs ``analyze_still`` on the vision thread,
:func:`desktop_app.gallery.enroll.choose_face` gives the verdict, ``controller.enroll`` checks duplicates and
commits."""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.attendance.unknowns import snapshot_refusal
from desktop_app.gallery.enroll import Candidate, Capture, EnrollmentPlan, EnrollmentResult, Refusal, choose_face
from desktop_app.ui.images import bgr_to_qimage
from desktop_app.ui.main_window import IMAGE_FILTER
from desktop_app.ui.qtcompat import emit
from desktop_app.ui.worker import FramePacket
from desktop_app.vision.media import MediaError, read_image
from desktop_app.vision.quality import DEFAULT_GATE, EnrollmentGate
from desktop_app.vision.types import Face, largest_face

LARGEST_LABEL = "When several faces are in view, use the largest"  # the check box, as the guidance names it
CENTRE_TOLERANCE = (0.22, 0.28)  # |face centre - frame centre| as a fraction of the frame's width, height
THUMB = 96
OK_MARK, BAD_MARK = "✔", "✘"


@dataclass(frozen=True)
class Hint:
    label: str
    ok: bool
    detail: str


def guidance(faces: tuple[Face, ...], frame_size: tuple[int, int], gate: EnrollmentGate = DEFAULT_GATE,
             largest: bool = False) -> list[Hint]:
    """What a person in front of the camera should change before a capture: one face, centred, big enough,
    sharp, frontal (the gate's own limits). Advice only: the verdict on a capture is the core's."""
    if not faces:
        return [Hint("One face", False, "no face in view: look at the camera")]
    if len(faces) > 1 and not largest:
        return [Hint("One face", False, f"{len(faces)} faces in view: only the person enrolling should be in front "
                                         f"of the camera (or tick '{LARGEST_LABEL}')")]
    f = largest_face(faces)
    w, h = frame_size
    cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
    dx, dy = (cx - w / 2) / max(w, 1), (cy - h / 2) / max(h, 1)
    centred = abs(dx) <= CENTRE_TOLERANCE[0] and abs(dy) <= CENTRE_TOLERANCE[1]
    where = []
    if abs(dx) > CENTRE_TOLERANCE[0]:
        where.append("too far " + ("right" if dx > 0 else "left") + " in the picture")
    if abs(dy) > CENTRE_TOLERANCE[1]:
        where.append("too " + ("low" if dy > 0 else "high") + " in the picture")
    q = f.quality
    hints = [Hint("One face", True, "one face" if len(faces) == 1 else "the largest face is used"),
             Hint("Centred", centred, "centred" if centred else ", ".join(where))]
    if q is None:
        return [*hints, Hint("Quality", False, "quality unknown")]
    hints.append(Hint("Big enough", q.size >= gate.min_size_px,
                      f"{q.size:.0f} px" + ("" if q.size >= gate.min_size_px else
                                            f" (needs {gate.min_size_px:.0f}): come closer")))
    hints.append(Hint("Sharp", q.sharpness >= gate.min_sharpness,
                      f"sharpness {q.sharpness:.0f}" + ("" if q.sharpness >= gate.min_sharpness else
                                                        ": hold still, more light")))
    frontal = abs(q.yaw) <= gate.max_yaw and abs(q.pitch) <= gate.max_pitch
    hints.append(Hint("Frontal", frontal, f"yaw {q.yaw:+.0f}°, pitch {q.pitch:+.0f}°"
                      + ("" if frontal else ": look straight at the camera")))
    return hints


class CapturePreview(QLabel):
    """The live frame, small, with the face boxes in the guidance colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(400, 225)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: #18181c; color: #ddd;")
        self.setText("No live picture: open a camera or a video in the main window, or import photos.")
        self.setWordWrap(True)

    def show_packet(self, packet: FramePacket, good: bool) -> None:
        img = packet.image
        pm = QPixmap.fromImage(img).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)
        s = pm.width() / max(img.width(), 1)
        p = QPainter(pm)
        p.setPen(QPen(QColor(46, 204, 113) if good else QColor(231, 76, 60), 3))
        for f in packet.faces:
            x1, y1, x2, y2 = (float(v) * s for v in f.box[:4])
            p.drawRect(int(x1), int(y1), int(x2 - x1), int(y2 - y1))
        p.end()
        self.setPixmap(pm)


class EnrollDialog(QDialog):
    """Enroll a new person, or add / replace templates of an existing one (``person``)."""

    enrolled = Signal(object)  # EnrollmentResult

    def __init__(self, controller, parent: QWidget | None = None, person: tuple[int, str, str, str] | None = None,
                 replace: bool = False) -> None:
        super().__init__(parent)
        self.controller = controller
        self.person = person
        self.setWindowTitle("Enroll a person" if person is None else f"Re-enroll {person[1]}")
        self.resize(980, 640)
        self.entries: list[tuple[Capture | None, Candidate | Refusal]] = []  # one per row of the list
        self._pending: dict[int, str] = {}  # request id -> source name
        self._stored: set[int] = set()  # requests of stored pictures (an unknown visitor's snapshots)
        self._confirm = False
        self.result: EnrollmentResult | None = None
        self.last_plan: EnrollmentPlan | None = None
        self._packet: FramePacket | None = None
        self._build(replace)
        controller.packetShown.connect(self._on_packet)
        controller.worker.stillAnalyzed.connect(self._on_analyzed)
        if controller.last_packet is not None:
            self._on_packet(controller.last_packet)
        # a video file or an image folder waits while someone enrols from it (the face on screen stays there);
        # a camera or a stream goes on. Closing the dialog puts the source back as it was.
        self._was_paused = bool(controller.paused)
        self.pausable = bool(controller.current_source) and not controller.source_is_live
        if self.pausable and not controller.paused:
            self.set_video_paused(True)
        self._update_video_controls()

    # -- layout ------------------------------------------------------------------------------------------------------
    def _build(self, replace: bool) -> None:
        self.name = QLineEdit()
        self.name.setPlaceholderText("Full name (required)")
        self.external_id = QLineEdit()
        self.external_id.setPlaceholderText("Employee or student number (optional, unique)")
        self.group = QComboBox()
        self.group.setEditable(True)
        self.group.addItems([""] + self.controller.groups())
        self.largest = QCheckBox(LARGEST_LABEL)
        self.replace = QCheckBox("Replace this person's current templates")
        self.replace.setChecked(replace)
        if self.person is not None:
            pid, name, ext, grp = self.person
            self.name.setText(name)
            self.external_id.setText(ext or "")
            self.group.setCurrentText(grp or "")
            for w in (self.name, self.external_id, self.group):
                w.setEnabled(False)  # edit them in the people manager
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("External id", self.external_id)
        form.addRow("Group", self.group)
        form.addRow("", self.largest)
        if self.person is not None:
            form.addRow("", self.replace)

        self.preview = CapturePreview()
        self.hints = QLabel()
        self.hints.setObjectName("guidance")
        self.hints.setTextFormat(Qt.TextFormat.RichText)
        self.hints.setWordWrap(True)
        self.capture_btn = QPushButton("Capture")
        self.capture_btn.setDefault(False)
        self.capture_btn.setAutoDefault(False)
        self.import_btn = QPushButton("Import photos…")
        self.import_btn.setAutoDefault(False)
        self.play_btn = QPushButton()
        self.play_btn.setAutoDefault(False)
        self.next_btn = QPushButton("Next frame ▸")
        self.next_btn.setAutoDefault(False)
        self.video_note = QLabel()
        self.video_note.setWordWrap(True)
        self.video_note.setStyleSheet("color: gray;")
        live = QGroupBox("Camera")
        lv = QVBoxLayout(live)
        lv.addWidget(self.preview, 1)
        video = QHBoxLayout()
        video.addWidget(self.play_btn)
        video.addWidget(self.next_btn)
        video.addWidget(self.video_note, 1)
        lv.addLayout(video)
        lv.addWidget(self.hints)
        row = QHBoxLayout()
        row.addWidget(self.capture_btn)
        row.addWidget(self.import_btn)
        lv.addLayout(row)

        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMinimumWidth(330)
        self.list.setWordWrap(True)
        self.list.setGridSize(QSize(THUMB + 40, THUMB + 46))
        self.remove_btn = QPushButton("Remove selected")
        self.remove_btn.setAutoDefault(False)
        self.messages = QLabel()
        self.messages.setObjectName("messages")
        self.messages.setWordWrap(True)
        self.messages.setTextFormat(Qt.TextFormat.RichText)
        self.messages.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        caps = QGroupBox("Captures")
        cv = QVBoxLayout(caps)
        cv.addWidget(self.list, 1)
        cv.addWidget(self.remove_btn)
        cv.addWidget(self.messages)

        self.save_btn = QPushButton("Save")
        self.save_btn.setAutoDefault(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setAutoDefault(False)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.save_btn)
        bottom.addWidget(self.cancel_btn)

        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(live, 1)
        top.addLayout(left, 3)
        top.addWidget(caps, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top, 1)
        lay.addLayout(bottom)

        self.capture_btn.clicked.connect(self.capture)
        self.play_btn.clicked.connect(lambda: self.set_video_paused(not self.controller.paused))
        self.next_btn.clicked.connect(self.controller.step_frame)
        self.import_btn.clicked.connect(self.ask_photos)
        self.remove_btn.clicked.connect(self.remove_selected)
        self.save_btn.clicked.connect(self.save)
        self.cancel_btn.clicked.connect(self.reject)
        self.name.textChanged.connect(self._name_edited)
        self.largest.toggled.connect(self._reverdict)
        self._update_buttons()
        self._show_hints([])

    # -- the source while enrolling --------------------------------------------------------------------------------
    def set_video_paused(self, paused: bool) -> None:
        """Pause or play the main window's video (its Pause button and mark follow)."""
        self.controller.window.act_pause.setChecked(paused)
        if self.controller.paused != paused:  # the action was already in that state
            self.controller.set_paused(paused)
        self._update_video_controls()

    def _update_video_controls(self) -> None:
        paused = bool(self.controller.paused)
        for w in (self.play_btn, self.next_btn, self.video_note):
            w.setVisible(self.pausable)
        self.play_btn.setText("▶ Play" if paused else "❚❚ Pause")
        self.next_btn.setEnabled(paused)
        self.video_note.setText("The video waits while you enrol: capture this frame, step to the next one, or "
                                "play on." if paused else "Pause where the face is clear, then capture.")

    # -- live guidance ------------------------------------------------------------------------------------------------
    @Slot(object)
    def _on_packet(self, packet: FramePacket) -> None:
        first = self._packet is None
        self._packet = packet
        if first:
            self._update_buttons()
        size = (packet.image.width(), packet.image.height())
        hints = guidance(packet.faces, size, largest=self.largest.isChecked())
        good = all(h.ok for h in hints)
        if self.isVisible():
            self.preview.show_packet(packet, good)
        self._show_hints(hints)

    def _show_hints(self, hints: list[Hint]) -> None:
        self.current_hints = hints
        if not hints:
            self.hints.setText("<i>Waiting for a picture…</i>")
            return
        parts = [f"<span style='color:{'#27ae60' if h.ok else '#c0392b'}'>{OK_MARK if h.ok else BAD_MARK} "
                 f"<b>{h.label}</b></span> {h.detail}" for h in hints]
        ready = all(h.ok for h in hints)
        self.hints.setText(" &nbsp; ".join(parts) + ("<br><b>Ready: capture now.</b>" if ready else ""))

    @property
    def ready(self) -> bool:
        return bool(getattr(self, "current_hints", None)) and all(h.ok for h in self.current_hints)

    # -- captures -----------------------------------------------------------------------------------------------------
    @Slot()
    def capture(self) -> int | None:
        """Take the frame on screen now (a copy) and ask the vision thread to analyse it."""
        pk = self._packet
        if pk is None:
            self._message("No picture to capture: open a camera or a video in the main window, or import photos.")
            return None
        source = f"{pk.source} frame {pk.index}"
        return self._analyze(source, pk.frame.copy())

    def _analyze(self, source: str, image: np.ndarray) -> int:
        rid = self.controller.analyze(image)
        self._pending[rid] = source
        self._update_buttons()
        return rid

    def add_images(self, images: list[tuple[str, np.ndarray]]) -> list[int]:
        """Offer images as captures (each analysed like a capture from the camera): the snapshots of an unknown
        visitor ("Enroll this person" in the unknown-visitor list). A refusal speaks of the stored picture: the
        visitor is not in front of the camera to move closer."""
        ids = [self._analyze(source, image) for source, image in images]
        self._stored.update(ids)
        return ids

    @Slot()
    def ask_photos(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Photos of this person", "", IMAGE_FILTER)
        self.import_photos(paths)

    def import_photos(self, paths: list[str | Path]) -> list[int]:
        """Read each file (unreadable ones are refused with the reason) and analyse it."""
        ids = []
        for p in paths:
            name = Path(p).name
            try:
                img = read_image(p)
            except MediaError as exc:  # the list names the file already: the reason alone
                self._add_verdict(None, Refusal(name, (getattr(exc, "reason", None) or str(exc),)), None)
                continue
            ids.append(self._analyze(name, img))
        return ids

    @Slot(int, object, object)
    def _on_analyzed(self, request_id: int, image: np.ndarray, result) -> None:
        source = self._pending.pop(request_id, None)
        if source is None:
            return  # another dialog's request
        cap = Capture(source, image, result)
        verdict = choose_face(result, source, self.largest.isChecked())
        if request_id in self._stored:
            self._stored.discard(request_id)
            if isinstance(verdict, Refusal):
                verdict = Refusal(source, snapshot_refusal(verdict.reasons))
        self._add_verdict(cap, verdict, image)

    def _add_verdict(self, cap: Capture | None, verdict: Candidate | Refusal, image: np.ndarray | None) -> None:
        self.entries.append((cap, verdict))
        item = QListWidgetItem()
        self._render_item(item, verdict, cap)
        self.list.addItem(item)
        self._confirm = False
        self._update_buttons()
        self._summarise()

    def _render_item(self, item: QListWidgetItem, verdict: Candidate | Refusal, cap: Capture | None) -> None:
        if isinstance(verdict, Candidate):
            thumb = bgr_to_qimage(verdict.crop)
            item.setText(f"{OK_MARK} {verdict.source}")
            item.setToolTip(f"{verdict.source}\nquality {verdict.quality:.2f}")
            item.setForeground(QColor(39, 174, 96))
        else:
            thumb = _face_thumb(cap) if cap is not None else None
            item.setText(f"{BAD_MARK} {verdict.source}")
            item.setToolTip(f"{verdict.source}\nrefused: " + "\n".join(verdict.reasons))
            item.setForeground(QColor(192, 57, 43))
        if thumb is not None:
            item.setIcon(QIcon(QPixmap.fromImage(thumb)))

    def _reverdict(self) -> None:
        """'Use the largest face' changed: the core's verdict on every capture is taken again."""
        old = list(self.entries)
        self.entries = []
        self.list.clear()
        for c, v in old:
            verdict = choose_face(c.result, c.source, self.largest.isChecked()) if c is not None else v
            self._add_verdict(c, verdict, None)

    @Slot()
    def remove_selected(self) -> None:
        rows = sorted((self.list.row(i) for i in self.list.selectedItems()), reverse=True)
        for r in rows:
            self.remove_at(r)

    @Slot()
    def _name_edited(self) -> None:
        """A confirmation was for the name it was asked about: another name is checked afresh (it may be taken
        too)."""
        if self._confirm:
            self._confirm = False
            self._summarise()
        self._update_buttons()

    def remove_at(self, row: int) -> None:
        del self.entries[row]
        self.list.takeItem(row)
        self._confirm = False
        self._update_buttons()
        self._summarise()

    @property
    def verdicts(self) -> list[Candidate | Refusal]:
        return [v for _, v in self.entries]

    @property
    def captures(self) -> list[Capture]:
        return [c for c, _ in self.entries if c is not None]

    @property
    def usable(self) -> list[Candidate]:
        return [v for v in self.verdicts if isinstance(v, Candidate)]

    @property
    def refusals(self) -> list[Refusal]:
        return [v for v in self.verdicts if isinstance(v, Refusal)]

    def _summarise(self) -> None:
        lines = [f"<b>{len(self.usable)}</b> usable, <b>{len(self.refusals)}</b> refused."]
        for r in self.refusals:
            lines.append(f"<span style='color:#c0392b'>{BAD_MARK} {r.source}: {'; '.join(r.reasons)}</span>")
        if any(r.faces > 1 for r in self.refusals) and not self.largest.isChecked():
            lines.append(f"To use the largest face of such a photo, tick '{LARGEST_LABEL}'.")
        if len(self.usable) == 1:
            lines.append("More captures (a slight turn left and right) make recognition more reliable.")
        self._message("<br>".join(lines))

    def _message(self, html: str) -> None:
        self.messages.setText(html)

    def _update_buttons(self) -> None:
        busy = bool(self._pending)
        self.capture_btn.setEnabled(self._packet is not None)
        named = bool(self.name.text().strip())
        self.save_btn.setEnabled(bool(self.usable) and named and not busy)
        self.save_btn.setText("Enroll anyway" if self._confirm else "Save")
        self.remove_btn.setEnabled(self.list.count() > 0)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    # -- saving -------------------------------------------------------------------------------------------------------
    @Slot()
    def save(self) -> None:
        caps = [c for c, v in self.entries if c is not None and isinstance(v, Candidate)]
        if not caps:
            return
        self.save_btn.setEnabled(False)
        self._message("Saving…")
        pid = self.person[0] if self.person is not None else None
        self.controller.enroll(
            caps, self.name.text().strip(), self.external_id.text().strip() or None,
            self.group.currentText().strip() or None, person_id=pid, largest=self.largest.isChecked(),
            confirm=self._confirm, replace_templates=self.replace.isChecked() and pid is not None,
            on_done=self._saved, on_error=self._failed)

    def _saved(self, out) -> None:
        if isinstance(out, EnrollmentPlan):
            self.last_plan = out
            self._confirm = True
            warn = "<br>".join(f"⚠ {html.escape(w)}" for w in out.warnings)
            self._message(f"<span style='color:#d35400'><b>Possible duplicate.</b><br>{warn}<br>If this really is "
                          "a different person, press <b>Enroll anyway</b>; otherwise cancel and add photos to the "
                          "existing person from the people manager.</span>")
            self._update_buttons()
            return
        self.result = out
        emit(self.enrolled, out)
        self.accept()

    def _failed(self, message: str) -> None:
        self._message(f"<span style='color:#c0392b'><b>Not saved:</b> {message}</span>")
        self._update_buttons()

    def done(self, r: int) -> None:  # noqa: D401 - Qt override: stop listening to frames when closed
        for sig, slot in ((self.controller.packetShown, self._on_packet),
                          (self.controller.worker.stillAnalyzed, self._on_analyzed)):
            with contextlib.suppress(RuntimeError, TypeError):
                sig.disconnect(slot)
        if self.pausable and self.controller.paused != self._was_paused:
            self.set_video_paused(self._was_paused)  # the source goes on as it was before the dialog
        super().done(r)


def _face_thumb(cap: Capture) -> QImage | None:
    """A thumbnail of a refused capture: its largest face if any, else the whole image."""
    img = cap.image
    faces = cap.result.faces if cap.result is not None else ()
    if faces:
        f = largest_face(faces)
        x1, y1, x2, y2 = (int(v) for v in f.box[:4])
        h, w = img.shape[:2]
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 > x1 and y2 > y1:
            img = img[y1:y2, x1:x2]
    return bgr_to_qimage(img).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio)
