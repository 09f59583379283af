"""The unknown-visitor log: which faces are logged, and the queries the CLI and the GUI show it with.

:class:`UnknownTracks` is the one place that decides (the :class:`~desktop_app.attendance.session.AttendanceSession`
owns one and feeds it every frame): a face that stays unknown over its whole track is logged once, when the track
ends, provided its vote said "unknown" for at least ``unknowns.min_seconds`` (a face flickering for a frame is
not a visitor). A track that is named at any moment is never logged, nor one without a single good frame (voted
"unknown", detection score and sharpness at enrolment's own bars, :func:`good_face`): dark or blurred shapes that
the detector takes for a face for a few seconds are not visitors. The snapshot is the track's best good frame. A
photo of a folder is its own track: each unknown face in it is logged. What is logged: when the track began, how
long it lasted and in how many frames, whom the face resembled most and how much (the best similarity over the
track), and, when the privacy setting allows it, one snapshot (:func:`visitor_snapshot`). The attendance writer
writes it, in order with the events.

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
from desktop_app.vision.media import encode_jpeg
from desktop_app.vision.quality import DEFAULT_GATE, EnrollmentGate

SNAPSHOT_HALF = 0.9  # the snapshot is a square of 2 x this x the face box's longer side, centred on the face
SNAPSHOT_FACE_PX = 160  # the face box's longer side in the snapshot at most (larger faces are scaled down)
# ... and at least: twice enrolment's size gate, so that "Enroll this person" never refuses a snapshot as too small
SNAPSHOT_FACE_MIN_PX = 2 * DEFAULT_GATE.min_size_px
SNAPSHOT_OVAL = (0.68, 0.78)  # the face oval kept sharp: half-axes as fractions of the face box's width, height
SNAPSHOT_FEATHER = 0.25  # the oval fades into the backdrop over this fraction of its size
SNAPSHOT_JPEG_QUALITY = 90


def good_face(face: Any, gate: EnrollmentGate = DEFAULT_GATE) -> bool:
    """Whether this detection counts toward an unknown visitor: detected as surely and as sharp as enrolment asks
    (size and pose aside: a small or turned face is still a visitor)."""
    q = face.quality
    score = float(getattr(face, "score", 0.0) if q is None else q.score)
    return q is not None and score >= gate.min_score and q.sharpness >= gate.min_sharpness


def snapshot_refusal(reasons: tuple[str, ...]) -> tuple[str, ...]:
    """Enrolment's reasons for refusing a visitor's stored snapshot, about that picture (not "move closer"): the
    person is not in front of the camera, the picture is what it is."""
    out = []
    for r in reasons:
        what = r.split(":", 1)[0].strip()
        out.append(f"this stored picture of the visitor cannot be used ({what}): choose another of their visits, "
                   "or enrol them with the camera or a photo")
    return tuple(out)


def privacy_text(u: Any) -> str:
    """What the unknown-visitor log keeps (``u``: the ``unknowns`` settings), in plain words: the settings dialog
    and the list of unknown visitors say it."""
    if not u.enabled:
        return (f"The unknown-visitor log is off: nothing new is logged. Entries logged before are deleted "
                f"{u.keep_days} day(s) after they were logged.")
    snap = ("a small picture of the face" if u.keep_snapshots else
            "no picture of the face (turn on 'Keep a snapshot of each unknown visitor' to keep one)")
    return (f"A face that stays unknown for at least {u.min_seconds:g} s is logged once (an unknown face in a photo "
            f"of a folder, once per photo): the time, the station, how long it was seen, which enrolled person it "
            f"resembled most and how much, and {snap}. Entries are deleted automatically after {u.keep_days} "
            "day(s). Erasing a person removes their name from these entries.")


def seen_for(frames: int, seconds: float) -> str:
    """How long an unknown face was in view, in words: a photo of a folder (one frame) has no duration."""
    return "one photo" if frames <= 1 else f"{seconds:.1f} s, {frames} frames"


def visitor_snapshot(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face with some room around it, cut from the frame (BGR), centred on the face and scaled so that the face
    box is 120 to 160 px across; outside an oval around the face the picture fades to a plain backdrop. Not the
    aligned 112x112 crop attendance events keep: "Enroll this person" hands the snapshot to enrolment, whose
    detector must find this face again, and only this one (the people next to a visitor in a crowd are neither
    stored nor offered for enrolment), big enough for its size gate."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    bw, bh = x2 - x1, y2 - y1
    if bw <= 1 or bh <= 1:
        return None
    side = max(bw, bh)
    scale = SNAPSHOT_FACE_MIN_PX / side if side < SNAPSHOT_FACE_MIN_PX else min(1.0, SNAPSHOT_FACE_PX / side)
    half = SNAPSHOT_HALF * side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    out = max(8, round(2 * half * scale))
    # the square around the face, scaled, in one warp (parts beyond the frame's edge take the nearest pixels)
    m = np.array([[scale, 0.0, out / 2 - cx * scale], [0.0, scale, out / 2 - cy * scale]], np.float32)
    interp = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_AREA
    crop = cv2.warpAffine(image, m, (out, out), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:out, 0:out].astype(np.float32) + 0.5
    ax, ay = SNAPSHOT_OVAL[0] * bw * scale, SNAPSHOT_OVAL[1] * bh * scale
    r = np.sqrt(((xx - out / 2) / ax) ** 2 + ((yy - out / 2) / ay) ** 2)
    alpha = np.clip((1.0 + SNAPSHOT_FEATHER - r) / SNAPSHOT_FEATHER, 0.0, 1.0)[..., None]
    backdrop = crop.reshape(-1, 3).mean(axis=0)  # the scene's mean colour: a plain, unobtrusive background
    return np.ascontiguousarray((crop * alpha + backdrop * (1.0 - alpha)).round().clip(0, 255).astype(np.uint8))


def encode_snapshot(crop: np.ndarray | None) -> bytes | None:
    return encode_jpeg(crop, SNAPSHOT_JPEG_QUALITY)


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
    good: int = 0  # frames voted "unknown" where the face was a good one (good_face)
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

    def __init__(self, min_seconds: float = 1.0, gate: EnrollmentGate = DEFAULT_GATE) -> None:
        self.min_seconds = float(min_seconds)
        self.gate = gate
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
                continue
            if t.named:
                continue
            if f.voted:
                if t.unknown_since is None:
                    t.unknown_since = wall_time
                t.unknown_last = wall_time
            if not good_face(f, self.gate):
                continue  # a dark or blurred shape: it alone never makes a visitor, nor gives the snapshot
            t.good += int(f.voted)
            if snapshots and image is not None:
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
            if not f.voted or f.person_id is not None or not good_face(f, self.gate):
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
        if t.named or t.unknown_since is None or t.unknown_last - t.unknown_since < self.min_seconds or not t.good:
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
