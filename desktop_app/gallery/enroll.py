"""Enrollment: photos or frames of one person -> checked face templates -> the store and the index, all or none.

Two steps so a person (or the GUI's dialog) can decide in between:

1. :meth:`Enroller.prepare` runs the vision pipeline on each image and applies the gates: exactly one face (or the
   largest, by choice), then size, detection score, sharpness and pose (``vision.quality.EnrollmentGate``). Every
   refusal says why in plain words. Accepted faces are compared with the gallery: a face that the recogniser would
   take for *another* person is reported in ``resembles`` and needs confirming.
2. :meth:`Enroller.commit` writes the person (new, or an existing one getting more templates) and every accepted
   template in one transaction, then adds them to the index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.config import Settings
from desktop_app.gallery.service import Gallery
from desktop_app.vision.media import encode_jpeg
from desktop_app.vision.quality import DEFAULT_GATE, EnrollmentGate
from desktop_app.vision.types import Face, FrameResult, largest_face

log = logging.getLogger(__name__)

CROP_JPEG_QUALITY = 95  # kept crops are re-embedded when the model changes: keep them close to lossless


class EnrollmentError(ValueError):
    """Enrollment cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Candidate:
    """An accepted face: ``embedding`` float32 [D] unit length, ``crop`` uint8 [112, 112, 3] BGR."""

    source: str
    embedding: np.ndarray
    crop: np.ndarray
    quality: float
    face: Face


@dataclass(frozen=True)
class Refusal:
    source: str
    reasons: tuple[str, ...]
    faces: int = 0  # when refused for holding several faces: how many (a front end names its way to take the largest)

    def __str__(self) -> str:
        return f"{self.source}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class Resemblance:
    """An accepted face is this close to someone already enrolled (not the person being enrolled)."""

    source: str
    person_id: int
    name: str
    similarity: float

    def __str__(self) -> str:
        return f"{self.source} looks like {self.name} (#{self.person_id}, similarity {self.similarity:.2f})"


@dataclass(frozen=True)
class SameName:
    """Someone already enrolled has the name a new person is being enrolled under."""

    person_id: int
    name: str
    external_id: str | None
    active: bool

    def __str__(self) -> str:
        ident = f"#{self.person_id}" + (f", id {self.external_id}" if self.external_id else "")
        return f"{self.name} ({ident}) is already enrolled under this name" + ("" if self.active else " (inactive)")


@dataclass(frozen=True)
class EnrollmentPlan:
    accepted: tuple[Candidate, ...]
    refused: tuple[Refusal, ...]
    resembles: tuple[Resemblance, ...]
    person_id: int | None = None  # adding templates to this existing person
    same_name: tuple[SameName, ...] = ()  # a new person's name is taken already

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.resembles or self.same_name)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What needs confirming, in words: a name already taken, faces that look like someone else."""
        return tuple(str(w) for w in (*self.same_name, *self.resembles))

    def summary(self) -> str:
        lines = [f"{len(self.accepted)} photo(s) usable, {len(self.refused)} refused"]
        lines += [f"  refused {r}" for r in self.refused]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class EnrollmentResult:
    person_id: int
    name: str
    template_ids: tuple[int, ...]
    refused: tuple[Refusal, ...]


def choose_face(result: FrameResult, source: str, largest: bool = False,
                gate: EnrollmentGate = DEFAULT_GATE) -> Candidate | Refusal:
    """The one face of an image that may become a template, or why there is none."""
    if result.error:
        return Refusal(source, (result.error,))
    faces = list(result.faces)
    if not faces:
        return Refusal(source, ("no face found: use a photo where the face is clearly visible and well lit",))
    if len(faces) > 1 and not largest:
        return Refusal(source, (f"{len(faces)} faces in the photo: use a photo of this person alone, or choose "
                                "to enroll the largest face",), faces=len(faces))
    face = largest_face(faces)
    problems = gate.problems(face.quality) if face.quality is not None else ["face quality unknown"]
    if problems:
        return Refusal(source, tuple(problems))
    if face.embedding is None or face.crop is None:
        why = result.notice or "no recognition model is installed"
        return Refusal(source, (f"cannot compute a face template: {why}",))
    q = face.quality.overall if face.quality is not None else 0.0
    return Candidate(source, np.asarray(face.embedding, np.float32), face.crop, float(q), face)


def encode_crop(crop: np.ndarray) -> bytes:
    data = encode_jpeg(crop, CROP_JPEG_QUALITY)
    if data is None:
        raise EnrollmentError("could not encode the face crop")
    return data


@dataclass(frozen=True)
class Capture:
    """An image offered for enrollment and what a pipeline already made of it (``analyze_still``): the GUI's
    captures, analysed on its vision thread."""

    source: str
    image: np.ndarray
    result: FrameResult


class Analyzed:
    """A stand-in pipeline for :class:`Enroller` over :class:`Capture` s: the images were already analysed (on the
    GUI's vision thread), so the gates and the duplicate check run without a second detector and embedder."""

    def __init__(self, captures: Sequence[Capture]) -> None:
        self._by_id = {id(c.image): c.result for c in captures}

    def analyze_still(self, image: np.ndarray) -> FrameResult:
        return self._by_id[id(image)]


class Enroller:
    """Enrollment over a pipeline (anything with ``analyze_still(image) -> FrameResult``) and a gallery."""

    def __init__(self, pipeline: Any, gallery: Gallery, settings: Settings | None = None,
                 gate: EnrollmentGate = DEFAULT_GATE) -> None:
        self.pipeline = pipeline
        self.gallery = gallery
        self.settings = settings or Settings()
        self.gate = gate

    def prepare(self, images: Iterable[tuple[str, np.ndarray]], largest: bool = False,
                person_id: int | None = None, name: str | None = None) -> EnrollmentPlan:
        """Check ``(source name, BGR image)`` pairs; ``person_id`` when adding to someone already enrolled, ``name``
        when enrolling someone new (a name already taken needs confirming, as a face that looks like someone else
        does)."""
        accepted: list[Candidate] = []
        refused: list[Refusal] = []
        for source, image in images:
            got = choose_face(self.pipeline.analyze_still(image), source, largest, self.gate)
            (accepted if isinstance(got, Candidate) else refused).append(got)  # type: ignore[arg-type]
        for c in accepted:
            if c.embedding.size != self.gallery.dim:
                raise EnrollmentError(f"the recognition model gives {c.embedding.size}-d templates but the gallery "
                                      f"is for {self.gallery.dim}-d ones (model {self.gallery.model_id})")
        return EnrollmentPlan(tuple(accepted), tuple(refused), self._resemblances(accepted, person_id), person_id,
                              self._same_name(name) if person_id is None else ())

    def _same_name(self, name: str | None) -> tuple[SameName, ...]:
        if not name:
            return ()
        with st.store_errors(self.gallery.url), Session(self.gallery.engine) as s:
            return tuple(SameName(p.id, p.name, p.external_id, p.active) for p in st.people_named(s, name))

    def prepare_files(self, paths: Sequence[str | Path], largest: bool = False,
                      person_id: int | None = None, name: str | None = None) -> EnrollmentPlan:
        """Like :meth:`prepare` for image files, each read by the one guarded reader: unreadable files (empty,
        damaged, too many pixels) are refusals that say why, not errors, and the other files still count."""
        from desktop_app.vision.media import MediaError, read_image

        images: list[tuple[str, np.ndarray]] = []
        unreadable: list[Refusal] = []
        for p in paths:
            try:
                images.append((Path(p).name, read_image(p)))
            except MediaError as exc:
                unreadable.append(Refusal(Path(p).name, (getattr(exc, "reason", str(exc)),)))
        plan = self.prepare(images, largest, person_id, name)
        return EnrollmentPlan(plan.accepted, tuple(unreadable) + plan.refused, plan.resembles, person_id,
                              plan.same_name)

    def _resemblances(self, accepted: Sequence[Candidate], person_id: int | None) -> tuple[Resemblance, ...]:
        """Faces the recogniser would take for someone else (similarity at least the recognition threshold)."""
        if not accepted or len(self.gallery.index) == 0:
            return ()
        thr = self.settings.recognition.for_model(getattr(self.pipeline, "model_entry", None)).threshold
        hits = self.gallery.index.search(np.stack([c.embedding for c in accepted]), k=8)
        out = []
        for c, sims, pids in zip(accepted, hits.similarities, hits.person_ids, strict=True):
            for sim, pid in zip(sims.tolist(), pids.tolist(), strict=True):
                if pid < 0 or pid == person_id:
                    continue
                if sim >= thr:
                    out.append(Resemblance(c.source, int(pid), self.gallery.index.names.get(pid, f"#{pid}"),
                                           float(sim)))
                break  # only the closest other person matters
        return tuple(out)

    def commit(self, plan: EnrollmentPlan, name: str | None = None, external_id: str | None = None,
               group: str | None = None, confirm: bool = False) -> EnrollmentResult:
        """Store the plan's templates (and a new person unless the plan is for an existing one): all or none."""
        if not plan.accepted:
            why = "; ".join(str(r) for r in plan.refused) or "no photo given"
            raise EnrollmentError(f"no usable photo, nothing enrolled ({why})")
        if plan.needs_confirmation and not confirm:
            raise EnrollmentError("; ".join(plan.warnings) +
                                  ": if this really is a different person, confirm to enroll anyway")
        keep = self.settings.attendance.keep_crops
        new = [st.NewTemplate(c.embedding, self.gallery.model_id, c.quality, c.source[:500],
                              encode_crop(c.crop) if keep else None) for c in plan.accepted]
        with st.store_errors(self.gallery.url), Session(self.gallery.engine) as s, s.begin():
            if plan.person_id is not None:
                person = s.get(st.Person, plan.person_id)
                if person is None:
                    raise EnrollmentError(f"no person #{plan.person_id} to add photos to")
            else:
                if not name:
                    raise EnrollmentError("a new person needs a name")
                person = st.add_person(s, name, external_id=external_id, group=group)
            rows = st.add_templates(s, person.id, new)
            pid, pname, active = person.id, person.name, person.active
            tids = tuple(r.id for r in rows)
        # committed: now the index
        if active:
            self.gallery.index_added(pid, pname, tids, np.stack([c.embedding for c in plan.accepted]))
        log.info("enrolled %s (#%d): %d template(s)", pname, pid, len(tids))
        return EnrollmentResult(pid, pname, tids, plan.refused)
