"""The one worker that owns capture and inference. It lives on its own QThread and talks to the GUI only through
typed signals carrying copies (a QImage detached from the frame buffer, frozen result records); it stops
cooperatively: ``shutdown`` is queued to it and the thread's event loop then quits (never ``terminate``).

The work itself is the headless core's: :class:`desktop_app.capture.CaptureReader` reads the source on its own
thread, and the :class:`desktop_app.attendance.session.AttendanceSession` (the same one ``fdface run`` drives)
runs the pipeline, names faces, throttles sightings and hands them to its event writer. This worker builds the
pipeline on its thread and feeds the session frames from it; nothing here decides who someone is or what is
recorded.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from desktop_app.attendance.session import AttendanceSession
from desktop_app.capture import (
    CaptureReader,
    CaptureState,
    CaptureStatus,
    FrameSource,
    SourceError,
    SourceKind,
    open_source,
)
from desktop_app.config import Settings
from desktop_app.manifest import ModelEntry
from desktop_app.ui.images import bgr_to_qimage
from desktop_app.ui.qtcompat import emit, emitter
from desktop_app.vision.types import Face, FrameResult

log = logging.getLogger(__name__)

FPS_WINDOW = 30  # frames over which the displayed FPS is measured
MAX_PACKETS_IN_FLIGHT = 2  # frames queued for the GUI beyond this are not painted (never queued without bound)


@dataclass(frozen=True)
class FramePacket:
    """One processed frame for the GUI. ``image`` is a detached QImage; ``frame`` the BGR array (not shared with
    the worker any more: the reader allocates a new one per frame) for enrollment captures; ``result`` the
    pipeline's frozen result."""

    image: QImage
    frame: np.ndarray
    result: FrameResult
    index: int
    position_s: float
    fps: float
    source: str
    wall_time: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def faces(self) -> tuple[Face, ...]:
        return self.result.faces


class VisionWorker(QObject):
    """Capture + inference on one thread. Create it, ``moveToThread``, connect, start the thread; then drive it
    with its slots through queued signals or ``QMetaObject.invokeMethod``."""

    frameReady = Signal(object)  # FramePacket
    statusChanged = Signal(object)  # CaptureStatus
    sourceFinished = Signal(object)  # CaptureStatus: ENDED or FAILED (a file/folder is done; nothing will come)
    stillAnalyzed = Signal(int, object, object)  # request id, BGR image, FrameResult
    pipelineReady = Signal(str)  # notice ('' when recognition is available)
    error = Signal(str)

    def __init__(self, settings: Settings, embedder_entry: ModelEntry | None = None, pace: bool | None = None,
                 pipeline_factory: Callable[[Settings, ModelEntry | None], object] | None = None,
                 source_factory: Callable[[str, int, int], FrameSource] | None = None,
                 session: AttendanceSession | None = None) -> None:
        super().__init__()
        self._source_factory = source_factory or open_source
        self._settings = settings
        self._entry = embedder_entry
        self._pace = pace
        self._factory = pipeline_factory or _default_pipeline
        self._pipeline = None
        self._reader: CaptureReader | None = None
        self._timer: QTimer | None = None
        self._paused = False
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        # frames go through the session on this thread only; its store is attached from the GUI thread
        self.session = session if session is not None else AttendanceSession(settings)
        self.frames_processed = 0
        # packets emitted (written by this thread only) and taken by the GUI (written by the GUI thread only):
        # their difference is what waits to be painted, without a lock and without lost updates
        self.packets_emitted = 0
        self.packets_taken = 0
        self.packets_dropped = 0
        self._stopping = False

    # -- lifecycle (worker thread) ----------------------------------------------------------------------------
    @Slot()
    def initialize(self) -> None:
        """Connected to ``QThread.started``: objects that must live on this thread are made here."""
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)
        self._build_pipeline()

    def _build_pipeline(self) -> None:
        try:
            self._pipeline = self._factory(self._settings, self._entry)
            self.session.pipeline = self._pipeline
            notice = getattr(self._pipeline, "notice", None) or ""
        except Exception as exc:  # no detector: nothing can run, say so
            log.exception("cannot build the pipeline")
            self._pipeline = self.session.pipeline = None
            notice = f"the face detector could not start: {exc}"
            emit(self.error, notice)
        emit(self.pipelineReady, notice)

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """Thresholds apply from the next frame; detector, model or thread changes rebuild the pipeline here."""
        old, self._settings = self._settings, settings
        rebuild = (old.detector != settings.detector or old.performance != settings.performance
                   or old.recognition.model != settings.recognition.model
                   or old.recognition.vote_frames != settings.recognition.vote_frames
                   or old.recognition.recheck_frames != settings.recognition.recheck_frames)
        if rebuild or self._pipeline is None:
            self._build_pipeline()
        else:
            self._pipeline.settings = settings

    def packet_taken(self) -> None:
        """GUI thread: a packet was shown. Keeps the queue of frames to paint short when painting is slower than
        inference (recognition and attendance still see every frame)."""
        self.packets_taken += 1

    def request_stop(self) -> None:
        """Any thread: stop reading now; the owner then quits the thread's event loop and waits for it."""
        self._stopping = True
        r = self._reader
        if r is not None:
            r.stop()

    @Slot()
    def shutdown(self) -> None:
        """Queued last: stop reading, drop this thread's timer here (it cannot be stopped from another thread),
        and end the thread's event loop."""
        self._stopping = True
        self._close_reader()
        if self._timer is not None:
            self._timer.stop()
            self._timer.setParent(None)
            self._timer = None
        self._pipeline = self.session.pipeline = None
        QThread.currentThread().quit()

    # -- sources ----------------------------------------------------------------------------------------------
    @Slot(str)
    def open_source(self, spec: str) -> None:
        self._close_reader()
        c = self._settings.capture
        try:
            source = self._source_factory(spec, c.width, c.height)
        except SourceError as exc:
            st = CaptureStatus(CaptureState.FAILED, str(exc), spec)
            emit(self.statusChanged, st)
            emit(self.sourceFinished, st)
            return
        self._reader = CaptureReader(source, reconnect_seconds=c.reconnect_seconds, pace=self._pace,
                                     on_status=emitter(self.statusChanged))
        self.session.reset()
        self._times.clear()
        self._reader.start()
        if self._timer is not None and not self._paused:
            self._timer.start()

    @Slot()
    def close_source(self) -> None:
        self._close_reader()

    def _close_reader(self) -> None:
        r, self._reader = self._reader, None
        if self._timer is not None:
            self._timer.stop()
        if r is not None:
            r.stop()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if self._timer is None:
            return
        if paused:
            self._timer.stop()
        elif self._reader is not None:
            self._times.clear()
            self._timer.start()

    @Slot()
    def forget_identities(self) -> None:
        """The gallery changed (an enrolment, an edit, an erasure, here or on another kiosk): every track votes
        afresh, so no face keeps a name (or a green box) the gallery no longer gives."""
        self.session.reset()

    @Slot()
    def step(self) -> None:
        """While paused: read, analyse and show the next frame (choosing a frame of a video to enrol from)."""
        if not self._paused:
            return
        deadline = time.monotonic() + 1.0  # a paced file has its next frame queued already; a slow one gets 1 s
        while self._reader is not None and not self._stopping and time.monotonic() < deadline:
            before = self.frames_processed
            self._tick()
            if self.frames_processed > before:
                return

    # -- stills (enrollment captures and photo imports) ---------------------------------------------------------
    @Slot(int, object)
    def analyze_still(self, request_id: int, image: object) -> None:
        """Every face of one image with quality and embedding, for enrollment. Runs between frames."""
        if self._pipeline is None:
            emit(self.stillAnalyzed, request_id, image, FrameResult(error="the face detector is not available"))
            return
        emit(self.stillAnalyzed, request_id, image, self._pipeline.analyze_still(image))

    # -- the loop -----------------------------------------------------------------------------------------------
    @Slot()
    def _tick(self) -> None:
        reader = self._reader
        if reader is None or self._pipeline is None or self._stopping:
            if self._timer is not None:
                self._timer.stop()
            return
        frame = reader.get(timeout=0.02)
        if frame is None:
            if reader.finished:
                self._close_reader()
                self.session.end_tracks()  # the faces of the last frames have left: unknown visitors are logged
                emit(self.sourceFinished, reader.status)
            return
        # a folder's unrelated photos: no tracking across them, each face named on its own
        result = self.session.process(frame.image, still=reader.source.kind is SourceKind.FOLDER,
                                      wall_time=frame.wall_time).result
        now = time.monotonic()
        self._times.append(now)
        fps = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else 0.0
        self.frames_processed += 1
        packet = FramePacket(
            image=bgr_to_qimage(frame.image), frame=frame.image, result=result, index=frame.index,
            position_s=frame.position_s, fps=fps, source=frame.origin, wall_time=frame.wall_time,
            timings_ms=dict(result.timings_ms),
        )
        if self.packets_emitted - self.packets_taken < MAX_PACKETS_IN_FLIGHT:  # else drop the picture only
            self.packets_emitted += 1
            emit(self.frameReady, packet)
        else:
            self.packets_dropped += 1


def _default_pipeline(settings: Settings, entry: ModelEntry | None):
    from desktop_app.vision.pipeline import Pipeline

    return Pipeline(settings, embedder_entry=entry)
