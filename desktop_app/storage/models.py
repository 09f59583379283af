"""The SQLAlchemy schema: people, face templates (+ crops), attendance events (+ snapshots), unknown visitors.

Table and column names are those of the Alembic revisions in ``storage/migrations``: existing databases open as they
are; a change here comes with a new revision file (and ``SCHEMA_HEAD`` in engine.py)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from desktop_app.storage.fields import NAME_MAX


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored as naive UTC (portable across SQLite/PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)



class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))  # names may repeat
    external_id: Mapped[str | None] = mapped_column(String(100))  # employee / student number, unique when given
    group: Mapped[str | None] = mapped_column("group_name", String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # random, unrelated to the person: what their past events keep after they are deleted
    pseudonym: Mapped[str] = mapped_column(String(32), default=lambda: "anon-" + secrets.token_hex(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    templates: Mapped[list[Template]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                                     passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("external_id", name="uq_people_external_id"),
        UniqueConstraint("pseudonym", name="uq_people_pseudonym"),
        Index("ix_people_group", "group_name"),  # reports filtered by group; the absent-people query
    )

    def __repr__(self) -> str:
        return f"Person(id={self.id}, name={self.name!r}, external_id={self.external_id!r})"


class Template(Base):
    """One face embedding of a person; ``crop`` (aligned 112x112 JPEG) lives in its own table so that the
    start-up scan over embeddings does not read image bytes."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, ``dim`` values
    dim: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(100))
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship(back_populates="templates")
    crop: Mapped[TemplateCrop | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                     uselist=False)

    __table_args__ = (
        Index("ix_templates_model", "model_id"),  # start-up: all templates of the active model
        Index("ix_templates_person", "person_id"),  # delete / list a person's templates
    )


class TemplateCrop(Base):
    __tablename__ = "template_crops"

    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class AttendanceEvent(Base):
    """One attendance record. ``person_id`` is NULL once the person is deleted; ``person_ref`` (their pseudonym)
    then still groups their past events without saying who they were."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    person_ref: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC
    tz: Mapped[str] = mapped_column(String(64))  # the local time zone the rules used for this event
    station: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # EventKind value
    similarity: Mapped[float] = mapped_column(Float, default=0.0)

    snapshot: Mapped[EventSnapshot | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                          uselist=False)

    __table_args__ = (
        Index("ix_events_ts", "ts"),  # reports over a date range
        Index("ix_events_person_ts", "person_id", "ts"),  # the rules: a person's last events of the day
    )


class EventSnapshot(Base):
    __tablename__ = "event_snapshots"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class UnknownVisitor(Base):
    """A face that stayed unknown over a whole track (the unknown-visitor log, README "Unknown visitors"): when and
    where it was first seen, for how long, and whom it resembled most. ``candidate_id`` is cleared when that person
    is erased (and by the foreign key); no name is kept here, it is read from the person while they exist."""

    __tablename__ = "unknown_visitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC, the track's first frame
    station: Mapped[str] = mapped_column(String(100))
    similarity: Mapped[float | None] = mapped_column(Float)  # best over the track; None: nobody to compare with
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    frames: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    snapshot: Mapped[UnknownSnapshot | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                            uselist=False)

    __table_args__ = (
        Index("ix_unknown_visitors_ts", "ts"),  # the list by day, the retention purge
        Index("ix_unknown_visitors_candidate", "candidate_id"),  # erasure clears the link
    )


class UnknownSnapshot(Base):
    __tablename__ = "unknown_snapshots"

    visitor_id: Mapped[int] = mapped_column(ForeignKey("unknown_visitors.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)

