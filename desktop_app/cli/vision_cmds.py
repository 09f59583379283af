"""`fdface detect`, `fdface identify` and `fdface bench pipeline`: the vision core from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.cli import CliError, bench_subparsers, frames_arg, threads_arg


def _settings(args: argparse.Namespace) -> Any:
    from desktop_app.config import ConfigError, Settings

    try:
        s = Settings.load(getattr(args, "config", None))
        if getattr(args, "score_threshold", None) is not None:
            s = s.with_changes("detector", score_threshold=args.score_threshold)
        if getattr(args, "max_side", None) is not None:
            s = s.with_changes("detector", max_side=args.max_side)
        if getattr(args, "threshold", None) is not None:
            s = s.with_changes("recognition", threshold=args.threshold)
        if getattr(args, "margin", None) is not None:
            s = s.with_changes("recognition", margin=args.margin)
        return s
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _entry(args: argparse.Namespace) -> Any:
    """The embedder entry named on the command line (--embedder-manifest / --model), or None: the default."""
    from desktop_app.manifest import ManifestError, load_manifest

    path = getattr(args, "embedder_manifest", None)
    if not path:
        return None
    try:
        entries = load_manifest(path)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    name = getattr(args, "model", None) or "fdfacenet"
    if name not in entries:
        raise CliError(f"no model {name!r} in {path} (has: {', '.join(sorted(entries)) or 'none'})")
    return entries[name]


def _draw(img: np.ndarray, faces: list[tuple[np.ndarray, float, np.ndarray, str]]) -> np.ndarray:
    import cv2

    out = img.copy()
    th = max(1, round(max(img.shape[:2]) / 600))
    for box, _score, lms, label in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 220, 0), th)
        for x, y in lms:
            cv2.circle(out, (int(round(x)), int(round(y))), th + 1, (0, 0, 255), -1)
        cv2.putText(out, label, (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * th, (0, 220, 0), th)
    return out


def _write_image(path: Path, img: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".jpg", img)
    if not ok:
        raise CliError(f"cannot encode {path} (use .jpg or .png)")
    buf.tofile(str(path))


# ----------------------------------------------------------------------------------------------- detect


def cmd_detect(args: argparse.Namespace) -> int:
    from desktop_app.vision.detector import RetinaFaceDetector
    from desktop_app.vision.media import MediaError, read_image

    s = _settings(args)
    det = RetinaFaceDetector.from_settings(s.detector, threads=args.threads)
    out_dir = None
    if args.out and len(args.images) > 1:
        out_dir = Path(args.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise CliError(f"--out {out_dir}: with several images, --out must be a folder")
    rows: list[dict] = []
    failed = 0
    for path in args.images:
        try:
            img = read_image(path)
        except MediaError as exc:
            print(f"fdface detect: skipped {exc}", file=sys.stderr)
            failed += 1
            continue
        d = det.infer(img)
        faces = []
        for i in range(len(d)):
            box = [round(float(v), 1) for v in d.boxes[i]]
            lms = [[round(float(x), 1), round(float(y), 1)] for x, y in d.landmarks[i]]
            rows.append({"image": str(path), "box": box, "score": round(float(d.scores[i]), 4), "landmarks": lms})
            faces.append((d.boxes[i], float(d.scores[i]), d.landmarks[i], f"{d.scores[i]:.2f}"))
        if not args.json:
            h, w = img.shape[:2]
            print(f"{path}: {len(d)} face(s) in {w}x{h}")
            for r in rows[len(rows) - len(d):]:
                lm = " ".join(f"({x:.0f},{y:.0f})" for x, y in r["landmarks"])
                print(f"  box {r['box']} score {r['score']:.3f} landmarks {lm}")
        if args.out:
            target = out_dir / f"{Path(path).stem}.annotated.jpg" if out_dir else Path(args.out)
            _write_image(target, _draw(img, faces))
    if args.json:
        print(json.dumps(rows, indent=None))
    if failed:
        print(f"fdface detect: {failed} of {len(args.images)} image(s) could not be read (named above)",
              file=sys.stderr)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------- identify


def enroll_folder(pipe: Any, people_dir: Path, log: Any = None) -> tuple[Any, dict[int, str]]:
    """An in-memory GalleryIndex of every sub-folder of ``people_dir`` (one person each, the largest face of
    each image as a template, through the same quality gate as ``fdface enroll``)."""
    from desktop_app.gallery.enroll import Refusal, choose_face
    from desktop_app.gallery.index import GalleryIndex
    from desktop_app.vision.media import MediaError, list_images, read_image

    folders = sorted(p for p in people_dir.iterdir() if p.is_dir()) if people_dir.is_dir() else []
    if not folders:
        raise CliError(f"--people {people_dir}: expected a folder with one sub-folder of photos per person")
    names: dict[int, str] = {}
    tids, pids, embs = [], [], []
    for pid, folder in enumerate(folders):
        names[pid] = folder.name
        got = 0
        for img_path in list_images(folder):
            try:
                r = pipe.analyze_still(read_image(img_path))
            except MediaError as exc:
                if log:
                    log(f"skipped {exc}")
                continue
            got_face = choose_face(r, str(img_path), largest=True)  # the gate `fdface enroll` applies
            if isinstance(got_face, Refusal):
                if log:
                    log(f"skipped {got_face}")
                continue
            tids.append(len(tids))
            pids.append(pid)
            embs.append(got_face.embedding)
            got += 1
        if got == 0 and log:
            log(f"no usable photo of {folder.name} in {folder}")
    if not embs:
        raise CliError(f"no face found in any photo under {people_dir}")
    index = GalleryIndex(pipe.embedder.dim, names=names)
    index.add(tids, pids, np.stack(embs))
    return index, names


def _face_row(source: str, f: Any, frame: int | None = None) -> dict:
    row = {"source": source, "name": f.name, "similarity": round(float(f.similarity), 4),
           "track": f.track_id, "box": [round(float(v), 1) for v in f.box], "score": round(float(f.score), 4)}
    if frame is not None:
        row["frame"] = frame
        row["voted"] = bool(f.voted)
    return row


def cmd_identify(args: argparse.Namespace) -> int:
    from desktop_app.vision.media import MediaError, is_image, is_video, iter_video, list_images, read_image
    from desktop_app.vision.pipeline import Pipeline

    s = _settings(args)
    sources = [Path(x) for x in args.source]
    missing = [str(x) for x in sources if not x.exists()]
    if missing:  # before the models load and the people are enrolled
        raise CliError(f"not found: {', '.join(missing)}")
    pipe = Pipeline(s, _entry(args), threads=args.threads)
    if not pipe.recognition_available:
        raise CliError(pipe.notice or "no recognition model installed")

    def note(msg: str) -> None:
        print(f"fdface identify: {msg}", file=sys.stderr)

    index, names = enroll_folder(pipe, Path(args.people), note)
    r = pipe.settings.recognition  # bound to the model: its calibrated threshold unless one was given
    matcher = lambda e: index.decide(e, r.threshold, r.margin, rule=r.rule)  # noqa: E731
    print(f"enrolled {len(names)} people, {len(index)} photos (threshold {r.threshold:.2f}, margin {r.margin:.2f})",
          file=sys.stderr)

    def show_still(label: str, img: np.ndarray) -> None:
        res = pipe.analyze_still(img, matcher)
        if res.error:
            print(f"{label}: {res.error}")
            return
        if args.json:
            for f in res.faces:
                print(json.dumps(_face_row(label, f)))
            return
        print(f"{label}: {len(res.faces)} face(s)")
        for f in res.faces:
            box = ",".join(f"{v:.0f}" for v in f.box)
            print(f"  {f.name or 'unknown':<16} similarity {f.similarity:.3f}  box {box}")

    def identify(src: Path) -> int:
        """Name the faces of one source; returns how many of its images could not be read."""
        failed = 0
        if src.is_dir():
            images = list_images(src)
            if not images:
                raise CliError(f"{src} holds no image")
            for p in images:
                try:
                    img = read_image(p)
                except MediaError as exc:
                    note(f"skipped {exc}")
                    failed += 1
                    continue
                show_still(str(p), img)
            if failed:
                note(f"{failed} of {len(images)} image(s) could not be read (named above)")
        elif is_video(src) or (src.is_file() and not is_image(src)):
            tracks: dict[int, dict] = {}
            try:
                for res in pipe.process_stream(iter_video(src, args.max_frames), matcher):
                    fi = res.frame_index
                    if res.error:
                        print(f"frame {fi}: {res.error}")
                        continue
                    for f in res.faces:
                        t = tracks.setdefault(f.track_id, {"first": fi, "last": fi, "name": None, "similarity": 0.0})
                        t["last"] = fi
                        changed = f.voted and f.name != t["name"]
                        if f.voted:
                            t["name"], t["similarity"] = f.name, f.similarity
                        if args.json and (args.every_frame or changed):
                            print(json.dumps(_face_row(str(src), f, fi)))
                        elif args.every_frame or changed:
                            print(f"frame {fi:>5}  track {f.track_id:>3}  {f.name or 'unknown':<16} "
                                  f"similarity {f.similarity:.3f}{'' if f.voted else '  (vote open)'}")
            except MediaError as exc:
                raise CliError(str(exc)) from None
            if not args.json:
                print(f"{len(tracks)} track(s):")
                for tid, t in sorted(tracks.items()):
                    print(f"  track {tid:>3}  frames {t['first']}-{t['last']}  {t['name'] or 'unknown':<16} "
                          f"similarity {t['similarity']:.3f}")
        elif src.is_file():
            try:
                img = read_image(src)
            except MediaError as exc:
                raise CliError(str(exc)) from None
            show_still(str(src), img)
        else:
            raise CliError(f"{src} not found")
        return failed

    failed = 0
    for src in sources:
        try:
            failed += identify(src)
        except CliError as exc:
            if len(sources) == 1:
                raise
            note(str(exc))  # one bad source of several: said, and the others still named
            failed += 1
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------- bench


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from desktop_app.bench import pipeline as bench
    from desktop_app.bench.common import write_section
    from desktop_app.vision.media import MediaError
    from desktop_app.vision.pipeline import Pipeline

    s = _settings(args)
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        raise CliError(f"--threads {args.threads!r}: expected a comma-separated list such as 1,0") from None
    entry = _entry(args)
    runs: list[tuple[str, Any]] = [("", entry)]
    if args.teacher:
        try:
            runs.append((f"teacher {Path(args.teacher).stem}"[:15], bench.teacher_entry(args.teacher)))
        except MediaError as exc:
            raise CliError(str(exc)) from None
    matcher_for = None
    if args.people:
        def matcher_for(pipe: Any) -> Any:
            index, _ = enroll_folder(pipe, Path(args.people))
            r = pipe.settings.recognition
            return lambda e: index.decide(e, r.threshold, r.margin, rule=r.rule)
    targets: dict[int, float] = {}
    for part in (args.targets or "").split(","):
        if part.strip():
            try:
                th, fps = part.split(":")
                targets[int(th)] = float(fps)
            except ValueError:
                raise CliError(f"--targets {args.targets!r}: expected THREADS:FPS pairs such as 1:50,0:100") from None
    machine = bench.machine_info()  # the load average before this run starts
    results = []
    for label, e in runs:
        for th in threads:
            try:
                matcher = matcher_for(Pipeline(s, e, threads=th)) if matcher_for else None
                res = bench.bench(args.video, e, th, repeats=args.repeats, settings=s, people_matcher=matcher,
                                  max_frames=args.max_frames, label=label or (e.name if e else ""),
                                  decode_thread=args.decode_thread, intra_op=args.intra_op)
            except MediaError as exc:
                raise CliError(str(exc)) from None
            results.append(res)
            table = bench.format_table([res]).splitlines()
            print("\n".join(table[:3] if len(results) == 1 else table[2:3]), flush=True)
    print()
    print(f"video {args.video}  detector input {results[0].info['detector_input'][::-1]} (w x h)  "
          f"cores {results[0].info['cpu_count']}")
    print(bench.format_table(results))
    if results[0].info.get("notice"):
        print(f"note: {results[0].info['notice']}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_json() for r in results], indent=2))
    if args.write:
        command = _bench_command(args)
        body = bench.render_markdown(args.video, results, command, machine, targets, args.provisional)
        marker = f"bench-pipeline-{Path(args.video).stem}" + ("-intra-op" if args.intra_op else "")
        path = write_section(args.write, body, marker)
        print(f"wrote the section to {path}")
    return 0


def _bench_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (as parsed, so it is the same however it was invoked)."""
    import shlex

    parts = ["fdface", "bench", "pipeline", args.video, "--repeats", str(args.repeats), "--threads", args.threads]
    for flag in ("embedder_manifest", "model", "teacher", "people", "max_frames", "score_threshold", "max_side",
                 "config", "targets"):
        v = getattr(args, flag)
        if v is not None:
            parts += ["--" + flag.replace("_", "-"), str(v)]
    parts += [f"--{f.replace('_', '-')}" for f in ("intra_op", "decode_thread") if getattr(args, f)]
    if args.write:
        parts += ["--write", args.write]
    return shlex.join(parts)


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("detect", help="find faces in images: boxes, scores, 5 landmarks")
    d.add_argument("images", nargs="+", metavar="IMAGE")
    d.add_argument("--json", action="store_true", help="one JSON array, one object per face")
    d.add_argument("--out", help="annotated image (a folder when several images are given)")
    d.add_argument("--score-threshold", type=float, help="detection score threshold (default: settings)")
    d.add_argument("--max-side", type=int, help="detect large images at most this big (default: settings)")
    d.add_argument("--threads", type=threads_arg, default=0, help="ONNX Runtime threads (0: all cores)")
    d.add_argument("--config", help="settings file (default: the user's)")
    d.set_defaults(func=cmd_detect)

    i = sub.add_parser("identify", help="enrol a folder of people in memory, then name the faces of a source")
    i.add_argument("--people", required=True, help="folder with one sub-folder of face photos per person")
    i.add_argument("source", metavar="SOURCE", nargs="+",
                   help="images, folders of images or video files (several may be given)")
    i.add_argument("--threshold", type=float, help="similarity threshold (default: settings, else the model's)")
    i.add_argument("--margin", type=float, help="margin over the next person (default: settings, else the model's)")
    i.add_argument("--embedder-manifest", help="manifest.json of the embedder (default: the installed models)")
    i.add_argument("--model", help="entry of that manifest (default: fdfacenet)")
    i.add_argument("--json", action="store_true", help="one JSON object per face and line")
    i.add_argument("--every-frame", action="store_true", help="video: print every face of every frame")
    i.add_argument("--max-frames", type=frames_arg, help="video: stop after this many frames")
    i.add_argument("--threads", type=threads_arg, default=0, help="ONNX Runtime threads (0: all cores)")
    i.add_argument("--config", help="settings file (default: the user's)")
    i.set_defaults(func=cmd_identify)

    b = bench_subparsers(sub).add_parser("pipeline", help="end-to-end FPS of the pipeline over a video")
    b.add_argument("video", metavar="VIDEO")
    b.add_argument("--repeats", type=int, default=3, help="passes over the video per configuration")
    b.add_argument("--threads", default="1,0",
                   help="comma-separated thread counts (0: all cores); 1 runs every library on one thread")
    b.add_argument("--embedder-manifest", help="manifest.json of the embedder (default: the installed models)")
    b.add_argument("--model", help="entry of that manifest (default: fdfacenet)")
    b.add_argument("--teacher", help="an ONNX embedder file to compare with (RGB, (x-127.5)/128)")
    b.add_argument("--people", help="enrol this folder as the gallery (default: 100 random people x 5)")
    b.add_argument("--max-frames", type=frames_arg, help="stop each pass after this many frames (quick checks)")
    b.add_argument("--score-threshold", type=float, help="detection score threshold (default: settings)")
    b.add_argument("--max-side", type=int, help="detection max side (default: settings)")
    b.add_argument("--intra-op", action="store_true",
                   help="for thread counts above 1: one frame at a time with that many ONNX Runtime threads per "
                        "network, instead of that many frames detected in parallel")
    b.add_argument("--decode-thread", action="store_true",
                   help="decode on a reader thread ahead of the pipeline (as the app's capture does); the decode "
                        "column is then the time spent waiting for a frame")
    b.add_argument("--json", help="also write the results to this JSON file")
    b.add_argument("--write", metavar="MARKDOWN", help="write (or replace) this video's section in a markdown file "
                   "such as docs/BENCHMARKS.md")
    b.add_argument("--provisional", action="store_true", help="mark the written section as taken under load")
    b.add_argument("--targets", help="THREADS:FPS pairs to state as met / not met, e.g. 1:50,0:100")
    b.add_argument("--config", help="settings file (default: the user's)")
    b.set_defaults(func=cmd_bench_pipeline)
