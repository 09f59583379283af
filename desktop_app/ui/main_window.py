"""The main window: source picker, live view, today's events. A view: it emits what the person asks for (intent
signals) and shows what it is told (setter slots); :class:`desktop_app.ui.controller.AppController` wires it to
the core."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app.capture import CameraInfo, redact_url
from desktop_app.capture.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from desktop_app.ui.qtcompat import emit
from desktop_app.ui.side_panel import EventsPanel
from desktop_app.ui.video_view import VideoView

VIDEO_FILTER = "Videos ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES)))
IMAGE_FILTER = "Images ({})".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))

PICK_VIDEO, PICK_FOLDER, PICK_STREAM = "__video__", "__folder__", "__stream__"


class NoSourcePage(QWidget):
    """Shown instead of the view when nothing can be shown: says why and offers the other sources."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No camera found")
        self.title.setObjectName("noSourceTitle")
        self.title.setStyleSheet("font-size: 20pt; font-weight: bold;")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_video = QPushButton("Open a video file…")
        self.open_folder = QPushButton("Open an image folder…")
        self.open_stream = QPushButton("Network camera (RTSP)…")
        self.retry = QPushButton("Look for cameras again")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.open_video, self.open_folder, self.open_stream, self.retry):
            b.setMinimumHeight(36)
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(self.title)
        lay.addWidget(self.detail)
        lay.addSpacing(16)
        lay.addLayout(buttons)
        lay.addStretch(3)

    def set_text(self, title: str, detail: str) -> None:
        self.title.setText(title)
        self.detail.setText(detail)


class MainWindow(QMainWindow):
    sourceRequested = Signal(str)  # a camera index, a file, a folder or a URL
    pauseRequested = Signal(bool)
    camerasRefreshRequested = Signal()
    enrollRequested = Signal()
    peopleRequested = Signal()
    logRequested = Signal()
    unknownsRequested = Signal()
    settingsRequested = Signal()
    aboutRequested = Signal()
    backupRequested = Signal()  # File > Back up now
    restoreRequested = Signal(str)  # File > Restore from backup: the file picked (the controller asks to confirm)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("FDFace Attendance")
        self.resize(1280, 760)
        self._current_spec = ""
        self.cameras: list[CameraInfo] = []
        self.view = VideoView()
        self.no_source = NoSourcePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.no_source)
        self.stack.addWidget(self.view)
        self.panel = EventsPanel()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.stack)
        split.addWidget(self.panel)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([960, 300])
        self.setCentralWidget(split)
        self._build_actions()
        self._build_toolbar()
        self.source_status = QLabel()
        self.model_status = QLabel()
        self.db_status = QLabel()
        for w in (self.source_status, self.model_status, self.db_status):
            self.statusBar().addPermanentWidget(w)
        self.source_status.setText("no source")
        self.no_source.open_video.clicked.connect(self.ask_video)
        self.no_source.open_folder.clicked.connect(self.ask_folder)
        self.no_source.open_stream.clicked.connect(self.ask_stream)
        self.no_source.retry.clicked.connect(self.camerasRefreshRequested)
        # the view until a source has said what it is: "No camera found" only once a camera has failed to open
        self.view.set_message("Starting…", "")
        self.show_view()

    # -- construction ----------------------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        def act(text: str, signal=None, shortcut: str | None = None, slot=None) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot if slot is not None else (lambda *_: emit(signal)))
            return a

        self.act_video = act("Open &video file…", shortcut="Ctrl+O", slot=self.ask_video)
        self.act_folder = act("Open image &folder…", slot=self.ask_folder)
        self.act_stream = act("Open network &stream…", slot=self.ask_stream)
        self.act_quit = act("&Quit", shortcut="Ctrl+Q", slot=self.close)
        self.act_backup = act("&Back up now", self.backupRequested)
        self.act_restore = act("&Restore from backup…", slot=self.ask_restore)
        self.backup_folder = ""  # where the file picker of Restore from backup starts (the controller sets it)
        self.act_enroll = act("&Enroll a person…", self.enrollRequested, "Ctrl+E")
        self.act_people = act("&People…", self.peopleRequested, "Ctrl+P")
        self.act_log = act("Attendance &log…", self.logRequested, "Ctrl+L")
        # the reports are written from the log dialog, under its range and filters (its Excel… / Monthly PDF…)
        self.act_reports = act("&Reports: Excel, monthly PDF…", self.logRequested)
        self.act_reports.setStatusTip("Opens the attendance log: pick the range, group and station, then Excel… or "
                                      "Monthly PDF…")
        self.act_unknowns = act("&Unknown visitors…", self.unknownsRequested)
        self.act_settings = act("&Settings…", self.settingsRequested, "Ctrl+,")
        self.act_about = act("&About / diagnostics", self.aboutRequested)
        self.act_pause = QAction("Pause", self)
        self.act_pause.setCheckable(True)
        self.act_pause.setShortcut(QKeySequence("Space"))
        self.act_pause.toggled.connect(self._pause_toggled)
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.act_video, self.act_folder, self.act_stream):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_backup)
        m.addAction(self.act_restore)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&People")
        m.addAction(self.act_enroll)
        m.addAction(self.act_people)
        m = mb.addMenu("&Attendance")
        m.addAction(self.act_log)
        m.addAction(self.act_reports)
        m.addAction(self.act_unknowns)
        m = mb.addMenu("&Tools")
        m.addAction(self.act_settings)
        m = mb.addMenu("&Help")
        m.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Source")
        tb.setMovable(False)
        tb.addWidget(QLabel(" Source: "))
        self.source_box = QComboBox()
        self.source_box.setMinimumWidth(260)
        self.source_box.activated.connect(self._source_picked)
        tb.addWidget(self.source_box)
        tb.addAction(self.act_pause)
        tb.addSeparator()
        for a in (self.act_enroll, self.act_people, self.act_log, self.act_settings):
            tb.addAction(a)
        self.addToolBar(tb)
        self.set_cameras([])

    # -- setters -------------------------------------------------------------------------------------------------
    @Slot(object)
    def set_cameras(self, cameras: list[CameraInfo]) -> None:
        box = self.source_box
        box.blockSignals(True)
        box.clear()
        for c in cameras:
            box.addItem(f"Camera {c.label}", str(c.index))
        if not cameras:
            box.addItem("No camera found", "")
            box.model().item(0).setEnabled(False)
        box.insertSeparator(box.count())
        box.addItem("Video file…", PICK_VIDEO)
        box.addItem("Image folder…", PICK_FOLDER)
        box.addItem("Network stream (RTSP)…", PICK_STREAM)
        self._select_current()
        box.blockSignals(False)
        self.cameras = list(cameras)

    @Slot(str)
    def set_current_source(self, spec: str) -> None:
        self._current_spec = spec
        self._select_current()

    def _select_current(self) -> None:
        box = self.source_box
        spec = self._current_spec
        i = box.findData(spec) if spec else -1
        if i < 0 and spec:
            shown = redact_url(spec)  # a stream's password is never on screen
            label = shown if len(shown) < 60 else "…" + shown[-58:]
            box.insertItem(0, f"▶ {label}", spec)
            i = 0
        box.setCurrentIndex(max(i, 0))

    @Slot(str, str)
    def show_no_source(self, title: str, detail: str) -> None:
        self.no_source.set_text(title, detail)
        self.stack.setCurrentWidget(self.no_source)

    def show_view(self) -> None:
        self.stack.setCurrentWidget(self.view)

    @property
    def showing_no_source(self) -> bool:
        return self.stack.currentWidget() is self.no_source

    @Slot(str)
    def set_source_status(self, text: str) -> None:
        self.source_status.setText(text)

    # -- asking ----------------------------------------------------------------------------------------------------
    def _source_picked(self, index: int) -> None:
        data = self.source_box.itemData(index)
        if data == PICK_VIDEO:
            self.ask_video()
        elif data == PICK_FOLDER:
            self.ask_folder()
        elif data == PICK_STREAM:
            self.ask_stream()
        elif data:
            emit(self.sourceRequested, str(data))
        self._select_current()

    def ask_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", "", VIDEO_FILTER)
        if path:
            emit(self.sourceRequested, path)

    def ask_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open an image folder")
        if path:
            emit(self.sourceRequested, path)

    def ask_stream(self) -> None:
        url, ok = QInputDialog.getText(self, "Network camera", "Stream URL (rtsp://user:password@host:554/path):")
        if ok and url.strip():
            emit(self.sourceRequested, url.strip())

    def ask_restore(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Restore from backup", self.backup_folder,
                                              "Backups (*.db);;All files (*)")
        if path:
            emit(self.restoreRequested, path)

    def _pause_toggled(self, paused: bool) -> None:
        self.act_pause.setText("Resume" if paused else "Pause")
        emit(self.pauseRequested, paused)

    # -- closing ---------------------------------------------------------------------------------------------------
    closing = Signal()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        emit(self.closing)
        super().closeEvent(event)
