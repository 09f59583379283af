"""The questions the views ask of the store, for the GUI and the CLI alike: the people list with template counts, a
person's templates, thumbnails, groups, stations (events and grids: reports.py, grid.py).

Each function takes a read :class:`~sqlalchemy.orm.Session` and returns plain frozen rows, never ORM objects, so
that nothing lazy-loads later on another thread. The GUI does not hold sessions: it asks a :class:`StoreReads`,
which runs one such function in a short read-only session (SQLite: DEFERRED, never waits for the writer) and turns
driver errors into :class:`~desktop_app.storage.StoreError` messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, func, or_, select
from sqlalchemy.orm import Session

from desktop_app.attendance.reports import EventRow, events_in_range, group_names, in_group
from desktop_app.attendance.rules import day_of
from desktop_app.storage import (
    AttendanceEvent,
    Person,
    Template,
    TemplateCrop,
    count_people,
    reader,
    store_errors,
)

__all__ = ["PersonRow", "StoreReads", "StoreView", "TemplateRow", "count_people", "first_crops", "group_names",
           "list_people", "person_templates", "station_names", "store_view"]

R = TypeVar("R")


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str
    external_id: str | None
    group: str | None
    active: bool
    templates: int
    created: datetime


@dataclass(frozen=True)
class TemplateRow:
    id: int
    model_id: str
    quality: float
    source: str
    jpeg: bytes | None


def search_condition(query: str) -> ColumnElement[bool] | None:
    """What a search finds: any part of a name, an external id or a group (any case), or ``#id``."""
    q = query.strip()
    if not q:
        return None
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    cond = or_(*(col.ilike(like, escape="\\") for col in (Person.name, Person.external_id, Person.group)))
    if q.startswith("#") and q[1:].isdigit():
        cond = cond | (Person.id == int(q[1:]))
    return cond


def list_people(s: Session, query: str = "", *, group: str | None = None,
                active: bool | None = None) -> list[PersonRow]:
    """People ordered by name (then number) with how many templates each has: the People dialog, the log dialog's
    person filter and ``fdface people list``."""
    counts = dict(s.execute(select(Template.person_id, func.count(Template.id)).group_by(Template.person_id)).all())
    stmt = select(Person).order_by(Person.name, Person.id)
    cond = search_condition(query or "")
    if cond is not None:
        stmt = stmt.where(cond)
    if group is not None:
        stmt = stmt.where(in_group(s, group))  # any case, as the search
    if active is not None:
        stmt = stmt.where(Person.active.is_(active))
    return [PersonRow(p.id, p.name, p.external_id, p.group, p.active, int(counts.get(p.id, 0)), p.created_at)
            for p in s.scalars(stmt)]


def person_templates(s: Session, person_id: int) -> list[TemplateRow]:
    """A person's templates, oldest first, with the kept crop where there is one."""
    rows = s.execute(select(Template.id, Template.model_id, Template.quality, Template.source, TemplateCrop.jpeg)
                     .outerjoin(TemplateCrop, TemplateCrop.template_id == Template.id)
                     .where(Template.person_id == int(person_id)).order_by(Template.id)).all()
    return [TemplateRow(*r) for r in rows]


def first_crops(s: Session) -> dict[int, bytes]:
    """The kept crop of each person's first template (their thumbnail), when crops are kept."""
    rows = s.execute(select(Template.person_id, TemplateCrop.jpeg)
                     .join(TemplateCrop, TemplateCrop.template_id == Template.id)
                     .join(Person, Person.id == Template.person_id)
                     .order_by(Template.person_id, Template.id)).all()
    out: dict[int, bytes] = {}
    for pid, jpeg in rows:
        out.setdefault(pid, jpeg)
    return out


def station_names(s: Session) -> list[str]:
    """The stations events were recorded at, sorted."""
    return sorted(x for x in s.scalars(select(AttendanceEvent.station).distinct()) if x)


@dataclass(frozen=True)
class StoreView:
    """What the main window shows from the store: how many are enrolled, their thumbnails' crops, today's events."""

    enrolled: int
    crops: dict[int, bytes]
    today: list[EventRow]


def store_view(s: Session, tz: tzinfo, boundary_hour: int) -> StoreView:
    """The main window's data, read in one session (one consistent snapshot of the store)."""
    day = day_of(datetime.now(UTC), tz, boundary_hour)
    return StoreView(count_people(s), first_crops(s), events_in_range(s, day, day, tz, boundary_hour))


class StoreReads:
    """Read access to one open database for code that must not hold sessions (the GUI's views and dialogs):
    ``reads.read(list_people, "ada")``. Cheap to make; calls may come from any thread, each with its own session."""

    def __init__(self, engine: Engine, url: str | None = None) -> None:
        self._engine = reader(engine)
        self._url = url

    def read(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``fn(session, *args, **kwargs)`` in a read-only session; database errors as :class:`StoreError`."""
        with store_errors(self._url), Session(self._engine) as s:
            return fn(s, *args, **kwargs)
