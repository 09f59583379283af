"""The gallery as the app holds it: the store (the truth) plus the FAISS index of the active model's templates.

``Gallery.open`` opens the database, then loads a saved index file if it is intact and matches the store, or
rebuilds the index from the store. Enrollment and deletion write the store first, then update the index in place.
Templates computed with another model than the active one are not searched: :meth:`Gallery.stale` says which
can be recomputed from their kept crops (:meth:`Gallery.recompute`) and which people must be enrolled again.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.config import Settings, data_dir
from desktop_app.gallery.index import HNSW_EF_SEARCH, GalleryIndex, Match
from desktop_app.manifest import ModelEntry, sha256_file

log = logging.getLogger(__name__)

EmbedFn = Callable[[np.ndarray], np.ndarray]  # uint8 BGR crops [N, 112, 112, 3] -> float32 [N, D] unit rows
# How often a long-running kiosk (the GUI, `fdface run`) calls Gallery.refresh to pick up other kiosks' enrolments,
# edits and erasures on a shared database.
REFRESH_SECONDS = 30.0


def model_id_for(entry: ModelEntry) -> str:
    """Which model computed a template: the manifest name plus the start of the file's checksum, so a retrained
    model with the same name is a different model."""
    sha = entry.sha256 or (sha256_file(entry.path) if entry.path.exists() else "")
    return f"{entry.name}@{sha[:12]}" if sha else entry.name


def default_index_path(url: str, model_id: str) -> Path:
    """Beside a SQLite file; under the user's data directory for other databases."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        db = Path(u.database).expanduser()
        return db.with_name(f"{db.name}.{safe}.faiss")
    key = hashlib.sha1(u.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return data_dir() / "index" / f"{key}.{safe}.faiss"


def index_files(url: str) -> list[Path]:
    """Every saved index file of the database at ``url``, of any model (with their graph, id and temporary
    files)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            return []
        db = Path(u.database).expanduser()
        folder, prefix = db.parent, db.name
    else:
        folder = data_dir() / "index"
        prefix = hashlib.sha1(u.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{glob.escape(prefix)}.*.faiss*") if p.is_file())


def wipe_file(path: Path) -> None:
    """Overwrite a file with zeros, flush it to disk, then delete it (its bytes do not linger in free blocks of
    most file systems; copy-on-write file systems and SSD wear levelling may still keep old blocks)."""
    try:
        with open(path, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            block = b"\0" * (1 << 20)
            while size > 0:
                fh.write(block[:min(size, len(block))])
                size -= len(block)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        log.warning("could not overwrite %s before deleting it: %s", path, exc)
    path.unlink(missing_ok=True)


def spool_path(database_url: str, folder: Path | None = None) -> Path:
    """Where sightings that could not be written to this database wait between runs (attendance's EventWriter; one
    file per database, since person ids belong to their database), in ``folder`` (default: the data folder)."""
    folder = data_dir() if folder is None else folder
    return folder / f"pending-sightings-{hashlib.sha1(database_url.encode()).hexdigest()[:12]}.jsonl"


def scrub_spool(url: str, person_id: int, folder: Path | None = None) -> int:
    """Drop an erased person's waiting sightings (with their snapshots) from the database's spool; the old file is
    wiped, not just replaced. Returns how many were dropped. The spool is JSON lines with a ``person_id``."""
    import json

    path = spool_path(url, folder)
    files = [path, *sorted(path.parent.glob(f"{path.name}.claimed-*"))] if path.parent.is_dir() else []
    dropped = 0
    for f in files:  # the spool and the parts that writers have taken from it
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue
        keep = []
        changed = False
        for line in lines:
            try:
                d = json.loads(line)
                if d.get("unknown"):  # an unknown visitor who resembled the person: kept, without saying whom
                    mine = False
                    if d.get("candidate_id") == int(person_id):
                        line, changed = json.dumps({**d, "candidate_id": None}), True
                else:
                    mine = int(d.get("person_id")) == int(person_id)
            except (ValueError, TypeError, AttributeError):
                mine = False  # a damaged line: kept for the writer to report
            if mine:
                dropped += 1
            else:
                keep.append(line)
        if len(keep) < len(lines) or changed:
            tmp = f.with_name(f.name + ".scrub")
            tmp.write_text("".join(f"{k}\n" for k in keep), encoding="utf-8")
            wipe_file(f)
            if keep:
                tmp.replace(f)
            else:
                tmp.unlink()
    return dropped


def erase_person(engine: Engine, url: str, person_id: int, erase_events: bool = False,
                 spool_folder: Path | None = None) -> st.Erasure:
    """Right to erasure, complete in one operation: the person goes from the store (:func:`store.delete_person`),
    the SQLite log is scrubbed, and every saved index file of this database is wiped, since each still holds the
    person's embeddings and ids (an open :class:`Gallery` saves its updated index again; otherwise the next start
    rebuilds it from the store)."""
    with st.store_errors(url), Session(engine) as s, s.begin():
        er = st.delete_person(s, person_id, erase_events=erase_events)
    for f in index_files(url):
        wipe_file(f)
    scrub_spool(url, person_id, spool_folder)  # sightings of the person still waiting to be written
    with st.store_errors(url):
        st.scrub(engine)
    return er


@dataclass(frozen=True)
class StaleReport:
    """Templates of other models than the active one."""

    recomputable: int  # have a kept crop
    people_to_reenroll: tuple[tuple[int, str], ...]  # (person id, name) with no usable template left

    @property
    def clean(self) -> bool:
        return self.recomputable == 0 and not self.people_to_reenroll


class Gallery:
    """Store + index for one model. Thread-safe for searching; writes go through the store's transactions."""

    def __init__(self, engine: Engine, model_id: str, dim: int, *, hnsw_above: int = 50_000,
                 index_path: str | Path | None = None, url: str = "", background: bool = True,
                 hnsw_ef_search: int = HNSW_EF_SEARCH, retry_below: float | None = None) -> None:
        """``background``: build an HNSW graph on a thread while exact search answers (see GalleryIndex)."""
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=False)
        self.model_id = model_id
        self.dim = int(dim)
        self.erasure_listeners: list[Callable[[int], object]] = []  # called with a person id before an erasure
        self.index = GalleryIndex(self.dim, hnsw_above=hnsw_above, background=background,
                                  on_rebuilt=self.save_index, ef_search=hnsw_ef_search,
                                  retry_below=retry_below)
        self._closed = False
        self.index_path = Path(index_path) if index_path else None
        self.fingerprint = ""
        self.names_fingerprint = ""
        self.load_source = ""  # "file" or "store": how the index was last loaded
        self.load_seconds = 0.0

    @classmethod
    def open(cls, settings: Settings, model_id: str, dim: int, url: str | None = None,
             persist_index: bool = True) -> Gallery:
        url = url or settings.storage.resolved_url()
        engine = st.open_engine(url)
        g = cls(engine, model_id, dim, hnsw_above=settings.storage.hnsw_above,
                hnsw_ef_search=settings.storage.hnsw_ef_search,
                retry_below=settings.recognition.for_model(None).threshold,
                index_path=default_index_path(url, model_id) if persist_index else None, url=url)
        g.load()
        return g

    # ------------------------------------------------------------------ index from the store
    def _fingerprint(self, s: Session) -> str:
        return f"{st.templates_fingerprint(s, self.model_id)}|{self.dim}"

    def load(self) -> str:
        """(Re)load the index: from the saved file when it matches the store, else rebuilt from the store."""
        t0 = time.perf_counter()
        with st.store_errors(self.url), Session(st.reader(self.engine)) as s:
            fp = self._fingerprint(s)
            names = self._names(s)
            self.names_fingerprint = self._names_fingerprint(s)
            if self.index_path is not None and self.index.load(self.index_path, fp):
                self.load_source = "file"
            else:
                if self.index_path is not None and self.index_path.exists():
                    # out of date: it may hold people erased since (by another kiosk); not kept a moment longer
                    for f in self.index_path.parent.glob(glob.escape(self.index_path.name) + "*"):
                        wipe_file(f)
                arr = st.load_templates(s, self.model_id, self.dim)
                self.index.reset(arr.template_ids, arr.person_ids, arr.embeddings)
                self.load_source = "store"
        self.index.names = names
        self.fingerprint = fp
        if self.load_source == "store":
            self.save_index()
        self.load_seconds = time.perf_counter() - t0
        log.info("gallery index: %d templates of %d people from the %s in %.2f s (%s)", len(self.index),
                 len(self.index.person_ids), self.load_source, self.load_seconds, self.index.kind)
        return self.load_source

    def save_index(self) -> None:
        """Persist the index when rebuilding it would be slow (HNSW); exact indexes rebuild in well under a
        second. A file that cannot be written only costs start-up time next time. Also called by the index
        when a graph built in the background is ready."""
        if self.index_path is None or self.index.kind != "hnsw" or self._closed:
            return
        try:
            with Session(st.reader(self.engine)) as s:
                fp = self._fingerprint(s)
            if fp != self.fingerprint:
                return  # the store moved on since we loaded: the next load rebuilds anyway
            self.index.save(self.index_path, fp)
        except Exception as exc:  # a cache: never worth failing for (this may run on the index's build thread)
            log.warning("could not save the gallery index to %s: %s", self.index_path, exc)

    def refresh(self) -> bool:
        """Catch up with another process (another kiosk on the same database): reload the index when templates
        changed, the names when people were renamed. True when anything was reloaded."""
        with st.store_errors(self.url), Session(st.reader(self.engine)) as s:
            fp = self._fingerprint(s)
            names_fp = self._names_fingerprint(s)
        if fp != self.fingerprint:
            self.load()
            return True
        if names_fp != self.names_fingerprint:
            with Session(st.reader(self.engine)) as s:
                self.index.names = self._names(s)
                self.names_fingerprint = self._names_fingerprint(s)
            return True
        return False

    @staticmethod
    def _names(s: Session) -> dict[int, str]:
        return {pid: name for pid, name in s.execute(
            select(st.Person.id, st.Person.name).where(st.Person.active.is_(True)))}

    @staticmethod
    def _names_fingerprint(s: Session) -> str:
        n, last = s.execute(select(func.count(st.Person.id), func.max(st.Person.updated_at))).one()
        return f"{n}|{last}"

    def _note_change(self) -> None:
        with Session(st.reader(self.engine)) as s:
            self.fingerprint = self._fingerprint(s)
            self.names_fingerprint = self._names_fingerprint(s)

    # ------------------------------------------------------------------ recognition
    def decide(self, embeddings: np.ndarray, threshold: float, margin: float) -> list[Match]:
        return self.index.decide(embeddings, threshold, margin)

    # ------------------------------------------------------------------ changes (store first, then index)
    def index_added(self, person_id: int, name: str, template_ids: Sequence[int], embeddings: np.ndarray) -> None:
        """After a committed enrollment: add its templates (of the active model) to the index."""
        if len(template_ids):
            self.index.add(template_ids, [person_id] * len(template_ids), embeddings)
        self.index.set_name(person_id, name)
        self._note_change()

    def delete_person(self, person_id: int, erase_events: bool = False) -> st.Erasure:
        """:func:`erase_person`, then the index in memory, and its file saved again without the person. Listeners
        (an attendance writer's queue) first drop what they hold of the person, so nothing of them is written or
        spooled after the erasure."""
        for drop in list(self.erasure_listeners):
            drop(int(person_id))
        er = erase_person(self.engine, self.url, person_id, erase_events)
        self.index.remove_person(person_id)
        self._note_change()
        self.save_index()
        return er

    def delete_templates(self, template_ids: Sequence[int]) -> int:
        template_ids = st.as_ids(template_ids)  # store and index drop the same rows, whatever the caller's int type
        with st.store_errors(self.url), Session(self.engine) as s, s.begin():
            n = st.delete_templates(s, template_ids)
        self.index.remove_templates(template_ids)
        self._note_change()
        return n

    def set_active(self, person_id: int, active: bool) -> None:
        person_id = st.as_id(person_id)
        with st.store_errors(self.url), Session(self.engine) as s, s.begin():
            p = st.update_person(s, st.require_person(s, person_id), active=active)
            name = p.name
            rows = s.execute(select(st.Template.id, st.Template.embedding).where(
                st.Template.person_id == person_id, st.Template.model_id == self.model_id,
                st.Template.dim == self.dim)).all()
        self.index.remove_person(person_id)
        if active and rows:
            emb = np.stack([np.frombuffer(r[1], "<f4") for r in rows])
            self.index.add([r[0] for r in rows], [person_id] * len(rows), emb)
            self.index.set_name(person_id, name)
        self._note_change()

    def set_details(self, person_id: int, *, external_id: str, group: str) -> None:
        """A person's external id and group ("" clears them); the index does not hold them."""
        with st.store_errors(self.url), Session(self.engine) as s, s.begin():
            st.update_person(s, st.require_person(s, st.as_id(person_id)), external_id=external_id, group=group)
        self._note_change()

    def rename(self, person_id: int, name: str) -> None:
        person_id = st.as_id(person_id)
        with st.store_errors(self.url), Session(self.engine) as s, s.begin():
            p = st.update_person(s, st.require_person(s, person_id), name=name)
            name = p.name
        if person_id in self.index.person_ids:
            self.index.set_name(person_id, name)
        self._note_change()

    # ------------------------------------------------------------------ model changes
    def stale(self) -> StaleReport:
        with Session(st.reader(self.engine)) as s:
            rows = s.execute(select(st.Person.id, st.Person.name, st.Template.model_id, st.Template.dim,
                                    st.TemplateCrop.template_id.is_not(None))
                             .join(st.Template, st.Template.person_id == st.Person.id)
                             .outerjoin(st.TemplateCrop, st.TemplateCrop.template_id == st.Template.id)).all()
        usable: set[int] = set()
        stale_people: dict[int, str] = {}
        recomputable = 0
        for pid, name, model, dim, has_crop in rows:
            if model == self.model_id and dim == self.dim:
                usable.add(pid)
            elif has_crop:
                recomputable += 1
                usable.add(pid)
            else:
                stale_people[pid] = name
        people = tuple(sorted(((p, n) for p, n in stale_people.items() if p not in usable), key=lambda x: x[1]))
        return StaleReport(recomputable, people)

    def recompute(self, embed: EmbedFn, batch: int = 64) -> int:
        """Recompute every template of another model that has a kept crop, with ``embed`` (the active model);
        each batch is committed on its own. Returns how many templates were recomputed."""
        import cv2

        done = 0
        while True:
            with Session(self.engine) as s, s.begin():
                rows = s.execute(select(st.Template.id, st.TemplateCrop.jpeg)
                                 .join(st.TemplateCrop, st.TemplateCrop.template_id == st.Template.id)
                                 .where((st.Template.model_id != self.model_id) | (st.Template.dim != self.dim))
                                 .order_by(st.Template.id).limit(batch)).all()
                if not rows:
                    break
                crops, ids = [], []
                for tid, jpeg in rows:
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    if img is None:  # a damaged crop: the template stays stale, the person is told to re-enroll
                        s.execute(delete(st.TemplateCrop).where(st.TemplateCrop.template_id == tid))
                        continue
                    crops.append(img)
                    ids.append(tid)
                if crops:
                    emb = np.asarray(embed(np.stack(crops)), np.float32)
                    for tid, v in zip(ids, emb, strict=True):
                        s.execute(update(st.Template).where(st.Template.id == tid).values(
                            embedding=st.embedding_bytes(v), dim=int(v.size), model_id=self.model_id))
                    done += len(ids)
        if done:
            self.load()
        return done

    def close(self) -> None:
        self.save_index()
        self._closed = True
        self.engine.dispose()
