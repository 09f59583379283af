"""The live view: the frame, a box per face (enrolled people in green with name and similarity, unknown faces in
amber), the measured FPS and per-stage milliseconds in a corner, a brief flash for a just-logged check-in, and a
message instead of a picture when there is no source."""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.ui.qtcompat import emit
from desktop_app.ui.worker import FramePacket

KNOWN = QColor(46, 204, 113)  # enrolled, voted identity
UNKNOWN = QColor(241, 170, 38)  # a face nobody is enrolled as (or not decided yet)
PENDING = QColor(160, 160, 160)  # a track whose vote is still open
FLASH = QColor(52, 152, 219)
FLASH_SECONDS = 2.0
STAGES = ("detect", "align", "quality", "embed", "search", "track")


class VideoView(QWidget):
    """Setter slots only; emits ``clicked`` so a window can offer a source when there is none."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._packet: FramePacket | None = None
        self._message = "No source"
        self._detail = ""
        self._flash: tuple[str, float] | None = None
        self._flash_timer = QTimer(self)
        self._flash_timer.setSingleShot(True)
        self._flash_timer.timeout.connect(self.update)
        self.show_stats = True
        self.frames_shown = 0
        self._paused = False

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    # -- setters -----------------------------------------------------------------------------------------------
    @Slot(object)
    def set_packet(self, packet: FramePacket) -> None:
        self._packet = packet
        self._image = packet.image
        self._message = ""
        self.frames_shown += 1
        self.update()

    @Slot(str, str)
    def set_message(self, message: str, detail: str = "") -> None:
        """A message over the view (no source, reconnecting, end of video); '' clears it. The last frame stays
        visible, dimmed, under a message."""
        self._message, self._detail = message, detail
        self.update()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Mark the picture as paused (a still frame must not pass for a live one)."""
        self._paused = paused
        self.update()

    @property
    def paused(self) -> bool:
        return self._paused

    def clear(self) -> None:
        self._packet, self._image = None, None
        self.update()

    @Slot(str)
    def flash(self, text: str) -> None:
        """Show ``text`` (a check-in) over the view for a moment."""
        self._flash = (text, time.monotonic() + FLASH_SECONDS)
        self._flash_timer.start(int(FLASH_SECONDS * 1000) + 50)
        self.update()

    @property
    def message(self) -> str:
        return self._message

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def flash_text(self) -> str:
        if self._flash and self._flash[1] > time.monotonic():
            return self._flash[0]
        return ""

    def face_labels(self) -> list[str]:
        """The labels drawn for the current frame (what a person reads on the boxes)."""
        return [label for _, label, _ in self._face_marks()] if self._packet else []

    # -- painting ----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        emit(self.clicked)
        super().mousePressEvent(event)

    def _face_marks(self) -> list[tuple[QRectF, str, QColor]]:
        out = []
        if self._packet is None:
            return out
        for f in self._packet.faces:
            x1, y1, x2, y2 = (float(v) for v in f.box[:4])
            voted = f.voted
            if f.name is not None and voted:
                label, colour = f"{f.name}  {f.similarity:.2f}", KNOWN
            elif voted:
                label, colour = "unknown", UNKNOWN
            else:
                label, colour = "…", PENDING
            out.append((QRectF(QPointF(x1, y1), QPointF(x2, y2)), label, colour))
        return out

    def _target_rect(self) -> QRectF:
        if self._image is None or self._image.isNull():
            return QRectF(self.rect())
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        target = self._target_rect()
        if self._image is not None and not self._image.isNull():
            p.drawImage(target, self._image)
            s = target.width() / self._image.width()
            self._paint_faces(p, target, s)
            if self.show_stats and self._packet is not None:
                self._paint_stats(p, target)
        if self._message:
            self._paint_message(p)
        if self.flash_text:
            self._paint_flash(p, target)
        if self._paused:
            self._paint_paused(p, target)
        p.end()

    def _paint_paused(self, p: QPainter, target: QRectF) -> None:
        font = QFont(self.font())
        font.setPointSizeF(14)
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        text = "Paused"
        bar_w, gap, pad = 5, 4, 10
        w, h = pad + 2 * bar_w + gap + 8 + fm.horizontalAdvance(text) + pad, fm.height() + 12
        box = QRectF(max(target.x(), 0) + 10, max(target.y(), 0) + 10, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 180))
        p.drawRoundedRect(box, 6, 6)
        p.setBrush(QColor(255, 255, 255))
        bar_h = fm.ascent()
        top = box.center().y() - bar_h / 2
        p.drawRect(QRectF(box.x() + pad, top, bar_w, bar_h))
        p.drawRect(QRectF(box.x() + pad + bar_w + gap, top, bar_w, bar_h))
        p.setPen(QColor(255, 255, 255))
        p.drawText(QRectF(box.x() + pad + 2 * bar_w + gap + 8, box.y(), w, h),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)

    def _paint_faces(self, p: QPainter, target: QRectF, s: float) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, 10.0 * min(1.5, max(0.8, s))))
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        for r, label, colour in self._face_marks():
            box = QRectF(target.x() + r.x() * s, target.y() + r.y() * s, r.width() * s, r.height() * s)
            p.setPen(QPen(colour, 3 if colour == KNOWN else 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(box)
            tw, th = fm.horizontalAdvance(label) + 8, fm.height() + 4
            ty = box.y() - th if box.y() - th >= target.y() else box.bottom()
            p.fillRect(QRectF(box.x(), ty, tw, th), colour)
            p.setPen(QColor(0, 0, 0))
            p.drawText(QRectF(box.x() + 4, ty + 2, tw, th), Qt.AlignmentFlag.AlignLeft, label)

    def _paint_stats(self, p: QPainter, target: QRectF) -> None:
        pk = self._packet
        assert pk is not None
        t = pk.timings_ms
        n = len(pk.faces)
        lines = [f"{pk.fps:.1f} FPS  {t.get('total', 0.0):.1f} ms  {n} face{'s' if n != 1 else ''}"]
        stages = [f"{k} {t[k]:.1f}" for k in STAGES if k in t]
        for i in range(0, len(stages), 3):
            lines.append("  ".join(stages[i:i + 3]))
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(9)
        p.setFont(font)
        fm = p.fontMetrics()
        w = max(fm.horizontalAdvance(x) for x in lines) + 12
        h = fm.height() * len(lines) + 8
        box = QRectF(target.right() - w - 6, target.bottom() - h - 6, w, h)  # bottom-right, under the flash
        p.fillRect(box, QColor(0, 0, 0, 160))
        p.setPen(QColor(235, 235, 235))
        for i, line in enumerate(lines):
            p.drawText(QPointF(box.x() + 6, box.y() + 4 + fm.ascent() + i * fm.height()), line)

    def _paint_message(self, p: QPainter) -> None:
        if self._image is not None:
            p.fillRect(self.rect(), QColor(0, 0, 0, 150))
        font = QFont(self.font())
        font.setPointSizeF(16)
        font.setBold(True)
        p.setFont(font)
        p.setPen(QColor(240, 240, 240))
        r = QRectF(self.rect()).adjusted(30, 0, -30, 0)
        top = r.adjusted(0, 0, 0, -r.height() / 2)
        p.drawText(top, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextWordWrap,
                   self._message)
        if self._detail:
            font.setPointSizeF(11)
            font.setBold(False)
            p.setFont(font)
            p.setPen(QColor(200, 200, 200))
            bottom = r.adjusted(0, r.height() / 2 + 12, 0, 0)
            p.drawText(bottom, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                       self._detail)

    def _paint_flash(self, p: QPainter, target: QRectF) -> None:
        font = QFont(self.font())
        font.setPointSizeF(18)
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        text = self.flash_text
        w, h = fm.horizontalAdvance(text) + 40, fm.height() + 20
        box = QRectF(target.center().x() - w / 2, target.bottom() - h - 90, w, h)  # above the stats box
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(FLASH.red(), FLASH.green(), FLASH.blue(), 220))
        p.drawRoundedRect(box, 10, 10)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
