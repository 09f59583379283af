"""A background thread that owns one :class:`FrameSource`: opens it, reads it, reconnects it.

Live sources (cameras, streams) keep only the newest frame: a slow consumer sees fresh images, never a
backlog. Finite sources (files, folders) hand over every frame through a small bounded queue, optionally
paced at the source's frame rate. A live source that fails to open or stops delivering is retried every
``reconnect_seconds`` until it comes back or the reader is stopped; the state and a message a person can read
are published through :attr:`status` and an optional callback (called from the reader thread).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from desktop_app.capture.sources import Frame, FrameSource, SkippedFile, SourceError

log = logging.getLogger(__name__)


class CaptureState(StrEnum):
    STOPPED = "stopped"
    OPENING = "opening"
    RUNNING = "running"
    RECONNECTING = "reconnecting"  # a live source is gone; retrying in the background
    ENDED = "ended"  # a file or folder was read to its end
    FAILED = "failed"  # a file or folder cannot be read; nothing will come


@dataclass(frozen=True)
class CaptureStatus:
    state: CaptureState
    message: str
    source: str
    attempts: int = 0  # reconnection attempts since the source was last running
    skipped: tuple[SkippedFile, ...] = ()  # files of an image folder that could not be read so far, with why


def describe_skipped(skipped: tuple[SkippedFile, ...] | list[SkippedFile], at_most: int = 5) -> str:
    """'a.jpg: empty file; b.png: ...' for a status line, the first ``at_most`` and a count of the rest."""
    text = "; ".join(str(s) for s in skipped[:at_most])
    return text + (f"; and {len(skipped) - at_most} more" if len(skipped) > at_most else "")


class CaptureReader:
    """``start()``, then ``get(timeout)`` frames until ``finished``; ``stop()`` ends the thread cooperatively."""

    def __init__(
        self,
        source: FrameSource,
        reconnect_seconds: float = 2.0,
        pace: bool | None = None,
        on_status: Callable[[CaptureStatus], None] | None = None,
        queue_size: int = 2,
    ) -> None:
        self.source = source
        self.reconnect_seconds = max(0.05, float(reconnect_seconds))
        self.pace = (not source.live) if pace is None else pace  # live sources pace themselves
        self._on_status = on_status
        self._stop = threading.Event()
        self._latest: Frame | None = None  # live: the newest frame, replaced by each read
        self._latest_cv = threading.Condition()
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=max(1, queue_size))
        self._status = CaptureStatus(CaptureState.STOPPED, "", source.description)
        self._status_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.frames_read = 0

    # -- control (any thread) --------------------------------------------------------------------------
    def start(self) -> CaptureReader:
        if self._thread is not None:
            raise RuntimeError("reader already started")
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"capture:{self.source.description}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to finish and wait; True when it has. The source is closed by its own thread."""
        self._stop.set()
        with self._latest_cv:
            self._latest_cv.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            return not t.is_alive()
        return True

    @property
    def status(self) -> CaptureStatus:
        with self._status_lock:
            return self._status

    @property
    def finished(self) -> bool:
        """No frame will come any more (end of a file, a failed file, or stopped), and none is waiting."""
        done = self.status.state in (CaptureState.ENDED, CaptureState.FAILED, CaptureState.STOPPED)
        return done and self._queue.empty() and self._latest is None and self._thread is not None

    def get(self, timeout: float = 0.1) -> Frame | None:
        """The next frame, or None if none arrived within ``timeout`` seconds."""
        if self.source.live:
            with self._latest_cv:
                if self._latest is None:
                    self._latest_cv.wait(timeout)
                f, self._latest = self._latest, None
                return f
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- the reader thread -----------------------------------------------------------------------------
    def _set_status(self, state: CaptureState, message: str = "", attempts: int = 0) -> None:
        st = CaptureStatus(state, message, self.source.description, attempts, self.source.skipped)
        with self._status_lock:
            changed = (self._status.state, self._status.message) != (st.state, st.message)
            self._status = st
        if changed:
            # a live source that went away is said once on the console (the retries repeat the same message)
            level = logging.WARNING if state is CaptureState.RECONNECTING else logging.INFO
            log.log(level, "capture %s: %s (%s)", st.source, st.state.value, st.message)
            if self._on_status is not None:
                try:
                    self._on_status(st)
                except Exception:  # a broken listener must not kill capture
                    log.exception("capture status listener failed")

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never die silently: say what happened
            log.exception("capture thread crashed")
            self._set_status(CaptureState.FAILED, f"capture stopped after an unexpected error: {exc}")
        finally:
            try:
                self.source.close()
            except Exception:
                log.exception("closing %s failed", self.source.description)
            if self._status.state not in (CaptureState.ENDED, CaptureState.FAILED):
                self._set_status(CaptureState.STOPPED, "")

    @staticmethod
    def _end_message(src: FrameSource, delivered: int) -> tuple[CaptureState, str]:
        """ENDED, or FAILED when not one file could be read; the skipped files are named either way."""
        skipped = src.skipped
        if not skipped:
            return CaptureState.ENDED, f"end of {src.description}"
        if delivered == 0:
            return CaptureState.FAILED, (f"none of the {len(skipped)} image(s) in {src.description} could be read: "
                                         f"{describe_skipped(skipped)}")
        return CaptureState.ENDED, (f"end of {src.description}: {delivered} image(s) read, {len(skipped)} skipped "
                                    f"({describe_skipped(skipped)})")

    def _loop(self) -> None:
        src = self.source
        attempts = 0
        index = 0
        while not self._stop.is_set():
            self._set_status(
                CaptureState.OPENING if attempts == 0 else CaptureState.RECONNECTING,
                self._status.message if attempts else f"opening {src.description}",
                attempts,
            )
            try:
                src.open()
            except SourceError as exc:
                if not src.live:
                    self._set_status(CaptureState.FAILED, str(exc))
                    return
                attempts += 1
                said = str(exc).rstrip(".")
                self._set_status(
                    CaptureState.RECONNECTING, f"{said}. Retrying every {self.reconnect_seconds:g} s.", attempts
                )
                self._stop.wait(self.reconnect_seconds)
                continue
            self._set_status(CaptureState.RUNNING, f"{src.description} running", 0)
            attempts = 0
            period = 1.0 / src.fps if (self.pace and src.fps) else 0.0
            next_due = time.monotonic()
            delivered = skips = 0
            while not self._stop.is_set():
                img = src.read()
                if len(src.skipped) > skips:  # say which file was passed over and why, as it happens
                    new = src.skipped[skips:]
                    skips = len(src.skipped)
                    if img is not None:
                        self._set_status(CaptureState.RUNNING, f"skipped {describe_skipped(new)}")
                if img is None:
                    break
                delivered += 1
                now = time.monotonic()
                pos = src.position_s
                frame = Frame(img, index, pos if pos is not None else now - self._t0, time.time(), src.origin())
                index += 1
                self.frames_read += 1
                if src.live:
                    with self._latest_cv:
                        self._latest = frame
                        self._latest_cv.notify_all()
                else:
                    if period:
                        next_due += period
                        delay = next_due - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        else:
                            next_due = time.monotonic()  # behind: do not try to catch up in a burst
                    while not self._stop.is_set():
                        try:
                            self._queue.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            src.close()
            if self._stop.is_set():
                return
            if not src.live:
                self._set_status(*self._end_message(src, delivered))
                return
            attempts = 1
            self._set_status(
                CaptureState.RECONNECTING,
                f"{src.description} stopped sending frames. Retrying every {self.reconnect_seconds:g} s.",
                attempts,
            )
            self._stop.wait(self.reconnect_seconds)
