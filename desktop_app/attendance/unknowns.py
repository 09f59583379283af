"""The unknown-visitor log: which faces are logged, and the queries the CLI and the GUI show it with.

:class:`UnknownTracks` is the one place that decides (the :class:`~desktop_app.attendance.session.AttendanceSession`
owns one and feeds it every frame): a face that stays unknown over its whole track is logged once, when the track
ends, provided its vote said "unknown" for at least ``unknowns.min_seconds`` (a face flickering for a frame is
not a visitor). A track that is named at any moment is never logged. A photo of a folder is its own track: each
unknown face in it is logged. What is logged: when the track began, how long it lasted and in how many frames,
whom the face resembled most and how much (the best similarity over the track), and, when the privacy setting
allows it, one snapshot (:func:`visitor_snapshot`). The attendance writer writes it, in order with the events.

The query functions below (:func:`list_unknowns`, :func:`purge_unknowns`, :func:`delete_unknowns`) take an engine and
return plain records, so that the CLI and the GUI never touch the ORM; every deletion is followed by the store's
scrub (SQLite zeroes the rows and truncates its write-ahead log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cv2
import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from desktop_app import storage as st

SNAPSHOT_MARGIN = 0.4  # the snapshot reaches this fraction of the face box beyond each side of it
SNAPSHOT_FACE_PX = 160  # the face box's longer side in the snapshot at most (larger faces are scaled down)
SNAPSHOT_JPEG_QUALITY = 85


def privacy_text(u: Any) -> str:
    """What the unknown-visitor log keeps (``u``: the ``unknowns`` settings), in plain words: the settings dialog
    and the list of unknown visitors say it."""
    if not u.enabled:
        return (f"The unknown-visitor log is off: nothing new is logged. Entries logged before are deleted "
                f"{u.keep_days} day(s) after they were logged.")
    snap = ("a small picture of the face" if u.keep_snapshots else
            "no picture of the face (turn on 'Keep a snapshot of each unknown visitor' to keep one)")
    return (f"A face that stays unknown for at least {u.min_seconds:g} s is logged once: the time, the station, how "
            f"long it was seen, which enrolled person it resembled most and how much, and {snap}. Entries are "
            f"deleted automatically after {u.keep_days} day(s). Erasing a person removes their name from these "
            "entries.")


def visitor_snapshot(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face with some room around it, cut from the frame (BGR). Not the aligned 112x112 crop attendance events
    keep: "Enroll this person" hands the snapshot to enrolment, whose detector needs to find the face again in it,
    and a face box of up to 160 px still passes enrolment's size gate (60 px)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    bw, bh = x2 - x1, y2 - y1
    if bw <= 1 or bh <= 1:
        return None
    x1, x2 = int(max(0, x1 - SNAPSHOT_MARGIN * bw)), int(min(w, x2 + SNAPSHOT_MARGIN * bw))
    y1, y2 = int(max(0, y1 - SNAPSHOT_MARGIN * bh)), int(min(h, y2 + SNAPSHOT_MARGIN * bh))
    if x2 <= x1 or y2 <= y1:
        return None
    crop = image[y1:y2, x1:x2]
    scale = SNAPSHOT_FACE_PX / max(bw, bh)
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def encode_snapshot(crop: np.ndarray | None) -> bytes | None:
    if crop is None or crop.size == 0:
        return None
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_JPEG_QUALITY])
    return buf.tobytes() if ok else None


@dataclass(frozen=True)
class UnknownVisit:
    """A track that stayed unknown, as the session hands it to the writer."""

    wall_time: float  # epoch seconds of the track's first frame
    seconds: float  # first to last frame
    frames: int
    similarity: float | None  # the best over the track; None when nobody was enrolled to compare with
    candidate_id: int | None  # the person it resembled most
    crop: np.ndarray | None = None  # the snapshot (BGR), when the setting keeps one


@dataclass
class _Track:
    first: float
    last: float
    frames: int = 0
    unknown_since: float | None = None  # wall time of the first frame whose vote said "unknown"
    unknown_last: float = 0.0
    named: bool = False
    similarity: float | None = None
    candidate_id: int | None = None
    crop: np.ndarray | None = None
    crop_quality: float = -1.0


def _candidate(match: Any) -> tuple[float, int] | None:
    cid = getattr(match, "candidate_id", None)
    if match is None or cid is None:
        return None
    return float(getattr(match, "similarity", 0.0)), int(cid)


class UnknownTracks:
    """Follows the tracks of a stream until they end and says which ones were unknown visitors. Frame thread only.

    ``matches`` given with a frame are the gallery's decisions for the faces embedded in it, in the order of the
    frame's faces with ``embedded`` set (the order the pipeline hands embeddings to its matcher)."""

    def __init__(self, min_seconds: float = 1.0) -> None:
        self.min_seconds = float(min_seconds)
        self.tracks: dict[int, _Track] = {}

    def observe(self, result: Any, image: np.ndarray | None, matches: list[Any], wall_time: float, *,
                live: set[int] | None = None, snapshots: bool = False) -> list[UnknownVisit]:
        """One frame of a stream; returns the visits of the tracks that ended (``live``: the tracker's tracks
        after this frame; None: the tracks of this frame's faces)."""
        emb_faces = [f for f in result.faces if f.embedded]
        cands = {f.track_id: c for f, m in zip(emb_faces, matches, strict=False)
                 if (c := _candidate(m)) is not None} if len(matches) == len(emb_faces) else {}
        for f in result.faces:
            t = self.tracks.get(f.track_id)
            if t is None:
                t = self.tracks[f.track_id] = _Track(wall_time, wall_time)
            t.last = wall_time
            t.frames += 1
            c = cands.get(f.track_id)
            if c is not None and (t.similarity is None or c[0] > t.similarity):
                t.similarity, t.candidate_id = c
            if f.voted and f.person_id is not None:
                t.named, t.crop = True, None  # never logged; no picture of a known person is kept here
            elif f.voted:
                if t.unknown_since is None:
                    t.unknown_since = wall_time
                t.unknown_last = wall_time
            if snapshots and not t.named and image is not None:
                q = f.quality.overall if f.quality is not None else 0.0
                if q > t.crop_quality:
                    t.crop, t.crop_quality = visitor_snapshot(image, f.box), q
        alive = live if live is not None else {f.track_id for f in result.faces}
        ended = [tid for tid in self.tracks if tid not in alive]
        return [v for tid in ended if (v := self._finish(self.tracks.pop(tid))) is not None]

    def observe_still(self, result: Any, image: np.ndarray | None, matches: list[Any], wall_time: float, *,
                      snapshots: bool = False) -> list[UnknownVisit]:
        """A photo of a folder: each face whose match said "unknown" is a visit of its own."""
        emb_faces = [f for f in result.faces if f.embedded]
        by_face = dict(zip(map(id, emb_faces), matches, strict=False)) if len(matches) == len(emb_faces) else {}
        out = []
        for f in result.faces:
            if not f.voted or f.person_id is not None:
                continue
            c = _candidate(by_face.get(id(f)))
            crop = visitor_snapshot(image, f.box) if snapshots and image is not None else None
            out.append(UnknownVisit(wall_time, 0.0, 1, c[0] if c else None, c[1] if c else None, crop))
        return out

    def end_all(self) -> list[UnknownVisit]:
        """Every track ends (the source ended or changed, the session closes)."""
        tracks, self.tracks = self.tracks, {}
        return [v for t in tracks.values() if (v := self._finish(t)) is not None]

    def clear(self) -> None:
        self.tracks = {}

    def _finish(self, t: _Track) -> UnknownVisit | None:
        if t.named or t.unknown_since is None or t.unknown_last - t.unknown_since < self.min_seconds:
            return None
        return UnknownVisit(t.first, max(0.0, t.last - t.first), t.frames, t.similarity, t.candidate_id, t.crop)


# --------------------------------------------------------------------------------------------- the log's queries
@dataclass(frozen=True)
class UnknownRow:
    """One logged unknown visitor, for a list."""

    id: int
    ts: datetime  # UTC
    station: str
    similarity: float | None
    candidate_id: int | None
    candidate_name: str | None  # the person's name now (None once they are erased)
    frames: int
    seconds: float
    has_snapshot: bool

    @property
    def resembles(self) -> str:
        """Whom the visitor resembled most, in words."""
        if self.candidate_id is None:
            return "nobody enrolled" if self.similarity is None else "an erased person"
        return f"{self.candidate_name} (#{self.candidate_id})"


def day_bounds(first: date, last: date, tz: Any, boundary_hour: int = 0) -> tuple[datetime, datetime]:
    """UTC instants from the start of ``first`` to the end of ``last`` (attendance days)."""
    from desktop_app.attendance.rules import day_start

    return (day_start(first, tz, boundary_hour).astimezone(UTC),
            day_start(last + timedelta(days=1), tz, boundary_hour).astimezone(UTC))


def list_unknowns(engine: Engine, start: datetime | None = None, end: datetime | None = None,
                  limit: int | None = None) -> list[UnknownRow]:
    """Logged unknown visitors from ``start`` (inclusive) to ``end`` (exclusive), newest first."""
    stmt = (select(st.UnknownVisitor, st.Person.name, st.UnknownSnapshot.visitor_id)
            .outerjoin(st.Person, st.Person.id == st.UnknownVisitor.candidate_id)
            .outerjoin(st.UnknownSnapshot, st.UnknownSnapshot.visitor_id == st.UnknownVisitor.id)
            .order_by(st.UnknownVisitor.ts.desc(), st.UnknownVisitor.id.desc()))
    if start is not None:
        stmt = stmt.where(st.UnknownVisitor.ts >= start)
    if end is not None:
        stmt = stmt.where(st.UnknownVisitor.ts < end)
    if limit is not None:
        stmt = stmt.limit(limit)
    with st.store_errors(), Session(st.reader(engine)) as s:
        return [UnknownRow(u.id, u.ts, u.station, u.similarity, u.candidate_id, name, u.frames, u.seconds,
                           snap is not None) for u, name, snap in s.execute(stmt)]


def unknown_snapshots(engine: Engine, ids: list[int]) -> dict[int, bytes]:
    """The snapshots (JPEG) of these unknown visitors that have one."""
    if not ids:
        return {}
    with st.store_errors(), Session(st.reader(engine)) as s:
        rows = s.execute(select(st.UnknownSnapshot.visitor_id, st.UnknownSnapshot.jpeg)
                         .where(st.UnknownSnapshot.visitor_id.in_(st.as_ids(ids))))
        return {int(i): bytes(j) for i, j in rows}


def retention_cutoff(keep_days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=int(keep_days))


def purge_unknowns(engine: Engine, keep_days: int, now: datetime | None = None) -> int:
    """Delete the unknown visitors older than ``keep_days`` (securely: see :func:`delete_unknowns`). Asks with a
    plain read first, so that a purge with nothing to do never waits for the write lock. Returns how many."""
    cutoff = retention_cutoff(keep_days, now)
    with st.store_errors(), Session(st.reader(engine)) as s:
        if not st.has_unknowns_before(s, cutoff):
            return 0
    return delete_unknowns(engine, before=cutoff)


def delete_unknowns(engine: Engine, before: datetime | None = None, ids: list[int] | None = None) -> int:
    """Delete unknown visitors (all, those before ``before``, or ``ids``) with their snapshots, then scrub the
    database so that their snapshots are not left in the SQLite log or free pages. Returns how many."""
    with st.store_errors(), Session(engine) as s, s.begin():
        n = st.delete_unknowns(s, before=before, ids=ids)
    if n:
        with st.store_errors():
            st.scrub(engine)
    return n


def count_unknowns(engine: Engine) -> int:
    from sqlalchemy import func

    with st.store_errors(), Session(st.reader(engine)) as s:
        return int(s.scalar(select(func.count(st.UnknownVisitor.id))) or 0)
