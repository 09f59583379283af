"""Frame capture: camera / video file / stream / image folder sources behind one interface, read on a thread.

No Qt here: the GUI's worker pulls frames from a :class:`CaptureReader`; the CLI can do the same.
"""

from desktop_app.capture.reader import CaptureReader, CaptureState, CaptureStatus
from desktop_app.capture.sources import (
    CameraInfo,
    CameraSource,
    FolderSource,
    Frame,
    FrameSource,
    SourceError,
    SourceKind,
    StreamSource,
    VideoFileSource,
    list_cameras,
    open_source,
    read_image,
    redact_url,
)

__all__ = [
    "CameraInfo",
    "CameraSource",
    "CaptureReader",
    "CaptureState",
    "CaptureStatus",
    "FolderSource",
    "Frame",
    "FrameSource",
    "SourceError",
    "SourceKind",
    "StreamSource",
    "VideoFileSource",
    "list_cameras",
    "open_source",
    "read_image",
    "redact_url",
]
