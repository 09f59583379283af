"""Face templates: one embedding per row (tagged with its model's id), the optional aligned crop beside it, and
the arrays the FAISS index is built from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from desktop_app.storage.errors import StoreError
from desktop_app.storage.fields import as_id, as_ids
from desktop_app.storage.models import Person, Template, TemplateCrop
from desktop_app.storage.people import require_person


@dataclass(frozen=True)
class NewTemplate:
    """A template to store: ``embedding`` float32 [D] (normalised); ``crop_jpeg`` kept only if the setting says."""

    embedding: np.ndarray
    model_id: str
    quality: float = 0.0
    source: str = ""
    crop_jpeg: bytes | None = None


def embedding_bytes(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(v, dtype="<f4").reshape(-1)).tobytes()


def add_templates(s: Session, person_id: int, templates: Sequence[NewTemplate]) -> list[Template]:
    """Add templates (all in the caller's transaction: all or none)."""
    person_id = as_id(person_id)
    require_person(s, person_id)
    out = []
    for t in templates:
        v = np.asarray(t.embedding, np.float32).reshape(-1)
        if not np.isfinite(v).all() or v.size == 0:
            raise StoreError("refusing to store an empty or non-finite embedding")
        row = Template(person_id=person_id, embedding=embedding_bytes(v), dim=int(v.size), model_id=t.model_id,
                       quality=float(t.quality), source=t.source[:500])
        if t.crop_jpeg is not None:
            row.crop = TemplateCrop(jpeg=t.crop_jpeg)
        s.add(row)
        out.append(row)
    s.flush()
    return out


def delete_templates(s: Session, template_ids: Iterable[int]) -> int:
    """How many templates (and their crops) were deleted."""
    ids = as_ids(template_ids)
    if not ids:
        return 0
    s.execute(delete(TemplateCrop).where(TemplateCrop.template_id.in_(ids)))
    return int(s.execute(delete(Template).where(Template.id.in_(ids))).rowcount)


@dataclass(frozen=True)
class TemplateArrays:
    """Templates of one model, ready for the index: ids int64 [N], person ids int64 [N], embeddings float32 [N, D]."""

    template_ids: np.ndarray
    person_ids: np.ndarray
    embeddings: np.ndarray


def load_templates(s: Session, model_id: str, dim: int, active_only: bool = True) -> TemplateArrays:
    """Every template computed with ``model_id`` (of active people unless told otherwise), in id order."""
    stmt = (select(Template.id, Template.person_id, Template.embedding)
            .where(Template.model_id == model_id, Template.dim == dim).order_by(Template.id))
    if active_only:
        stmt = stmt.join(Person, Person.id == Template.person_id).where(Person.active.is_(True))
    rows = s.connection().execute(stmt).all()  # Core rows: no ORM bookkeeping for 100k+ templates
    n = len(rows)
    tids = np.fromiter((r[0] for r in rows), np.int64, n)
    pids = np.fromiter((r[1] for r in rows), np.int64, n)
    if n:
        emb = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(n, dim).astype(np.float32)
    else:
        emb = np.zeros((0, dim), np.float32)
    return TemplateArrays(tids, pids, emb)


def templates_fingerprint(s: Session, model_id: str) -> str:
    """Changes whenever a template of ``model_id`` is added or removed, or a person is (de)activated: the key
    under which a saved index file is valid."""
    n, mx, sm = s.execute(select(func.count(Template.id), func.max(Template.id), func.sum(Template.id))
                          .join(Person, Person.id == Template.person_id)
                          .where(Template.model_id == model_id, Person.active.is_(True))).one()
    return f"{model_id}|{n}|{mx or 0}|{sm or 0}"


def model_counts(s: Session) -> dict[str, int]:
    """How many templates each model id has."""
    rows = s.execute(select(Template.model_id, func.count(Template.id)).group_by(Template.model_id))
    return {m: int(n) for m, n in rows}

