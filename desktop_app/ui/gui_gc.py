"""Python's cyclic garbage collector runs on whichever thread happens to allocate when a threshold is passed. A Qt
object of the GUI thread that sits in a reference cycle (a window whose slots are lambdas capturing it, a dialog
and its controller) is then destroyed on the vision or the database thread. Qt cannot stop a timer from another
thread ("QObject::~QObject: Timers cannot be stopped from another thread"), so the dead object's active timers stay
registered with the GUI thread's event loop, which later fires one on freed memory: a segmentation fault in
``QTimerInfoList::activateTimers``. The app lost its window this way at random moments, depending on which thread
allocated last.

:func:`collect_on_gui_thread` turns the automatic collector off and runs it from a timer on the GUI thread
instead, with the interpreter's own thresholds (the approach of pyqtgraph's ``GarbageCollector``): every cycle is
then freed on the GUI thread, where Qt objects of that thread may be destroyed. A worker thread's garbage waits for
the next tick (half a second) instead of being collected where it was made.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Collects each generation when its count passes the interpreter's threshold, as the automatic collector
    would, but only here. Parented to the application, so it lives as long as the event loop that drives it."""

    def __init__(self, app: QCoreApplication, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(app)
        self.setObjectName("gui_gc")
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self.resume()

    def check(self) -> None:
        """Collect the oldest generation whose count is past its threshold, once the youngest is (as CPython's
        automatic collector decides, without its extra rule that delays full collections on large heaps)."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if not thresholds[0] or counts[0] <= thresholds[0]:
            return
        gen = next(g for g in (2, 1, 0) if counts[g] > thresholds[g])
        gc.collect(gen)

    def resume(self) -> None:
        gc.disable()
        self._timer.start()

    def release(self, threads_stopped: bool = True) -> None:
        """The event loop has ended and the app's threads have stopped (``create_app`` connects it to
        ``aboutToQuit`` after the controller's shutdown): collect what is left here, then give collection back.
        ``threads_stopped=False``: one of them still runs (a call that hangs; the process ends soon, see
        ``controller.leave``), so the automatic collector stays off rather than run on that thread."""
        self._timer.stop()
        gc.collect()
        if threads_stopped:
            gc.enable()


def collect_on_gui_thread(interval_ms: int = INTERVAL_MS) -> GuiThreadCollector:
    """Install the collector once per application (later calls return it). Call on the GUI thread, after the
    QApplication exists and before any worker thread starts."""
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("collect_on_gui_thread needs a QApplication")
    if QThread.currentThread() is not app.thread():
        raise RuntimeError("collect_on_gui_thread must be called on the GUI thread")
    existing = app.findChild(GuiThreadCollector, "gui_gc")
    if existing is not None:
        existing.resume()  # after a release (a new window on an application whose loop once ended)
        return existing
    return GuiThreadCollector(app, interval_ms)
