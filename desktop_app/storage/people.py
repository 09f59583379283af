"""People: add, find, change and erase (right to erasure). Functions take the caller's
:class:`~sqlalchemy.orm.Session`, one per user action or worker task::

    with Session(engine) as s, s.begin():
        person = add_person(s, "Ada Lovelace", external_id="E-17")
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from desktop_app.storage.errors import StoreError
from desktop_app.storage.fields import NAME_MAX, as_id, check_person_fields, check_text
from desktop_app.storage.models import (
    AttendanceEvent,
    EventSnapshot,
    Person,
    Template,
    TemplateCrop,
    UnknownVisitor,
)


def add_person(s: Session, name: str, external_id: str | None = None, group: str | None = None,
               active: bool = True) -> Person:
    name, external_id, group = check_person_fields(name, external_id, group)
    if not name:
        raise StoreError("a person needs a name")
    if external_id is not None:
        other = s.scalar(select(Person).where(Person.external_id == external_id))
        if other is not None:
            raise StoreError(f"id {external_id!r} already belongs to {other.name} (person #{other.id})")
    p = Person(name=name, external_id=external_id, group=group, active=active)
    s.add(p)
    s.flush()
    return p


def get_person(s: Session, person_id: int) -> Person | None:
    return s.get(Person, as_id(person_id))


def require_person(s: Session, person_id: int) -> Person:
    """The person, or a :class:`StoreError` saying there is none (deleted meanwhile, perhaps at another kiosk)."""
    person = get_person(s, person_id)
    if person is None:
        raise StoreError(f"no person #{person_id}")
    return person


def _name_key(name: str) -> str:
    """Names compared as a person reads them: spacing, case and Unicode composition (é typed as e + accent)
    aside."""
    return unicodedata.normalize("NFC", " ".join(name.split())).casefold()


def people_named(s: Session, name: str) -> list[Person]:
    """Everyone, active or not, whose name is ``name`` up to case and spacing (names may repeat: a new person with
    someone's name is asked about, not refused). Compared in Python: SQLite's lower() folds ASCII only."""
    key = _name_key(name)
    if not key:
        return []
    return [p for p in s.scalars(select(Person).order_by(Person.id)) if _name_key(p.name) == key]


def resolve_person(s: Session, ref: str) -> Person:
    """One person from ``#12``, an external id or an exact name; :class:`StoreError` when none or several."""
    ref = ref.strip()
    if ref.startswith("#") and ref[1:].isdigit():
        p = s.get(Person, int(ref[1:]))
        if p is None:
            raise StoreError(f"no person #{ref[1:]}")
        return p
    p = s.scalar(select(Person).where(Person.external_id == ref))
    if p is not None:
        return p
    same = list(s.scalars(select(Person).where(Person.name == ref)))
    if len(same) == 1:
        return same[0]
    if not same:
        raise StoreError(f"no person named or with id {ref!r}")
    ids = ", ".join(f"#{x.id}" + (f" ({x.external_id})" if x.external_id else "") for x in same)
    raise StoreError(f"{len(same)} people are named {ref!r} ({ids}); say which with #number or the id")


def update_person(s: Session, person: Person, *, name: str | None = None, external_id: str | None = None,
                  group: str | None = None, active: bool | None = None) -> Person:
    if name is not None:
        new_name = check_text("name", name, NAME_MAX)
        if not new_name:
            raise StoreError("a person needs a name")
        person.name = new_name
    if external_id is not None:
        ext = check_text("external id", external_id)
        if ext is not None:
            other = s.scalar(select(Person).where(Person.external_id == ext, Person.id != person.id))
            if other is not None:
                raise StoreError(f"id {ext!r} already belongs to {other.name} (person #{other.id})")
        person.external_id = ext
    if group is not None:
        person.group = check_text("group", group)
    if active is not None:
        person.active = active
    s.flush()
    return person


@dataclass(frozen=True)
class Erasure:
    """What deleting a person removed."""

    person_id: int
    templates: int
    snapshots: int
    events_deleted: int
    events_pseudonymised: int
    unknowns_unlinked: int = 0  # unknown visitors who resembled the person most: they no longer say whom


def delete_person(s: Session, person_id: int, erase_events: bool = False) -> Erasure:
    """Right to erasure: the person, their templates, crops and event snapshots go; their past events are deleted
    (``erase_events``) or keep only the person's pseudonym."""
    person_id = as_id(person_id)
    person = require_person(s, person_id)
    tids = select(Template.id).where(Template.person_id == person_id)
    eids = select(AttendanceEvent.id).where(AttendanceEvent.person_id == person_id)
    s.execute(delete(TemplateCrop).where(TemplateCrop.template_id.in_(tids)))
    n_t = s.execute(delete(Template).where(Template.person_id == person_id)).rowcount
    n_s = s.execute(delete(EventSnapshot).where(EventSnapshot.event_id.in_(eids))).rowcount
    if erase_events:
        n_del = s.execute(delete(AttendanceEvent).where(AttendanceEvent.person_id == person_id)).rowcount
        n_ps = 0
    else:
        n_del = 0
        n_ps = s.execute(update(AttendanceEvent).where(AttendanceEvent.person_id == person_id)
                         .values(person_id=None, person_ref=person.pseudonym)).rowcount
    n_u = s.execute(update(UnknownVisitor).where(UnknownVisitor.candidate_id == person_id)
                    .values(candidate_id=None)).rowcount  # the foreign key would too; said here for every engine
    s.execute(delete(Person).where(Person.id == person_id))
    s.expunge(person)
    return Erasure(person_id, n_t, n_s, n_del, n_ps, n_u)



def count_people(s: Session) -> int:
    return int(s.scalar(select(func.count(Person.id))) or 0)

