"""Turns voted identities into attendance events: each event is committed in its own transaction *before* anyone is
told about it, so an event that was shown or printed is on disk.

:class:`AttendanceRecorder` does one sighting synchronously (tests); :class:`EventWriter` is the single writer thread
the GUI and ``fdface run`` use: sightings are queued, written in order (retried while the database is busy), and
``on_event`` is called after commit. The same thread writes the unknown-visitor log (:class:`UnknownSighting`, decided
by ``attendance/unknowns.py``) and deletes its expired entries (at start and daily), so that neither ever makes the
camera loop wait for the database.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from desktop_app.attendance.rules import PriorEvent, classify, day_of, day_start, resolve_zone
from desktop_app.config import AttendanceSettings, UnknownSettings
from desktop_app.gallery.service import spool_path  # noqa: F401 (the spool's place, named with the store's)
from desktop_app.storage import (
    AttendanceEvent,
    Person,
    StoreError,
    add_event,
    add_unknown,
    check_station,
    store_errors,
)

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.25  # first pause after "database busy"; doubles up to RETRY_MAX_S
RETRY_MAX_S = 5.0
ABANDON_WAIT_S = 15.0  # on close: how long the attempt in flight may take before what waits is spooled
HOUSEKEEPING_S = 24 * 3600.0  # the writer deletes expired unknown visitors at start and this often
HOUSEKEEPING_RETRY_S = 600.0  # after a purge that failed (database busy): the next try


@dataclass(frozen=True)
class RecordedEvent:
    """A committed event, as reported to the UI / console."""

    id: int
    person_id: int
    name: str
    external_id: str | None
    ts: datetime  # UTC
    local_ts: datetime  # in the rules' time zone
    tz: str
    station: str
    kind: str
    similarity: float
    demoted: int | None = None  # always None: recorded events are never changed (see rules.py); kept for callers


@dataclass(frozen=True)
class Sighting:
    person_id: int
    similarity: float
    ts: datetime | None = None  # None: now
    snapshot_jpeg: bytes | None = None
    station: str | None = None
    # the person's pseudonym (random, unique, never given to anyone else): who ``person_id`` meant when the
    # sighting was made. A database restored or replaced meanwhile may have given that number to someone else;
    # the writer then keeps the sighting aside instead of filing it under them. None: not known (checked as before)
    person_ref: str | None = None


class NotThisPerson(Exception):
    """A sighting's person number belongs to someone else in this database now (or to nobody): it was made
    against another copy of the database (restored or replaced since)."""


@dataclass(frozen=True)
class UnknownSighting:
    """A face that stayed unknown over a whole track (the unknown-visitor log), queued with the sightings."""

    similarity: float | None  # the best over the track; None: nobody enrolled to compare with
    candidate_id: int | None  # whom it resembled most
    frames: int
    seconds: float
    ts: datetime | None = None  # the track's first frame; None: now
    snapshot_jpeg: bytes | None = None
    station: str | None = None
    candidate_ref: str | None = None  # the candidate's pseudonym (see Sighting.person_ref)


class AttendanceRecorder:
    """Applies the rules against the store and writes events. Use from one thread (the writer)."""

    def __init__(self, engine: Engine, settings: AttendanceSettings | None = None,
                 clock: Callable[[], datetime] | None = None, unknowns: UnknownSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or AttendanceSettings()
        self.unknowns = unknowns or UnknownSettings()
        self.station = check_station(self.settings.station)  # a StoreError naming the field, before any face
        self.tz, self.tz_name = resolve_zone(self.settings.timezone)
        self.dedupe = timedelta(minutes=self.settings.dedupe_minutes)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last: dict[int, datetime] = {}  # person -> last event time: skips the database for repeats
        self.refs: dict[int, str] = {}  # person id -> pseudonym in this database (see Sighting.person_ref)
        self.recorded_people: set[int] = set()  # people this recorder wrote an event for
        self.repeated_people: set[int] = set()  # people with a sighting inside the dedupe window (no event made)

    @property
    def repeats_only(self) -> int:
        """How many people were recognised but got no new event from this recorder, every sighting of theirs
        falling within ``attendance.dedupe_minutes`` of an event they already had (e.g. a folder run a second
        time): what ``fdface run``'s summary reports besides the events."""
        return len(self.repeated_people - self.recorded_people)

    def load_refs(self) -> None:
        """Learn every person's pseudonym (one read), so that sightings can say whom they meant. Read-only: does
        not wait for another program's write lock."""
        from desktop_app.storage import reader

        with store_errors(), Session(reader(self.engine)) as s:
            self.refs.update({int(i): str(r) for i, r in s.execute(select(Person.id, Person.pseudonym))})

    def record(self, person_id: int, similarity: float, ts: datetime | None = None,
               snapshot_jpeg: bytes | None = None, station: str | None = None,
               person_ref: str | None = None) -> RecordedEvent | None:
        """Write the event this sighting makes, or return None (duplicate, unknown or inactive person).
        ``person_ref``: the pseudonym of the person meant; raises :class:`NotThisPerson` when this database gives
        ``person_id`` to someone else or to nobody (nothing is written)."""
        now = (ts or self.clock()).astimezone(UTC)
        last = self._last.get(person_id)
        if last is not None and abs(now - last) < self.dedupe:
            self.repeated_people.add(person_id)
            return None
        station = check_station(station) if station else self.station
        today_start = day_start(day_of(now, self.tz, self.settings.day_boundary_hour), self.tz,
                                self.settings.day_boundary_hour)
        with store_errors(), Session(self.engine) as s, s.begin():
            # The guard against two kiosks deciding at once: the person's row is locked until commit, so a second
            # recorder of the same person waits here and then sees the first one's event (PostgreSQL: row lock,
            # READ COMMITTED reads what was committed meanwhile; SQLite: BEGIN IMMEDIATE already serialises
            # writers, FOR UPDATE is not emitted there). NO KEY UPDATE: enrolment (a foreign-key share lock on
            # the same row) is not blocked.
            person = s.scalar(select(Person).where(Person.id == person_id)
                              .with_for_update(key_share=True))
            if person_ref is not None and (person is None or person.pseudonym != person_ref):
                raise NotThisPerson(f"person #{person_id} is {'nobody' if person is None else 'someone else'} in "
                                    "this database now (it was restored or replaced after the sighting)")
            if person is not None:
                self.refs[int(person.id)] = person.pseudonym
            if person is None or not person.active:
                return None
            rows = s.execute(select(AttendanceEvent.id, AttendanceEvent.ts, AttendanceEvent.kind)
                             .where(AttendanceEvent.person_id == person_id,
                                    AttendanceEvent.ts >= min(today_start, now) - self.dedupe)
                             .order_by(AttendanceEvent.ts, AttendanceEvent.id)).all()
            if any(r[1] is not None and _utc(r[1]) == now for r in rows):
                return None  # this very sighting was written already (a spooled one whose first try committed)
            decision = classify(now, [PriorEvent(*r) for r in rows], today_start, self.dedupe)
            if decision.kind is None:  # within the dedupe window of the person's last event
                if rows:
                    self._last[person_id] = max(r[1] for r in rows)
                self.repeated_people.add(person_id)
                return None
            snap = snapshot_jpeg if self.settings.keep_snapshots else None
            ev = add_event(s, person, now, self.tz_name, station, decision.kind, similarity, snap)
            out = RecordedEvent(ev.id, person.id, person.name, person.external_id, now, now.astimezone(self.tz),
                                self.tz_name, station, str(decision.kind), float(similarity))
        # committed: only now is the event reported
        self._last[person_id] = now
        self.recorded_people.add(person_id)
        return out

    def forget(self, person_id: int) -> None:
        """Drop the in-memory dedupe state of a person (deleted or edited)."""
        self._last.pop(person_id, None)

    def record_unknown(self, item: UnknownSighting) -> int | None:
        """Log an unknown visitor; its id, or None (the log is off, or this one is logged already). The snapshot
        is kept only when the privacy setting says so at the time of writing."""
        if not self.unknowns.enabled:
            return None
        now = (item.ts or self.clock()).astimezone(UTC)
        station = check_station(item.station) if item.station else self.station
        snap = item.snapshot_jpeg if self.unknowns.keep_snapshots else None
        with store_errors(), Session(self.engine) as s, s.begin():
            cid = item.candidate_id
            if cid is not None and item.candidate_ref is not None and s.scalar(
                    select(Person.pseudonym).where(Person.id == cid)) != item.candidate_ref:
                cid = None  # that number is someone else now (a restored database): the log says nobody, not them
            row = add_unknown(s, now, station, item.similarity, cid, item.frames, item.seconds, snap)
            return None if row is None else int(row.id)

    def housekeeping(self) -> int:
        """Delete the unknown visitors older than the retention (``unknowns.keep_days``); how many."""
        from desktop_app.attendance.unknowns import purge_unknowns

        return purge_unknowns(self.engine, self.unknowns.keep_days, self.clock())


def _utc(ts: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite hands back naive UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _spool_line(it: Sighting | UnknownSighting, **extra: Any) -> str:
    if isinstance(it, UnknownSighting):
        return json.dumps({
            "unknown": True, "candidate_id": it.candidate_id, "similarity": it.similarity, "frames": it.frames,
            "seconds": it.seconds, "ts": it.ts.isoformat() if it.ts is not None else None, "station": it.station,
            "snapshot": base64.b64encode(it.snapshot_jpeg).decode() if it.snapshot_jpeg else None,
            "candidate_ref": it.candidate_ref, **extra}) + "\n"
    return json.dumps({
        "person_id": it.person_id, "similarity": it.similarity,
        "ts": it.ts.isoformat() if it.ts is not None else None, "station": it.station,
        "snapshot": base64.b64encode(it.snapshot_jpeg).decode() if it.snapshot_jpeg else None,
        "person_ref": it.person_ref, **extra}) + "\n"


def kept_aside_path(spool: Path) -> Path:
    """Where the writer keeps the sightings it must not file (their person number means someone else in the
    database now): next to the spool, never read back by a writer; README "Backups" says what to do with it."""
    return spool.with_name(spool.name.removesuffix(".jsonl") + "-not-recorded.jsonl")


def write_spool(path: Path, items: list[Sighting | UnknownSighting]) -> None:
    """Atomically replace the file with ``items`` (fsynced: it stands for attendance not yet recorded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("".join(_spool_line(it) for it in items))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def append_spool(path: Path, items: list[Sighting | UnknownSighting]) -> None:
    """Add ``items`` to the spool in one appending write, fsynced. The spool is only ever appended to (by any
    writer, of this process or another) or taken whole by :func:`claim_spool`, so no writer can overwrite what
    another one kept."""
    if not items:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(_spool_line(it) for it in items).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


_claims = itertools.count()


def _claim_alive(claimed: Path) -> bool:
    """Whether the process that claimed this file still runs (its pid is in the name)."""
    try:
        pid = int(claimed.name.split(".claimed-", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_spool(path: Path) -> tuple[list[Path], list[Sighting | UnknownSighting]]:
    """Take the spool for one writer: the file (and any claim left by a process that has ended) is renamed to a
    name of this writer's, atomically, so sightings appended meanwhile start a new spool and are never lost to a
    rewrite. Returns the claimed files (delete them once their sightings are written or spooled again) and their
    sightings in time order."""
    mine = f"{path.name}.claimed-{os.getpid()}-{next(_claims)}"
    stale = [c for c in sorted(path.parent.glob(f"{path.name}.claimed-*")) if not _claim_alive(c)] \
        if path.parent.is_dir() else []
    claimed: list[Path] = []
    for k, c in enumerate([path, *stale]):
        dst = path.with_name(f"{mine}-{k}")
        try:
            os.replace(c, dst)
        except FileNotFoundError:  # nothing there, or another writer took it first
            continue
        claimed.append(dst)
    items = [it for f in claimed for it in read_spool(f)]
    items.sort(key=lambda it: it.ts or datetime.min.replace(tzinfo=UTC))
    return claimed, items


def read_spool(path: Path) -> list[Sighting | UnknownSighting]:
    """The sightings a spool holds; a damaged line is logged and skipped, the others are kept."""
    if not path.exists():
        return []
    out: list[Sighting | UnknownSighting] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ts = datetime.fromisoformat(d["ts"]) if d.get("ts") else None
            snap = base64.b64decode(d["snapshot"]) if d.get("snapshot") else None
            if d.get("unknown"):
                cid, sim = d.get("candidate_id"), d.get("similarity")
                out.append(UnknownSighting(None if sim is None else float(sim), None if cid is None else int(cid),
                                           int(d["frames"]), float(d["seconds"]), ts, snap, d.get("station"),
                                           _ref(d.get("candidate_ref"))))
                continue
            out.append(Sighting(int(d["person_id"]), float(d["similarity"]), ts, snap, d.get("station"),
                                _ref(d.get("person_ref"))))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s line %d is damaged and was skipped: %s", path, n, exc)
    return out


def _ref(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise TypeError(f"a person's reference is text, not {v!r}")
    return v


class EventWriter:
    """The one thread that writes events. ``submit`` never blocks and never loses a sighting: while the database
    is busy (another program holds the write lock), unreachable or its disk is full, sightings wait in memory, in
    order, and the writer tries again with back-off until they are written.

    ``on_event`` / ``on_error`` / ``on_status`` / ``on_unknown`` run on the writer thread (a GUI re-emits them as
    signals): ``on_event`` after each commit; ``on_unknown`` with the id of each unknown visitor logged (after its
    commit; ``unknowns_logged`` counts them); ``on_error`` when a sighting cannot be recorded at all (not a passing
    condition); ``on_status`` whenever :meth:`status` changes ("" again once everything waiting is written).

    ``spool``: a file (:func:`spool_path`) where sightings still waiting when the writer is closed are kept, so
    that a database busy or unreachable for longer than the program runs loses nothing: the next writer on the same
    database writes them first (their original times; the rules' dedupe makes a sighting written twice count
    once), and removes the file once they are all written.

    Each sighting carries its person's pseudonym (``Sighting.person_ref``), so that one made against another copy
    of the database (a backup restored, the file replaced) is never filed under whoever has that person number
    now: it is kept aside in :func:`kept_aside_path` (``kept_aside`` counts them), said through ``on_error`` and
    the log, and never dropped."""

    def __init__(self, recorder: AttendanceRecorder, on_event: Callable[[RecordedEvent], None] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 on_status: Callable[[str], None] | None = None, spool: Path | None = None,
                 on_unknown: Callable[[int], None] | None = None) -> None:
        self.recorder = recorder
        self.on_event = on_event
        self.on_unknown = on_unknown
        self.on_error = on_error
        self.on_status = on_status
        self.spool = spool
        self.spooled = 0  # sightings kept in the spool by close()
        self.purged = 0  # unknown visitors deleted by the retention purge (housekeeping)
        self.unknowns_logged = 0  # unknown visitors this writer logged (committed; not those already logged)
        self.kept_aside = 0  # sightings whose person number means someone else now: see kept_aside_path
        self._erased_refs: set[str] = set()  # pseudonyms of people erased meanwhile: their sightings are dropped
        self._pending: deque[Sighting | UnknownSighting] = deque()
        self._next_housekeeping = 0.0  # monotonic time of the next purge: at once
        self._cv = threading.Condition()
        self._closing = False
        self._abandon = False  # close() gave up waiting: what is left goes to the spool
        self._from_spool = 0  # sightings at the head of the queue that came from the spool
        self._finished = False  # the writer thread has ended: submit() spools instead of queueing
        self._claimed: list[Path] = []  # spool files this writer took; deleted once their sightings are safe
        if spool is not None:
            self._claimed, kept = claim_spool(spool)
            self._pending.extend(kept)
            self._from_spool = len(kept)
            if kept:
                log.info("%d sighting(s) kept from an earlier run in %s are written first", len(kept), spool)
        self._problem = ""  # the passing condition being waited out ("database busy"), "" when writing works
        self._reported = ""  # the status text last given to on_status
        self._thread = threading.Thread(target=self._run, name="attendance-writer", daemon=True)
        self._thread.start()

    def submit(self, sighting: Sighting | UnknownSighting) -> None:
        """Queue a sighting (or an unknown visitor); its time is fixed now (not when it is written, which may be much
        later)."""
        if sighting.ts is None:
            sighting = replace(sighting, ts=self.recorder.clock())
        sighting = self._with_ref(sighting)
        with self._cv:
            if not self._finished:
                self._pending.append(sighting)
                self._cv.notify_all()
                return
        # a closed writer (a driver still held it while the store was switched): kept for the next writer on
        # this database, never dropped in silence
        if self.spool is not None:
            append_spool(self.spool, [self._with_ref(sighting)])
            log.warning("a sighting handed to a closed writer is kept in %s", self.spool)
        else:
            _call(self.on_error, f"{_what(sighting)} came after the writer was closed and was not recorded")

    @property
    def repeats_only(self) -> int:
        """People recognised whose sightings all fell within the dedupe window of an event they already had, so
        that nothing new was written for them (:attr:`AttendanceRecorder.repeats_only`); read it after
        :meth:`close`."""
        return self.recorder.repeats_only

    @property
    def pending(self) -> int:
        """Sightings submitted and not yet written (or given up)."""
        with self._cv:
            return len(self._pending)

    def status(self) -> str:
        """"" while writing works; else what is wrong and how much waits, e.g. "database busy, 3 sightings
        waiting"."""
        with self._cv:
            return self._status_locked()

    def _status_locked(self) -> str:
        if not self._problem:
            return ""
        n = len(self._pending)
        return f"{self._problem}, {n} sighting{'' if n == 1 else 's'} waiting"

    def _report_status(self) -> None:
        text = self.status()
        if text != self._reported:
            self._reported = text
            _call(self.on_status, text)

    def _pause(self, seconds: float) -> None:
        """Wait before the next try, keeping the status's count up to date as sightings arrive."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._abandon:
            with self._cv:
                self._cv.wait(left)
            self._report_status()

    def _housekeeping_due(self) -> float | None:
        """Seconds until the next purge of expired unknown visitors (0: due); None: this recorder has none."""
        if not callable(getattr(self.recorder, "housekeeping", None)):
            return None
        return max(0.0, self._next_housekeeping - time.monotonic())

    def _housekeeping(self) -> None:
        """On the writer thread, between two writes: delete the expired unknown visitors. A failure is logged and
        tried again later; it never holds up the sightings."""
        try:
            self.purged += self.recorder.housekeeping()
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        except Exception as exc:
            log.warning("could not delete expired unknown visitors (tried again later): %s", exc)
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_RETRY_S

    def _with_ref(self, item: Sighting | UnknownSighting) -> Sighting | UnknownSighting:
        """The item with its person's pseudonym, when this writer knows it."""
        refs: dict[int, str] | None = getattr(self.recorder, "refs", None)
        if refs is None:
            return item
        pid = item.person_id if isinstance(item, Sighting) else item.candidate_id
        if pid is None or (item.person_ref if isinstance(item, Sighting) else item.candidate_ref) is not None:
            return item
        ref = refs.get(int(pid))
        if ref is None:
            return item
        return replace(item, person_ref=ref) if isinstance(item, Sighting) else replace(item, candidate_ref=ref)

    def _load_refs(self) -> None:
        try:
            self.recorder.load_refs()
        except Exception as exc:  # the database unreachable: the sightings are checked as before
            log.warning("could not read who the people are (sightings are spooled without it): %s", exc)

    def _keep_aside(self, item: Sighting | UnknownSighting, exc: NotThisPerson) -> None:
        """A sighting that must not be filed (its person number means someone else now): kept in a file next to
        the spool and said; dropped only when its person was erased meanwhile (the erasure's promise)."""
        if isinstance(item, Sighting) and item.person_ref in self._erased_refs:
            return None
        self.kept_aside += 1
        if self.spool is None:
            _call(self.on_error, f"{_what(item)} from {_when(item)} was not recorded: {exc}")
            return None
        target = kept_aside_path(self.spool)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # who, when, where and why: enough to enter it by hand; no face picture (it may be an erased
                # person's, seen by this kiosk while another erased them)
                os.write(fd, _spool_line(replace(item, snapshot_jpeg=None), reason=str(exc)).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            _call(self.on_error, f"{_what(item)} from {_when(item)} was not recorded ({exc}) and could not be kept in "
                                 f"{target}: {err.strerror or err}")
            return None
        text = (f"{_what(item)} from {_when(item)} was not recorded: {exc}; it is kept in "
                f"{target}")
        log.warning("%s", text)
        _call(self.on_error, text)
        return None

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        if callable(getattr(self.recorder, "load_refs", None)):
            self._load_refs()
        while True:
            with self._cv:
                while not self._pending and not self._closing and (due := self._housekeeping_due()) != 0.0:
                    self._cv.wait(due)
                if not self._pending and not self._closing:
                    item = None  # only the purge is due
                elif not self._pending or self._abandon:
                    self._finished = True
                    return  # closing, everything written; or close() spools what is left
                else:
                    item = self._pending[0]
            if item is None or self._housekeeping_due() == 0.0:
                self._housekeeping()
                if item is None:
                    continue
            logged: int | None = None  # the unknown visitor's id, once committed
            try:
                if isinstance(item, UnknownSighting):
                    logged = self.recorder.record_unknown(item)
                    ev = None
                else:
                    ev = self.recorder.record(item.person_id, item.similarity, item.ts, item.snapshot_jpeg,
                                              item.station, person_ref=item.person_ref)
            except NotThisPerson as exc:
                ev = self._keep_aside(item, exc)
            except StoreError as exc:
                if exc.transient:  # keep the sighting; try again later
                    with self._cv:
                        first = not self._problem
                        self._problem = exc.transient
                    if first:
                        log.warning("attendance writer: %s; sightings wait and are retried", exc)
                    self._report_status()
                    self._pause(delay)
                    delay = min(2 * delay, RETRY_MAX_S)
                    continue
                ev = self._give_up(item, exc)
            except Exception as exc:  # not a database condition that passes: say so, go on with the next sighting
                log.exception("could not record attendance")
                ev = self._give_up(item, exc)
            with self._cv:
                self._pending.popleft()
                self._problem = ""  # written (or given up): the database answers again
                spool_done = self._from_spool == 1
                self._from_spool = max(0, self._from_spool - 1)
            if spool_done and not self._abandon:
                self._drop_claimed()  # everything kept from an earlier run is written now
            delay = RETRY_FIRST_S
            self._report_status()
            if ev is not None:
                _call(self.on_event, ev)
            if logged is not None:
                self.unknowns_logged += 1
                _call(self.on_unknown, logged)

    def _give_up(self, item: Sighting | UnknownSighting, exc: BaseException) -> None:
        _call(self.on_error, f"{_what(item)} was not recorded: {exc}")
        return None

    def close(self, timeout: float | None = 30.0) -> int:
        """Write everything queued, then stop. Returns how many sightings are still waiting after ``timeout``
        (0: all written); the writer keeps trying them in the background until the process ends."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive() and self.spool is not None:
            self.spool_now()
        return self.pending

    def _drop_claimed(self) -> None:
        from desktop_app.gallery.service import wipe_file  # they hold face snapshots: wiped, not just unlinked

        for f in self._claimed:
            wipe_file(f)
        self._claimed = []

    def forget_person(self, person_id: int) -> int:
        """Drop an erased person's sightings still waiting here (they would be refused, and a spool would keep
        their snapshots on disk); unknown visitors who resembled the person stay, without saying whom. Returns how
        many sightings were dropped."""
        def mine(k: int, it: Sighting | UnknownSighting) -> bool:  # the one being written stays: the store refuses it
            return isinstance(it, Sighting) and it.person_id == person_id and not (k == 0 and not self._finished)

        ref = getattr(self.recorder, "refs", {}).get(int(person_id))
        if ref is not None:
            self._erased_refs.add(ref)
        with self._cv:
            keep = deque(replace(it, candidate_id=None) if isinstance(it, UnknownSighting)
                         and it.candidate_id == person_id else it
                         for k, it in enumerate(self._pending) if not mine(k, it))
            dropped = len(self._pending) - len(keep)
            self._from_spool = max(0, self._from_spool - sum(
                1 for k, it in enumerate(list(self._pending)[: self._from_spool]) if mine(k, it)))
            self._pending = keep
        return dropped

    def spool_now(self) -> int:
        """Stop trying and keep every waiting sighting in the spool for the next writer on this database (the
        attempt in flight may still commit; written twice, a sighting counts once). Returns how many were kept."""
        with self._cv:
            self._closing = self._abandon = True
            self._cv.notify_all()
        self._thread.join(ABANDON_WAIT_S)
        with self._cv:
            items = list(self._pending)
            self._finished = True  # from now on submit() appends to the spool itself
        if any(it.person_ref is None and self._with_ref(it) is it for it in items if isinstance(it, Sighting)):
            self._load_refs()  # people this writer has not met yet: asked once (a read), before they are spooled
        items = [self._with_ref(it) for it in items]
        if self.spool is not None:
            append_spool(self.spool, items)  # never a rewrite: what others kept there stays
            self._drop_claimed()  # their sightings not yet written are among ``items``
            self.spooled = len(items)
            if items:
                log.warning("%d sighting(s) not yet recorded are kept in %s", len(items), self.spool)
        return self.spooled


def _when(item: Sighting | UnknownSighting) -> str:
    return "an unknown time" if item.ts is None else f"{item.ts.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _what(item: Sighting | UnknownSighting) -> str:
    """A queued item in words, for messages."""
    if isinstance(item, UnknownSighting):
        return "an unknown visitor"
    return f"a sighting of person #{item.person_id}"


def _call(callback: Callable[[Any], None] | None, arg: Any) -> None:
    """A listener's failure (a closed window, a closed pipe) must not stop the writer: logged, then go on."""
    if callback is None:
        return
    try:
        callback(arg)
    except Exception:
        log.exception("attendance writer: a listener failed")
