"""Storage: the database, the single source of truth (SQLAlchemy 2.x; SQLite by default, PostgreSQL for several
kiosks). engine.py opens it and runs the Alembic migrations (migrations/); models.py is the schema; people.py,
templates.py, events.py and unknowns.py are the functions over it, each taking the caller's Session; fields.py checks
text fields and ids the same way for every engine; errors.py turns driver errors into :class:`StoreError` messages.

Callers import from here (``from desktop_app import storage as st``); the modules are the layout, not the API."""

from desktop_app.event_kinds import EventKind
from desktop_app.storage.engine import (
    MIGRATIONS_DIR,
    SCHEMA_HEAD,
    create_store_engine,
    database_location_problem,
    migrate,
    open_engine,
    open_reader,
    reader,
    schema_version,
    scrub,
    sqlite_file,
)
from desktop_app.storage.errors import SQLITE_BUSY_TIMEOUT_MS, StoreError, describe_url, friendly_error, store_errors
from desktop_app.storage.events import add_event, count_events
from desktop_app.storage.fields import (
    NAME_MAX,
    TEXT_MAX,
    as_id,
    as_ids,
    check_person_fields,
    check_station,
    check_text,
    printable_text,
)
from desktop_app.storage.models import (
    AttendanceEvent,
    Base,
    EventSnapshot,
    Person,
    Template,
    TemplateCrop,
    UnknownSnapshot,
    UnknownVisitor,
)
from desktop_app.storage.people import (
    Erasure,
    add_person,
    count_people,
    delete_person,
    get_person,
    people_named,
    require_person,
    resolve_person,
    update_person,
)
from desktop_app.storage.templates import (
    NewTemplate,
    TemplateArrays,
    add_templates,
    delete_templates,
    embedding_bytes,
    load_templates,
    model_counts,
    templates_fingerprint,
)
from desktop_app.storage.unknowns import add_unknown, delete_unknowns, has_unknowns_before

__all__ = [
    "MIGRATIONS_DIR", "NAME_MAX", "SCHEMA_HEAD", "SQLITE_BUSY_TIMEOUT_MS", "TEXT_MAX", "AttendanceEvent", "Base",
    "Erasure", "EventKind", "EventSnapshot", "NewTemplate", "Person", "StoreError", "Template", "TemplateArrays",
    "TemplateCrop", "UnknownSnapshot", "UnknownVisitor", "add_event", "add_person", "add_templates", "add_unknown",
    "as_id", "as_ids", "check_person_fields", "check_station", "check_text", "count_events", "count_people",
    "create_store_engine", "database_location_problem", "delete_person", "delete_templates", "delete_unknowns",
    "describe_url", "embedding_bytes", "friendly_error", "get_person", "has_unknowns_before", "load_templates",
    "migrate", "model_counts", "open_engine", "open_reader", "people_named", "printable_text", "reader",
    "require_person", "resolve_person", "schema_version", "scrub", "sqlite_file", "store_errors",
    "templates_fingerprint", "update_person",
]
