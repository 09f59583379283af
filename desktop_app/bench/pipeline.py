"""End-to-end pipeline benchmark over a video: decode + detect + align + quality + embed + search + track.

Driven by ``fdface bench pipeline``. Each configuration (threads, embedder) runs over the whole video
``repeats`` times after a short warm-up; the reported FPS is the median repeat's frames / wall-clock seconds,
decoding included; per-stage figures are mean milliseconds per frame over all repeats.
"""

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.bench.common import machine_basics
from desktop_app.config import Settings
from desktop_app.gallery.index import GalleryIndex
from desktop_app.manifest import ModelEntry
from desktop_app.vision.media import MediaError, open_video
from desktop_app.vision.pipeline import Pipeline
from desktop_app.vision.types import Matcher

STAGES = ("decode", "detect", "align", "quality", "embed", "search", "track")
WARMUP_FRAMES = 10


@dataclass
class BenchResult:
    label: str
    threads: int
    frames: int
    repeats: int
    fps: float  # median over repeats, decode included
    fps_all: list[float]
    stage_ms: dict[str, float]  # mean per frame
    faces_per_frame: float
    embeddings_per_frame: float
    named_per_frame: float
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def synthetic_gallery(dim: int, people: int = 100, per_person: int = 5, seed: int = 0) -> GalleryIndex:
    """A gallery of random unit templates (so the search stage costs what a real one of that size costs)."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((people * per_person, dim)).astype(np.float32)
    idx = GalleryIndex(dim, names={p: f"person-{p}" for p in range(people)})
    idx.add(np.arange(len(emb)), np.repeat(np.arange(people), per_person), emb)
    return idx


def teacher_entry(path: str | Path) -> ModelEntry:
    """A manifest entry for an ONNX embedder given only as a file (the comparison run): RGB, (x - 127.5) / 128,
    output width read from the model."""
    import onnxruntime as ort

    p = Path(path).resolve()
    if not p.is_file():
        raise MediaError(f"embedder model not found: {p}")
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    dim = sess.get_outputs()[0].shape[-1]
    size = sess.get_inputs()[0].shape[-1]
    return ModelEntry(name=p.stem, file=str(p), output_dim=int(dim) if isinstance(dim, int) else 512,
                      input_size=int(size) if isinstance(size, int) else 112)


def _frames(video: str | Path, max_frames: int | None, threaded: bool, sums: dict[str, float]) -> Iterator:
    """Decoded frames; with ``threaded`` a reader thread decodes ahead into a small queue (as the app's capture
    does), and ``sums["decode"]`` then counts the time the pipeline waited for a frame."""
    cap = open_video(video)
    limit = max_frames if max_frames is not None else 1 << 62
    if not threaded:
        try:
            for _ in range(limit):
                t0 = time.perf_counter()
                ok, frame = cap.read()
                sums["decode"] += (time.perf_counter() - t0) * 1e3
                if not ok:
                    return
                yield frame
        finally:
            cap.release()
        return
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def reader() -> None:
        try:
            for _ in range(limit):
                ok, frame = cap.read()
                if not ok or stop.is_set():
                    break
                q.put(frame)
        finally:
            q.put(None)

    th = threading.Thread(target=reader, name="bench-decode", daemon=True)
    th.start()
    try:
        while True:
            t0 = time.perf_counter()
            frame = q.get()
            sums["decode"] += (time.perf_counter() - t0) * 1e3
            if frame is None:
                return
            yield frame
    finally:
        stop.set()
        while th.is_alive():  # drain so the reader can finish its put()
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        th.join()
        cap.release()


def run_once(pipe: Pipeline, video: str | Path, matcher: Matcher | None, max_frames: int | None,
             decode_thread: bool = False, workers: int = 1) -> tuple[int, float, dict, list]:
    """One pass over the video; (frames, wall seconds, summed stage ms, per-frame (faces, embedded, named))."""
    pipe.reset_tracking()
    sums = dict.fromkeys(STAGES, 0.0)
    counts = []
    t_start = time.perf_counter()
    n = 0
    for r in pipe.process_stream(_frames(video, max_frames, decode_thread, sums), matcher, workers=workers):
        for k in STAGES[1:]:
            sums[k] += r.timings_ms.get(k, 0.0)
        counts.append((len(r.faces), sum(f.embedded for f in r.faces), len(r.named())))
        n += 1
    return n, time.perf_counter() - t_start, sums, counts


@contextlib.contextmanager
def single_threaded_libraries() -> Iterator[None]:
    """OpenCV (resize, warp), FFmpeg decoding and FAISS on one thread, for the one-thread figure."""
    import cv2

    old_cv = cv2.getNumThreads()
    old_env = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    faiss_threads = None
    try:
        import faiss

        faiss_threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover
        faiss = None
    cv2.setNumThreads(1)
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "threads;1"
    try:
        yield
    finally:
        cv2.setNumThreads(old_cv)
        if old_env is None:
            os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
        else:
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = old_env
        if faiss is not None and faiss_threads:
            faiss.omp_set_num_threads(faiss_threads)


def bench(video: str | Path, entry: ModelEntry | None, threads: int, repeats: int = 3, label: str = "",
          settings: Settings | None = None, people_matcher: Matcher | None = None, max_frames: int | None = None,
          decode_thread: bool = False, intra_op: bool = False) -> BenchResult:
    """``threads`` 1: everything on one thread (ONNX Runtime, OpenCV, FFmpeg, FAISS). ``threads`` N > 1 or 0
    (all cores): N frames detected in parallel by single-threaded sessions (``Pipeline.process_stream``), or
    with ``intra_op`` one frame at a time with N ONNX Runtime threads per network."""
    settings = settings or Settings()
    n = threads or os.cpu_count() or 1
    workers = 1 if (n == 1 or intra_op) else n
    pipe = Pipeline(settings, entry, threads=threads if intra_op else 1)
    matcher = people_matcher
    if matcher is None and pipe.embedder is not None:
        gallery = synthetic_gallery(pipe.embedder.dim)
        r = pipe.settings.recognition
        matcher = lambda e: gallery.decide(e, r.threshold, r.margin, rule=r.rule)  # noqa: E731
    ctx = single_threaded_libraries() if n == 1 else contextlib.nullcontext()
    with ctx:
        run_once(pipe, video, matcher, WARMUP_FRAMES, decode_thread, workers)
        fps, totals, allc, frames = [], dict.fromkeys(STAGES, 0.0), [], 0
        for _ in range(max(1, repeats)):
            nf, secs, sums, counts = run_once(pipe, video, matcher, max_frames, decode_thread, workers)
            if nf == 0:
                raise MediaError(f"{video} holds no decodable frame")
            fps.append(nf / secs)
            frames = nf
            for k in STAGES:
                totals[k] += sums[k]
            allc.extend(counts)
    nc = max(len(allc), 1)
    c = np.asarray(allc, np.float64).reshape(-1, 3)
    mode = "one thread" if n == 1 else (f"intra-op x{n}" if intra_op else f"{n} frame workers")
    return BenchResult(
        label=label or (entry.name if entry else (pipe.model_entry.name if pipe.model_entry else "detect-only")),
        threads=threads, frames=frames, repeats=len(fps), fps=statistics.median(fps), fps_all=fps,
        stage_ms={k: v / nc for k, v in totals.items()},
        faces_per_frame=float(c[:, 0].mean()) if len(c) else 0.0,
        embeddings_per_frame=float(c[:, 1].mean()) if len(c) else 0.0,
        named_per_frame=float(c[:, 2].mean()) if len(c) else 0.0,
        info={"cpu_count": os.cpu_count(), "notice": pipe.notice, "decode_thread": decode_thread, "mode": mode,
              "detector_input": pipe.detector.input_size(*_video_size(video)[::-1])},
    )


def _video_size(video: str | Path) -> tuple[int, int]:
    import cv2

    cap = open_video(video)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def format_table(results: list[BenchResult]) -> str:
    head = f"{'embedder':<16}{'threads':<18}{'frames':>7}{'FPS':>8}" + "".join(f"{s:>8}" for s in STAGES)
    head += f"{'faces/f':>9}{'emb/f':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        line = f"{r.label:<16}{r.info.get('mode', r.threads):<18}{r.frames:>7}{r.fps:>8.1f}"
        line += "".join(f"{r.stage_ms[s]:>8.2f}" for s in STAGES)
        line += f"{r.faces_per_frame:>9.2f}{r.embeddings_per_frame:>7.2f}"
        lines.append(line)
    lines.append("(stage columns: mean ms per frame, on the thread that ran them; with frame workers, detection of\n"
                 " several frames overlaps, so the columns add up to more than 1000 / FPS. FPS: median repeat, wall\n"
                 " clock, decoding included)")
    return "\n".join(lines)


def machine_info() -> dict[str, str]:
    import platform

    import cv2
    import onnxruntime as ort

    return {**machine_basics(), "versions": f"Python {platform.python_version()}, onnxruntime {ort.__version__}, "
                                            f"OpenCV {cv2.__version__}"}


def render_markdown(video: str | Path, results: list[BenchResult], command: str, machine: dict[str, str],
                    targets: dict[int, float] | None = None, provisional: bool = False) -> str:
    """A docs/BENCHMARKS.md section: what ran, on what, and the table."""
    r0 = results[0]
    w, h = r0.info["detector_input"][::-1]
    lines = [f"## Recognition pipeline end to end: {Path(video).name} (`fdface bench pipeline`)", ""]
    if provisional:
        lines += ["> **Provisional**: taken while other work loaded the CPU; rerun with the command below.", ""]
    lines += [
        f"Command: `{command}`  ",
        f"Date: {machine['date']}; CPU: {machine['cpu']}; load average at start: {machine['load']}; "
        f"{machine['versions']}.  ",
        f"{r0.frames} frames (the whole video unless --max-frames), detector input {w}x{h}, {r0.repeats} "
        "passes per row after a "
        f"{WARMUP_FRAMES}-frame warm-up; FPS = frames / wall-clock seconds of the median pass, decoding included. "
        "Stage columns: mean ms per frame on the thread that ran the stage (with frame workers, detection of "
        "several frames overlaps, so they add up to more than 1000 / FPS). decode: reading the next frame. "
        "search: FAISS over the gallery (a synthetic 100 people x 5 templates unless --people). One thread: "
        "ONNX Runtime, OpenCV, FFmpeg and FAISS each on one thread. N frame workers: N frames detected in "
        "parallel by single-threaded sessions while one thread tracks, embeds, searches and votes in order.",
        "",
        "| embedder | threads | FPS | " + " | ".join(f"{s} ms" for s in STAGES) + " | faces / frame | "
        "embeddings / frame |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|---|",
    ]
    for r in results:
        lines.append(f"| {r.label} | {r.info.get('mode', r.threads)} | {r.fps:.1f} | "
                     + " | ".join(f"{r.stage_ms[s]:.2f}" for s in STAGES)
                     + f" | {r.faces_per_frame:.2f} | {r.embeddings_per_frame:.2f} |")
    if targets:
        lines.append("")
        for th, want in targets.items():
            got = [r for r in results if r.threads == th and r.label == r0.label]
            name = "one thread" if th == 1 else ("all cores" if th == 0 else f"{th} threads")
            if got:
                verdict = "met" if got[0].fps >= want else "not met"
                lines.append(f"- Target {name}: at least {want:g} FPS; measured {got[0].fps:.1f} ({verdict}).")
    return "\n".join(lines) + "\n"
