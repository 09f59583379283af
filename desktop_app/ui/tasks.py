"""A worker thread for database work and other short blocking jobs (saving an enrollment, deleting a person,
listing cameras), so the GUI thread only paints and reacts. Jobs run one at a time, in order; each one's result or
error comes back as a signal on the GUI thread."""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.ui.qtcompat import emit

log = logging.getLogger(__name__)

# the core's refusals meant for people (a damaged backup, a database in use, a file that cannot be written): logged
# as one line; anything else is a bug and keeps its traceback in the log
EXPECTED_ERRORS = (
    ("desktop_app.gallery.backup", "BackupError"),
    ("desktop_app.storage.errors", "StoreError"),
    ("desktop_app.attendance.xlsx", "XlsxError"),
    ("desktop_app.ui.report_pdf", "PdfReportError"),
    ("desktop_app.config", "ConfigError"),
    ("desktop_app.gallery.enroll", "EnrollmentError"),
    ("desktop_app.vision.media", "MediaError"),
    ("desktop_app.capture.sources", "SourceError"),
)


def is_expected(exc: BaseException) -> bool:
    """True for a refusal the core words for people. Only modules already imported are looked at: an exception of
    a module that was never imported cannot have been raised."""
    for module, name in EXPECTED_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


class _Runner(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)

    @Slot(int, object)
    def run(self, job_id: int, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Exception as exc:  # reported to whoever asked; the message is the core's, meant for people
            expected = is_expected(exc)
            log.warning("background job %d refused: %s" if expected else "background job %d failed: %s", job_id,
                        " ".join(str(exc).split()) if expected else exc, exc_info=not expected)
            emit(self.failed, job_id, str(exc) or type(exc).__name__)
            return
        emit(self.done, job_id, result)


class TaskQueue(QObject):
    """``submit(fn, on_done, on_error)``: ``fn`` runs on the worker thread; the callbacks on the GUI thread."""

    _request = Signal(int, object)
    idle = Signal()

    def __init__(self, name: str = "tasks", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner()
        self._runner.moveToThread(self._thread)
        self._request.connect(self._runner.run)
        self._runner.done.connect(self._done)
        self._runner.failed.connect(self._failed)
        self._callbacks: dict[int, tuple[Callable[[Any], None] | None, Callable[[str], None] | None]] = {}
        self._ids = itertools.count(1)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._callbacks)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None) -> int:
        job = next(self._ids)
        self._callbacks[job] = (on_done, on_error)
        emit(self._request, job, fn)
        return job

    def _done(self, job: int, result: Any) -> None:
        on_done, _ = self._callbacks.pop(job, (None, None))
        if on_done is not None:
            on_done(result)
        if not self._callbacks:
            emit(self.idle)

    def _failed(self, job: int, message: str) -> None:
        _, on_error = self._callbacks.pop(job, (None, None))
        if on_error is not None:
            on_error(message)
        if not self._callbacks:
            emit(self.idle)

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Finish the queued jobs, then end the thread (cooperatively: the quit is queued behind them)."""
        if not self._thread.isRunning():
            return True
        emit(self._request, 0, lambda: QThread.currentThread().quit())
        return self._thread.wait(timeout_ms)
