"""Frame in, faces out: detect -> align -> quality -> (track) -> embed -> search -> vote, timed per stage.

``Pipeline.process`` is for a stream (a camera or a video): faces are tracked and a track is embedded only when
needed (see tracking.py); ``Pipeline.process_stream`` does the same over a whole sequence of frames with the
detection of the frames ahead spread over the cores; ``Pipeline.analyze_still`` is for a single photo (enrollment,
identify on images):
every face is aligned, assessed and embedded. Neither raises on a bad frame: the result's ``error`` says what was
wrong. The embedder is the manifest's "fdfacenet" entry unless told otherwise; without it the pipeline still
detects and says that no recognition model is installed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.config import DetectorSettings, Settings
from desktop_app.manifest import ManifestError, ModelEntry, default_models_dir, load_manifest
from desktop_app.vision.align import align_faces
from desktop_app.vision.detector import RetinaFaceDetector, as_bgr
from desktop_app.vision.embedder import Embedder
from desktop_app.vision.quality import assess
from desktop_app.vision.tracking import Tracker
from desktop_app.vision.types import Decision, Detection, Face, FrameResult, Matcher, Quality

log = logging.getLogger(__name__)

DEFAULT_MODEL = "fdfacenet"
MIN_FRAME_SIDE = 16  # smaller images cannot hold a face the detector finds




INT8_BAR = 0.2  # LFW points an INT8 copy may lose against its FP32 model and still be the default (issue 7)


def auto_model(entries: dict[str, ModelEntry]) -> str:
    """``fdfacenet-int8`` when it is installed and its measured LFW (as the app embeds: with or without flip) is
    within ``INT8_BAR`` points of ``fdfacenet``'s, else ``fdfacenet``."""
    fp32, int8 = entries.get(DEFAULT_MODEL), entries.get(f"{DEFAULT_MODEL}-int8")
    if fp32 is None or int8 is None or not int8.path.exists():
        return DEFAULT_MODEL

    def lfw(e: ModelEntry) -> float | None:
        v = e.info.get("lfw_flip" if e.flip else "lfw")
        return float(v) if isinstance(v, int | float) else None

    a, b = lfw(fp32), lfw(int8)
    if a is None or b is None or int8.flip != fp32.flip:
        return DEFAULT_MODEL
    return int8.name if a - b <= INT8_BAR + 1e-9 else DEFAULT_MODEL


def resolve_model(settings: Settings, models_dir: str | Path | None = None) -> tuple[ModelEntry | None, str | None]:
    """The embedder entry the settings ask for, or (None, why not) when it is not installed."""
    name = settings.recognition.model
    mdir = Path(models_dir) if models_dir else default_models_dir()
    try:
        entries = load_manifest(mdir / "manifest.json")
    except ManifestError as exc:
        return None, f"no recognition model installed ({exc}); faces are detected but not recognised"
    if name in ("", "auto"):
        name = auto_model(entries)
    entry = entries.get(name)
    if entry is None:
        return None, (f"no recognition model named {name!r} in {mdir / 'manifest.json'} "
                      f"(installed: {', '.join(sorted(entries)) or 'none'}); faces are detected but not recognised")
    if not entry.path.exists():
        return None, f"recognition model file missing: {entry.path}; faces are detected but not recognised"
    return entry, None


def match_decision(match: Decision | None) -> tuple[int | None, str | None, float]:
    """(person_id, name, similarity) when the matcher accepted the face, else (None, None, similarity)."""
    if match is None:
        return None, None, 0.0
    sim = float(match.similarity)
    if not match.accepted or match.person_id is None:
        return None, None, sim
    return int(match.person_id), match.name, sim


_thread_state = threading.local()


def _one_search_thread() -> None:
    """A frame's search is a few queries: FAISS's OpenMP team only adds wake-up latency and, with the detector
    busy on every core, spin-waits against it (measured: 0.2 ms -> 7 ms per frame). OpenMP's thread count is
    per calling thread, so this limits the pipeline's thread only, not gallery rebuilds elsewhere."""
    if getattr(_thread_state, "faiss_limited", False):
        return
    _thread_state.faiss_limited = True
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover - faiss is a dependency; a matcher may not use it
        pass


def _apply_detector_settings(det: RetinaFaceDetector, d: DetectorSettings) -> None:
    det.score_threshold, det.nms_threshold = float(d.score_threshold), float(d.nms_threshold)
    det.min_face_px, det.max_side, det.scale = float(d.min_face_px), int(d.max_side), float(d.detect_scale)


class Pipeline:
    """Detector + embedder sessions and one tracker. One Pipeline per stream; not thread-safe."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder_entry: ModelEntry | None = None,
        *,
        threads: int | None = None,
        models_dir: str | Path | None = None,
        verify_model: bool = True,
    ) -> None:
        self._settings = settings or Settings()
        n_threads = self._settings.performance.threads if threads is None else int(threads)
        self._threads = n_threads
        self._pool: list[RetinaFaceDetector] = []
        self.detector = RetinaFaceDetector.from_settings(self.settings.detector, threads=n_threads)
        self.notice: str | None = None
        entry = embedder_entry
        if entry is None:
            entry, self.notice = resolve_model(self.settings, models_dir)
        self.embedder: Embedder | None = None
        if entry is not None:
            try:
                self.embedder = Embedder(entry, threads=n_threads, verify=verify_model)
            except Exception as exc:  # a corrupt or mismatched model file: detect anyway, say why
                log.info("cannot load recognition model %s: %s", entry.name, exc)  # the notice says it
                self.notice = f"cannot load recognition model {entry.name!r}: {exc}"
        self.model_entry = entry if self.embedder is not None else None
        self._settings = self._settings.for_model(entry)  # the model's calibrated threshold and margin
        r = self._settings.recognition
        self.tracker = Tracker(vote_frames=r.vote_frames, recheck_frames=r.recheck_frames)
        self.frame_index = -1

    @property
    def settings(self) -> Settings:
        """The settings in force, bound to the model: ``recognition.threshold`` and ``margin`` are numbers."""
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """Thresholds (detector and recognition) apply from the next frame; new vote/re-check lengths restart
        the tracks. Threads and the model are fixed at construction: build a new Pipeline for those."""
        r = settings.recognition
        if (r.vote_frames, r.recheck_frames) != (self.tracker.vote_frames, self.tracker.recheck_frames):
            self.tracker = Tracker(vote_frames=r.vote_frames, recheck_frames=r.recheck_frames)
        for det in (self.detector, *self._pool):
            _apply_detector_settings(det, settings.detector)
        self._settings = settings.for_model(getattr(self, "model_entry", None))

    @property
    def recognition_available(self) -> bool:
        return self.embedder is not None

    def reset_tracking(self) -> None:
        self.tracker.reset()
        self.frame_index = -1

    # -- helpers -------------------------------------------------------------------------------------------------

    def _check(self, frame: Any) -> tuple[np.ndarray | None, str | None]:
        if frame is None:
            return None, "no frame (the source returned nothing)"
        if not isinstance(frame, np.ndarray):
            return None, f"not an image: {type(frame).__name__}"
        if frame.size == 0:
            return None, f"empty frame (shape {frame.shape})"
        if frame.dtype != np.uint8:
            return None, f"unsupported pixel type {frame.dtype} (expected 8-bit)"
        try:
            img = as_bgr(frame)
        except ValueError as exc:
            return None, str(exc)
        h, w = img.shape[:2]
        if min(h, w) < MIN_FRAME_SIDE:
            return None, f"image too small ({w}x{h} px) to hold a face"
        return img, None

    def _detect(self, img: np.ndarray, t: dict[str, float]) -> Detection:
        t0 = time.perf_counter()
        det = self.detector.infer(img)
        t["detect"] = (time.perf_counter() - t0) * 1e3
        return det

    def _align_and_assess(self, img: np.ndarray, det: Detection,
                          t: dict[str, float]) -> tuple[np.ndarray, list[Quality]]:
        """Aligned 112x112 crops of the detected faces and their quality, timed as 'align' and 'quality'."""
        t0 = time.perf_counter()
        crops = align_faces(img, det.landmarks)
        t["align"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        quals = [assess(c, b, s, lm) for c, b, s, lm in zip(crops, det.boxes, det.scores, det.landmarks, strict=True)]
        t["quality"] = (time.perf_counter() - t0) * 1e3
        return crops, quals

    def _embed(self, crops: np.ndarray, t: dict[str, float]) -> np.ndarray | None:
        if self.embedder is None or len(crops) == 0:
            t["embed"] = 0.0
            return None
        t0 = time.perf_counter()
        emb = self.embedder.infer(crops)
        t["embed"] = (time.perf_counter() - t0) * 1e3
        return emb

    def _search(self, emb: np.ndarray | None, matcher: Matcher | None, t: dict[str, float]) -> list[Any]:
        if emb is None or matcher is None or len(emb) == 0:
            t["search"] = 0.0
            return [None] * (0 if emb is None else len(emb))
        _one_search_thread()
        t0 = time.perf_counter()
        matches = list(matcher(emb))
        t["search"] = (time.perf_counter() - t0) * 1e3
        if len(matches) != len(emb):
            raise RuntimeError(f"matcher returned {len(matches)} matches for {len(emb)} embeddings")
        return matches

    # -- public --------------------------------------------------------------------------------------------------

    def process(self, frame_bgr: Any, matcher: Matcher | None = None) -> FrameResult:
        """One frame of a stream. Faces carry a track id; ``name`` is set only once the track's vote is decided
        (``Face.voted``); ``embedding`` only on frames where the track was embedded."""
        t: dict[str, float] = {}
        img, err = self._check(frame_bgr)
        det = None
        if img is not None:
            try:
                det = self._detect(img, t)
            except Exception as exc:  # never let one frame take the stream down
                log.exception("detection failed")
                err = f"detection failed: {exc}"
        return self._after_detection(img, err, det, t, matcher)

    def process_stream(self, frames: Iterable[Any], matcher: Matcher | None = None,
                       workers: int | None = None) -> Iterator[FrameResult]:
        """``process`` over a sequence of frames (a video file), results in order. With ``workers`` > 1 the
        frames ahead are detected in parallel, one single-threaded detector session per worker, while this
        thread tracks, embeds and votes in frame order: detection is most of the work and scales across frames
        far better than inside one small network. ``workers`` None: ``performance.threads`` (0: all cores)."""
        n = workers if workers is not None else (self._threads or os.cpu_count() or 1)
        if n <= 1:
            for f in frames:
                yield self.process(f, matcher)
            return
        free: queue.SimpleQueue[RetinaFaceDetector] = queue.SimpleQueue()
        for d in self._detector_pool(n):
            free.put(d)

        def detect(img: np.ndarray) -> tuple[Detection, float]:
            d = free.get()
            try:
                t0 = time.perf_counter()
                return d.infer(img), (time.perf_counter() - t0) * 1e3
            finally:
                free.put(d)

        pending: deque = deque()
        it = iter(frames)
        with ThreadPoolExecutor(n, thread_name_prefix="fdface-detect") as ex:

            def submit_next() -> bool:
                try:
                    f = next(it)
                except StopIteration:
                    return False
                img, err = self._check(f)
                pending.append((img, err, ex.submit(detect, img) if img is not None else None))
                return True

            for _ in range(n + 1):  # a short look-ahead: every worker busy, memory bounded
                if not submit_next():
                    break
            while pending:
                img, err, fut = pending.popleft()
                submit_next()
                t: dict[str, float] = {}
                det = None
                if fut is not None:
                    try:
                        det, t["detect"] = fut.result()
                    except Exception as exc:
                        log.exception("detection failed")
                        err = f"detection failed: {exc}"
                yield self._after_detection(img, err, det, t, matcher)

    def _detector_pool(self, n: int) -> list[RetinaFaceDetector]:
        """``n`` single-threaded detector sessions with the current settings (kept for the next stream)."""
        d = self._settings.detector
        while len(self._pool) < n:
            self._pool.append(RetinaFaceDetector.from_settings(d, threads=1))
        for det in self._pool:
            _apply_detector_settings(det, d)
        return self._pool[:n]

    def _after_detection(self, img: np.ndarray | None, err: str | None, det: Detection | None,
                         t: dict[str, float], matcher: Matcher | None) -> FrameResult:
        """Track, align, assess, embed what needs it, search, vote: the part of a frame that runs in order."""
        self.frame_index += 1
        fi = self.frame_index
        if img is None or det is None:
            size = (0, 0) if img is None else (img.shape[1], img.shape[0])
            return FrameResult(error=err, notice=self.notice, frame_index=fi, image_size=size,
                               timings_ms={**t, "total": t.get("detect", 0.0)})
        size = (img.shape[1], img.shape[0])
        t_start = time.perf_counter()
        try:
            t0 = time.perf_counter()
            ids = self.tracker.associate(det.boxes, det.landmarks, fi)
            t["track"] = (time.perf_counter() - t0) * 1e3
            crops, quals = self._align_and_assess(img, det, t)
            todo = [i for i in range(len(det)) if self.embedder is not None
                    and self.tracker.needs_embedding(ids[i], quals[i].overall, fi)]
            emb = self._embed(crops[todo], t) if todo else self._embed(crops[:0], t)
            matches = self._search(emb, matcher, t) if todo else self._search(None, matcher, t)
            t0 = time.perf_counter()
            embedded: dict[int, np.ndarray] = {}
            for k, i in enumerate(todo):
                pid, name, sim = match_decision(matches[k] if matcher is not None else None)
                self.tracker.observe(ids[i], fi, emb[k], quals[i].overall, pid, name, sim)
                embedded[i] = emb[k]
            faces = []
            for i in range(len(det)):
                tr = self.tracker.tracks[ids[i]]
                voted = tr.voted and matcher is not None
                faces.append(Face(
                    box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i], crop=crops[i],
                    quality=quals[i], embedding=embedded.get(i), track_id=ids[i],
                    name=tr.name if voted else None, person_id=tr.person_id if voted else None,
                    similarity=tr.similarity if voted else 0.0,
                    voted=voted, votes=len(tr.votes), embedded=i in embedded,
                ))
            t["track"] += (time.perf_counter() - t0) * 1e3
        except Exception as exc:  # never let one frame take the stream down
            log.exception("frame %d failed", fi)
            return FrameResult(error=f"processing failed: {exc}", notice=self.notice, frame_index=fi,
                               image_size=size, timings_ms=t)
        t["total"] = t.get("detect", 0.0) + (time.perf_counter() - t_start) * 1e3
        return FrameResult(faces=tuple(faces), timings_ms=t, notice=self.notice, frame_index=fi, image_size=size)

    def analyze_still(self, image_bgr: Any, matcher: Matcher | None = None) -> FrameResult:
        """Every face of one photo with crop, quality and embedding; no tracking. With a ``matcher`` the faces
        are named directly by the matcher's decision (a photo has no frames to vote over)."""
        t: dict[str, float] = {}
        t_start = time.perf_counter()
        img, err = self._check(image_bgr)
        if img is None:
            return FrameResult(error=err, notice=self.notice, timings_ms={"total": 0.0})
        size = (img.shape[1], img.shape[0])
        try:
            det = self._detect(img, t)
            crops, quals = self._align_and_assess(img, det, t)
            emb = self._embed(crops, t)
            matches = self._search(emb, matcher, t)
            faces = []
            for i in range(len(det)):
                pid, name, sim = match_decision(matches[i] if matches else None)
                faces.append(Face(
                    box=det.boxes[i], score=float(det.scores[i]), landmarks=det.landmarks[i], crop=crops[i],
                    quality=quals[i], embedding=None if emb is None else emb[i], name=name, person_id=pid,
                    similarity=sim,
                    voted=matcher is not None and emb is not None, embedded=emb is not None,
                ))
        except Exception as exc:
            log.exception("still image failed")
            return FrameResult(error=f"processing failed: {exc}", notice=self.notice, image_size=size, timings_ms=t)
        t["total"] = (time.perf_counter() - t_start) * 1e3
        return FrameResult(faces=tuple(faces), timings_ms=t, notice=self.notice, image_size=size)
