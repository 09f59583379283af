"""Frame capture: camera / video file / stream / image folder sources behind one interface, read on a thread.

No Qt here: the GUI's worker pulls frames from a :class:`CaptureReader`; the CLI can do the same.
"""

from desktop_app.capture.reader import CaptureReader, CaptureState, CaptureStatus, describe_skipped
from desktop_app.capture.sources import (
    CameraInfo,
    CameraSource,
    FolderSource,
    Frame,
    FrameSource,
    SkippedFile,
    SourceError,
    SourceKind,
    StreamSource,
    VideoFileSource,
    list_cameras,
    open_source,
    redact_url,
)
from desktop_app.vision.media import read_image  # the one guarded image reader

__all__ = [
    "CameraInfo",
    "CameraSource",
    "CaptureReader",
    "CaptureState",
    "CaptureStatus",
    "FolderSource",
    "Frame",
    "FrameSource",
    "SkippedFile",
    "SourceError",
    "SourceKind",
    "StreamSource",
    "VideoFileSource",
    "describe_skipped",
    "list_cameras",
    "open_source",
    "read_image",
    "redact_url",
]
