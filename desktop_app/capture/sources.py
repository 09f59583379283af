"""Frame sources behind one interface: camera by index, video file, network stream (RTSP/HTTP), image folder.

A source is opened, read frame by frame and closed, all from one thread (``CaptureReader`` owns that thread).
``read`` returns a BGR uint8 [H, W, 3] image, or ``None`` when no frame came: the end of a file or folder, or
a live source that stopped delivering (the reader then reconnects). Errors a person can act on are raised as
:class:`SourceError` with a message that says what to do. No Qt here.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

# the one set of media suffixes and the one guarded image reader live in vision.media (re-exported here)
from desktop_app.vision.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, MediaError, read_image  # noqa: F401

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


_cv_log_lock = threading.Lock()
_cv_quiet_depth = 0
_cv_saved_level: int | None = None


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own log silenced while devices are probed and opened: a missing camera otherwise prints V4L2
    warnings at every attempt (every retry of a reconnecting reader). The app says what is wrong in one line of its
    own instead. Left alone when ``OPENCV_LOG_LEVEL`` is set: then the user asked to see OpenCV's messages."""
    global _cv_quiet_depth, _cv_saved_level
    log_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if os.environ.get("OPENCV_LOG_LEVEL") or log_api is None:
        yield
        return
    with _cv_log_lock:
        if _cv_quiet_depth == 0:
            _cv_saved_level = log_api.getLogLevel()
            log_api.setLogLevel(log_api.LOG_LEVEL_SILENT)
        _cv_quiet_depth += 1
    try:
        yield
    finally:
        with _cv_log_lock:
            _cv_quiet_depth -= 1
            if _cv_quiet_depth == 0 and _cv_saved_level is not None:
                log_api.setLogLevel(_cv_saved_level)


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is meant for the person at the screen."""


class SourceKind(StrEnum):
    CAMERA = "camera"
    VIDEO = "video"
    STREAM = "stream"
    FOLDER = "folder"


@dataclass(frozen=True)
class Frame:
    """One captured image. ``image`` uint8 BGR [H, W, 3], owned by the receiver (never reused by the source).
    ``index`` counts frames of this source from 0; ``position_s`` is the time in the file (video), else the
    seconds since the reader started; ``wall_time`` is ``time.time()`` at capture; ``origin`` names the file
    for folder images, else the source."""

    image: np.ndarray
    index: int
    position_s: float
    wall_time: float
    origin: str


class FrameSource(ABC):
    """Open, read, close. ``live`` sources (cameras, streams) drop stale frames and reconnect when they stop;
    finite ones (files, folders) deliver every frame once and then end."""

    kind: SourceKind
    live: bool = False

    @property
    @abstractmethod
    def description(self) -> str:
        """Short human-readable name: 'camera 0', the file name, the URL without credentials."""

    @property
    def fps(self) -> float | None:
        """Nominal frames per second (a file's rate, a camera's setting), None when unknown."""
        return None

    @property
    def position_s(self) -> float | None:
        """Where the last read frame sits in the media (seconds), None for live sources."""
        return None

    @abstractmethod
    def open(self) -> None:
        """Raise :class:`SourceError` when the source cannot be used now."""

    @abstractmethod
    def read(self) -> np.ndarray | None: ...

    def close(self) -> None:  # noqa: B027 - optional for sources holding nothing
        pass

    def origin(self) -> str:
        return self.description

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        """Files of this source that could not be read, in the order met (image folders; empty otherwise)."""
        return ()


@dataclass(frozen=True)
class SkippedFile:
    """A file a source passed over: ``reason`` in the user's words, without the name ("empty file", ...)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


class _CvCaptureSource(FrameSource):
    """Shared code of the sources backed by ``cv2.VideoCapture``."""

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None

    def _make_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def _open_failed(self) -> SourceError:
        return SourceError(f"cannot open {self.description}")

    def open(self) -> None:
        self.close()
        with quiet_opencv():  # a missing device is said once, by _open_failed, not by OpenCV's warnings
            cap = self._make_capture()
            opened = cap.isOpened()
            if not opened:
                cap.release()
        if not opened:
            raise self._open_failed()
        self._cap = cap
        self._after_open(cap)

    def _after_open(self, cap: cv2.VideoCapture) -> None:
        pass

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        try:
            ok, img = self._cap.read()
        except cv2.error as exc:  # a driver error on an unplugged device
            log.warning("%s: read failed: %s", self.description, exc)
            return None
        if not ok or img is None or img.size == 0:
            return None
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        return img

    @property
    def fps(self) -> float | None:
        if self._cap is None:
            return None
        f = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return f if 0.5 <= f <= 1000 else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_CvCaptureSource):
    kind = SourceKind.CAMERA
    live = True

    def __init__(self, index: int, width: int = 0, height: int = 0) -> None:
        super().__init__()
        self.index = int(index)
        self.width, self.height = int(width), int(height)

    @property
    def description(self) -> str:
        return f"camera {self.index}"

    def _make_capture(self) -> cv2.VideoCapture:
        if sys.platform.startswith("linux"):
            return cv2.VideoCapture(self.index, cv2.CAP_V4L2)
        if sys.platform == "win32":
            return cv2.VideoCapture(self.index, cv2.CAP_DSHOW)
        return cv2.VideoCapture(self.index)

    def _open_failed(self) -> SourceError:
        return SourceError(
            f"camera {self.index} is not available: it is not connected or another program is using it. "
            "Plug it in, pick another camera, or open a video file or an image folder."
        )

    def _after_open(self, cap: cv2.VideoCapture) -> None:
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the freshest frame, not a queue of old ones


class VideoFileSource(_CvCaptureSource):
    kind = SourceKind.VIDEO
    live = False

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.loop = loop
        self._pos = 0.0

    @property
    def description(self) -> str:
        return self.path.name

    @property
    def position_s(self) -> float | None:
        return self._pos

    @property
    def frame_count(self) -> int:
        return int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self._cap is not None else 0

    def _make_capture(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        return cv2.VideoCapture(str(self.path))

    def _open_failed(self) -> SourceError:
        return SourceError(f"cannot decode {self.path.name}: not a video OpenCV can read (try MP4/H.264 or AVI)")

    def read(self) -> np.ndarray | None:
        img = super().read()
        if img is None and self.loop and self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            img = super().read()
        if img is not None and self._cap is not None:
            self._pos = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
        return img


class StreamSource(_CvCaptureSource):
    kind = SourceKind.STREAM
    live = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    @property
    def description(self) -> str:
        return redact_url(self.url)

    def _make_capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)

    def _open_failed(self) -> SourceError:
        return SourceError(f"cannot connect to {self.description}: check the address, the network and the camera")


class FolderSource(FrameSource):
    """The images of a folder (or one image file) in name order. Each file goes through the guarded reader
    (``vision.media.read_image``); an unreadable one is skipped, logged and listed in :attr:`skipped` with the
    reason, and the next one is read."""

    kind = SourceKind.FOLDER
    live = False

    def __init__(self, path: str | Path, fps: float = 1.0) -> None:
        self.path = Path(path)
        self._fps = fps
        self._files: list[Path] = []
        self._i = 0
        self._current = ""
        self._skipped: list[SkippedFile] = []

    @property
    def description(self) -> str:
        return self.path.name or str(self.path)

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def files(self) -> list[Path]:
        return list(self._files)

    def open(self) -> None:
        if self.path.is_file():
            files = [self.path]
        elif self.path.is_dir():
            files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            raise SourceError(f"image folder not found: {self.path}")
        if not files:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {self.path}")
        self._files, self._i, self._skipped = files, 0, []

    def read(self) -> np.ndarray | None:
        while self._i < len(self._files):
            p = self._files[self._i]
            self._i += 1
            try:
                img = read_image(p)
            except MediaError as exc:
                skip = SkippedFile(p, getattr(exc, "reason", str(exc)))
                self._skipped.append(skip)
                log.info("skipped %s", skip)
                continue
            self._current = str(p)
            return img
        return None

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        return tuple(self._skipped)

    @property
    def position_s(self) -> float | None:
        return float(max(self._i - 1, 0))

    def origin(self) -> str:
        return self._current or self.description


def redact_url(url: str) -> str:
    """The URL without user:password, safe to show and log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def open_source(spec: str | int, width: int = 0, height: int = 0, loop: bool = False) -> FrameSource:
    """A source from a settings string: a camera index ('0'), a stream URL, an image folder, an image or a video.

    The source is not opened yet (the reader thread opens it); a spec that cannot be anything raises
    :class:`SourceError`.
    """
    s = str(spec).strip()
    if not s:
        raise SourceError("no source given: choose a camera, a video file, a stream URL or an image folder")
    if s.isdigit():
        return CameraSource(int(s), width, height)
    if s.lower().startswith(STREAM_SCHEMES):
        return StreamSource(s)
    p = Path(s).expanduser()
    if p.is_dir():
        return FolderSource(p)
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return FolderSource(p)
        return VideoFileSource(p, loop=loop)
    raise SourceError(f"{s!r} is not a camera index, a stream URL, or an existing file or folder")


@dataclass(frozen=True)
class CameraInfo:
    index: int
    name: str

    @property
    def label(self) -> str:
        return f"{self.index}: {self.name}" if self.name else f"camera {self.index}"


def list_cameras(max_probe: int = 4) -> list[CameraInfo]:
    """Cameras that are present now. On Linux from /sys (no device is opened, so this is fast and does not
    disturb a camera in use); elsewhere by opening indices 0..max_probe-1."""
    if sys.platform.startswith("linux"):
        return _linux_cameras(Path("/sys/class/video4linux"))
    found = []
    with quiet_opencv():  # probing absent indices makes OpenCV warn about each one
        for i in range(max_probe):
            cap = cv2.VideoCapture(i)
            try:
                if cap.isOpened():
                    found.append(CameraInfo(i, ""))
            finally:
                cap.release()
    return found


def _linux_cameras(root: Path) -> list[CameraInfo]:
    out: list[CameraInfo] = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not d.name.startswith("video") or not d.name[5:].isdigit():
            continue
        # a UVC camera exposes a metadata node beside the capture node; the capture node has index 0
        idx_file = d / "index"
        try:
            if idx_file.exists() and idx_file.read_text().strip() not in ("", "0"):
                continue
            name = (d / "name").read_text().strip() if (d / "name").exists() else ""
        except OSError:
            continue
        out.append(CameraInfo(int(d.name[5:]), name))
    return sorted(out, key=lambda c: c.index)
