"""One attendance session: frames in, attendance events out. The GUI's vision worker and ``fdface run`` both drive
one of these, so the decisions between "a face was named" and "an event is written" are made once:

- the pipeline call (tracking and voting for a stream, each photo on its own for a folder) with the gallery's
  decision at the thresholds of the moment;
- the throttle: a person seen continuously is submitted at most once per :data:`SIGHTING_INTERVAL_S`;
- the snapshot kept with an event (:func:`snapshot_jpeg`: the aligned face crop the decision was made on);
- the periodic catch-up with other kiosks on a shared database (:meth:`AttendanceSession.maybe_refresh`);
- the unknown-visitor log: which tracks were unknown visitors (:class:`~desktop_app.attendance.unknowns.UnknownTracks`,
  fed here every frame with the gallery's decisions), written by the same writer, never when the setting is off;
- the one :class:`EventWriter` thread (with its spool) that writes events and reports them after commit.

Threads: :meth:`process` is called by the driver's frame thread only (the pipeline's tracks are not shared);
:meth:`refresh` may run on another thread (it only swaps the gallery's index, which searches are safe against, and
sets a flag the frame thread acts on); the writer thread is the only one that writes events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from desktop_app.attendance.recorder import AttendanceRecorder, EventWriter, RecordedEvent, Sighting, UnknownSighting
from desktop_app.attendance.unknowns import UnknownTracks, UnknownVisit, encode_snapshot
from desktop_app.config import Settings
from desktop_app.gallery.service import REFRESH_SECONDS
from desktop_app.vision.media import encode_jpeg
from desktop_app.vision.types import FrameResult

log = logging.getLogger(__name__)

SIGHTING_INTERVAL_S = 1.0  # a person seen continuously is submitted to the writer at most this often
SNAPSHOT_JPEG_QUALITY = 90


def snapshot_jpeg(crop: np.ndarray | None) -> bytes | None:
    """The snapshot kept with an event: the aligned 112x112 face crop the recognizer was given, as JPEG.
    Why this one (and not a padded crop of the frame): it is exactly what the decision was made on, it has the same
    small fixed size whatever the camera's resolution (a few kB per event), and it looks like the enrolled faces it
    is compared with in the GUI and the exports (README, "Attendance snapshots")."""
    return encode_jpeg(crop, SNAPSHOT_JPEG_QUALITY)


@dataclass(frozen=True)
class Seen:
    """A voted identity in one frame that was submitted to the writer (after the throttle)."""

    person_id: int
    name: str
    similarity: float
    track_id: int
    wall_time: float
    crop: np.ndarray | None = None  # aligned 112x112 BGR


@dataclass(frozen=True)
class Processed:
    """What one frame gave: the pipeline's result (for display) and the sightings submitted for attendance."""

    result: FrameResult
    seen: tuple[Seen, ...] = field(default_factory=tuple)


class AttendanceSession:
    """Headless: owns the matcher, throttle, snapshot policy, gallery refresh and event writer; the driver owns the
    frame source and the pipeline's construction (``pipeline`` may be set or replaced later, from the frame thread).

    ``on_event`` / ``on_error`` / ``on_status`` / ``on_unknown`` are the writer's callbacks (called on the writer
    thread; ``on_unknown`` gets the id of each unknown visitor logged)."""

    def __init__(self, settings: Settings, pipeline: Any = None, *,
                 on_event: Callable[[RecordedEvent], None] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 on_status: Callable[[str], None] | None = None,
                 on_unknown: Callable[[int], None] | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.on_event, self.on_error, self.on_status = on_event, on_error, on_status
        self.on_unknown = on_unknown
        self.refresh_seconds = float(refresh_seconds)
        self.gallery: Any = None  # a Gallery (store + index); None: faces are found but nobody is named
        self.engine: Engine | None = None
        self.writer: EventWriter | None = None
        self.snapshots: dict[int, np.ndarray] = {}  # person -> crop of the latest submitted sighting (the GUI shows it)
        self._last_sighting: dict[int, float] = {}  # person -> wall time of the last submitted sighting
        self._forget = False  # set by refresh/forget (any thread), acted on by the frame thread
        self._store_lock = threading.Lock()  # writer and gallery are swapped and read as one pair
        self.unknowns = UnknownTracks(settings.unknowns.min_seconds)  # frame thread only
        self._unknowns_tracker: Any = None  # the pipeline's tracker the tracks above belong to
        self._drop_unknowns = False  # set by attach: tracks followed for another database are not logged in this one
        self._next_refresh = time.monotonic() + self.refresh_seconds

    # -- the store ---------------------------------------------------------------------------------------------
    def attach(self, engine: Engine, gallery: Any = None, spool: Path | None = None,
               close_timeout: float | None = None,
               close_old: Callable[[EventWriter], None] | None = None) -> EventWriter:
        """Record into this database from now on (``gallery``: its people are named; None: no recognition model).
        A previous writer first writes everything it holds (up to ``close_timeout``; what still waits then is
        kept in its spool); ``close_old`` closes it elsewhere instead (a GUI: off its own thread). The recorder is
        built here, so a bad station name is a StoreError before any frame."""
        recorder = AttendanceRecorder(engine, self.settings.attendance, unknowns=self.settings.unknowns)
        old = self.writer
        new = EventWriter(recorder, on_event=self.on_event, on_error=self.on_error, on_status=self.on_status,
                          spool=spool, on_unknown=self.on_unknown)
        # writer and gallery change together (the frame thread takes both under the same lock): a face named from
        # one database is recorded in that database, never in another under the same person id; the new writer
        # is in place before the old one closes, and a sighting handed to the old one after its close goes to
        # its database's spool (EventWriter.submit)
        with self._store_lock:
            self.writer, self.engine, self.gallery = new, engine, gallery
            self._forget = True  # tracks named from the previous gallery are named afresh
            self._drop_unknowns = True
        listeners = getattr(gallery, "erasure_listeners", None)
        if listeners is not None and new.forget_person not in listeners:
            listeners.append(new.forget_person)  # an erased person's waiting sightings go with them
        if old is not None:
            (close_old or (lambda w: w.close(timeout=close_timeout)))(old)
        self._next_refresh = time.monotonic() + self.refresh_seconds
        return self.writer

    def detach_gallery(self) -> None:
        """No gallery to name faces with (the database could not be opened); the writer, if any, stays."""
        self.gallery = None

    def apply_settings(self, settings: Settings) -> None:
        """Thresholds apply from the next frame; changed attendance rules from the next sighting written."""
        old, self.settings = self.settings, settings
        self.unknowns.min_seconds = settings.unknowns.min_seconds
        w = self.writer
        if w is not None and self.engine is not None and (old.attendance, old.unknowns) != (settings.attendance,
                                                                                             settings.unknowns):
            w.recorder = AttendanceRecorder(self.engine, settings.attendance, unknowns=settings.unknowns)

    # -- frames (the driver's frame thread) ------------------------------------------------------------------------
    def match(self, embeddings: np.ndarray) -> list:
        """The gallery's decision at the thresholds of the moment."""
        return self._decide(self.gallery, embeddings)

    def _decide(self, gallery: Any, embeddings: np.ndarray) -> list:
        r = self.settings.recognition.for_model(getattr(self.pipeline, "model_entry", None))
        if gallery is None:
            return [None] * len(embeddings)
        return gallery.index.decide(embeddings, r.threshold, r.margin, rule=r.rule)

    def process(self, image: np.ndarray, *, still: bool = False, wall_time: float | None = None) -> Processed:
        """Detect, track, name one frame and submit its sightings. ``still``: an unrelated photo (a folder's):
        no tracking across photos, each face named on its own. ``wall_time``: when the frame was taken (epoch
        seconds; default now): the time of its events."""
        if self._forget:
            self._forget = False
            self.reset()
        if self.pipeline is None:
            return Processed(FrameResult(error="the face detector is not available"))
        with self._store_lock:
            writer, gallery = self.writer, self.gallery
        matches: list = []  # the gallery's decisions of this frame, for the unknown-visitor log

        def matcher(e: np.ndarray) -> list:
            out = self._decide(gallery, e)
            matches.extend(out)
            return out

        use = matcher if gallery is not None else None
        result = self.pipeline.analyze_still(image, use) if still else self.pipeline.process(image, use)
        now = time.time() if wall_time is None else wall_time
        seen = self._throttle(result, now)
        if seen and writer is not None:
            keep = self.settings.attendance.keep_snapshots
            for s in seen:
                snap = snapshot_jpeg(s.crop) if keep else None
                if snap is not None:
                    self.snapshots[s.person_id] = s.crop  # before submit: the event may be reported at once
                writer.submit(Sighting(s.person_id, s.similarity, datetime.fromtimestamp(s.wall_time, UTC), snap))
        if result.ok and gallery is not None:
            self._observe_unknowns(result, image, matches, now, still, writer)
        return Processed(result, seen)

    # -- the unknown-visitor log (frame thread) --------------------------------------------------------------------
    def _observe_unknowns(self, result: FrameResult, image: np.ndarray, matches: list, now: float, still: bool,
                          writer: EventWriter | None) -> None:
        u = self.settings.unknowns
        if not u.enabled or writer is None:
            self.unknowns.clear()  # nothing is followed, nothing kept in memory either
            return
        if still:
            visits = self.unknowns.observe_still(result, image, matches, now, snapshots=u.keep_snapshots)
        else:
            tracker = getattr(self.pipeline, "tracker", None)
            visits = []
            if tracker is not self._unknowns_tracker:  # a new tracker numbers its tracks from 1 again
                visits = self.unknowns.end_all() if self._unknowns_tracker is not None else []
                self._unknowns_tracker = tracker
            live = set(tracker.tracks) if tracker is not None else None
            visits += self.unknowns.observe(result, image, matches, now, live=live, snapshots=u.keep_snapshots)
        self._submit_unknowns(visits, writer)

    def _submit_unknowns(self, visits: list[UnknownVisit], writer: EventWriter | None = None) -> None:
        writer = writer or self.writer
        if writer is None or not self.settings.unknowns.enabled:
            return
        keep = self.settings.unknowns.keep_snapshots
        for v in visits:
            writer.submit(UnknownSighting(v.similarity, v.candidate_id, v.frames, v.seconds,
                                          datetime.fromtimestamp(v.wall_time, UTC),
                                          encode_snapshot(v.crop) if keep else None))

    def end_tracks(self) -> None:
        """Frame thread: the source ended; its unknown visitors are logged now (not at the next source)."""
        self._submit_unknowns(self.unknowns.end_all())

    def _throttle(self, result: FrameResult, wall_time: float) -> tuple[Seen, ...]:
        out = []
        for f in result.named():
            if f.person_id is None:
                continue
            pid = int(f.person_id)
            last = self._last_sighting.get(pid)
            if last is not None and abs(wall_time - last) < SIGHTING_INTERVAL_S:
                continue
            self._last_sighting[pid] = wall_time
            out.append(Seen(pid, f.name or "", float(f.similarity), f.track_id, wall_time, f.crop))
        return tuple(out)

    def reset(self) -> None:
        """Frame thread: a new source, or the gallery changed: every track votes afresh, the throttle restarts."""
        if self._drop_unknowns:  # another database: what was followed for the previous one is not logged here
            self._drop_unknowns = False
            self.unknowns.clear()
        else:  # every track ends here: those that were unknown visitors are logged
            self._submit_unknowns(self.unknowns.end_all())
        if self.pipeline is not None and hasattr(self.pipeline, "reset_tracking"):
            self.pipeline.reset_tracking()
        self._last_sighting.clear()

    def forget_identities(self) -> None:
        """Any thread: from the next frame no face keeps a name the gallery may no longer give."""
        self._forget = True

    # -- catching up with other kiosks ---------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload what other kiosks changed in the gallery now; True when something changed (the faces in view are
        then named afresh from the next frame). Raises StoreError when the database cannot be read."""
        self._next_refresh = time.monotonic() + self.refresh_seconds
        gallery = self.gallery
        if gallery is None or not gallery.refresh():
            return False
        self._forget = True
        return True

    def maybe_refresh(self, now: float | None = None) -> bool:
        """:meth:`refresh` when ``refresh_seconds`` have passed since the last one, else nothing (cheap: call it
        every frame). A StoreError is raised to the driver; the next try is one period later."""
        if (time.monotonic() if now is None else now) < self._next_refresh:
            return False
        return self.refresh()

    def take_snapshot(self, person_id: int) -> np.ndarray | None:
        """The crop submitted with the person's latest sighting (for showing with the event), once."""
        return self.snapshots.pop(person_id, None)

    # -- the end ---------------------------------------------------------------------------------------------------
    def close(self, timeout: float | None = 30.0, end_tracks: bool = True) -> int:
        """Write every queued sighting (up to ``timeout``; then what waits goes to the spool). Returns how many
        are still waiting. The gallery is the driver's to close. Tracks still in view end here (the driver's frame
        thread has stopped): their unknown visitors are logged first. ``end_tracks=False``: the frame thread did
        not stop (a call that hangs); its tracks stay its own and are not logged."""
        if end_tracks:
            self._submit_unknowns(self.unknowns.end_all())
        w = self.writer
        return w.close(timeout=timeout) if w is not None else 0
