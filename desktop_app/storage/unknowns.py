"""The unknown-visitor log's rows (the decision who is logged is attendance/unknowns.py's)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from desktop_app.storage.fields import as_id, as_ids
from desktop_app.storage.models import Person, UnknownSnapshot, UnknownVisitor


def add_unknown(s: Session, ts: datetime, station: str, similarity: float | None, candidate_id: int | None,
                frames: int, seconds: float, snapshot_jpeg: bytes | None = None) -> UnknownVisitor | None:
    """Log one unknown visitor; None when this very one is logged already (a spooled sighting whose first try
    committed). A ``candidate_id`` whose person is gone (erased meanwhile) is stored as None."""
    same = [UnknownVisitor.ts == ts, UnknownVisitor.station == station, UnknownVisitor.frames == int(frames),
            UnknownVisitor.seconds == float(seconds),
            UnknownVisitor.similarity.is_(None) if similarity is None
            else UnknownVisitor.similarity == float(similarity)]
    # several people who came into view together and stayed as long are several visitors (their similarities
    # differ); only the very same one, a spooled entry whose first try committed, is skipped
    if s.scalar(select(UnknownVisitor.id).where(*same).limit(1)) is not None:
        return None
    if candidate_id is not None and s.get(Person, as_id(candidate_id)) is None:
        candidate_id = None
    row = UnknownVisitor(ts=ts, station=station, similarity=None if similarity is None else float(similarity),
                         candidate_id=None if candidate_id is None else as_id(candidate_id), frames=int(frames),
                         seconds=float(seconds))
    if snapshot_jpeg is not None:
        row.snapshot = UnknownSnapshot(jpeg=snapshot_jpeg)
    s.add(row)
    s.flush()
    return row


def has_unknowns_before(s: Session, cutoff: datetime) -> bool:
    """Whether any unknown visitor is older than ``cutoff`` (a read: the purge asks before it takes the write
    lock)."""
    return s.scalar(select(UnknownVisitor.id).where(UnknownVisitor.ts < cutoff).limit(1)) is not None


def delete_unknowns(s: Session, before: datetime | None = None, ids: Iterable[int] | None = None) -> int:
    """Delete unknown visitors (and their snapshots): all of them, those older than ``before``, or ``ids``.
    Returns how many. Follow with :func:`scrub` so that the deleted snapshots leave the SQLite log too."""
    cond = []
    if before is not None:
        cond.append(UnknownVisitor.ts < before)
    if ids is not None:
        cond.append(UnknownVisitor.id.in_(as_ids(ids)))
    vids = select(UnknownVisitor.id).where(*cond)
    s.execute(delete(UnknownSnapshot).where(UnknownSnapshot.visitor_id.in_(vids)))
    return int(s.execute(delete(UnknownVisitor).where(*cond)).rowcount)
