"""How fast the desktop app shows a video, and how responsive its window stays meanwhile.

    .venv/bin/python scripts/bench_gui.py ../shared/media/video/short_hamilton_clip.mp4 --threads 1,0 --repeats 3 \\
        --write docs/BENCHMARKS.md

Each run starts the real app (AppController: main window offscreen, a fresh temporary database, the shipped
models) on the video, unpaced (frames as fast as the vision thread takes them), and measures until the end of
the video:

- shown FPS: processed frames painted in the window per second, from the first frame shown to the last;
- the per-stage milliseconds the pipeline reports (mean over the frames);
- event-loop latency: a 10 ms QTimer on the GUI thread; the gaps between its ticks (median, 99th percentile,
  longest) say how long the GUI thread was ever kept from reacting.

The figure includes decoding, inference, the copy to a QImage, the signal to the GUI thread and painting; the
headless pipeline alone is `fdface bench pipeline`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MARKER = "bench-gui"
DEFAULT_VIDEO = REPO.parent / "shared" / "media" / "video" / "short_hamilton_clip.mp4"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def one_run(app, video: str, threads: int, timeout_s: float) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from desktop_app.config import Settings
    from desktop_app.ui.controller import AppController

    tmp = Path(tempfile.mkdtemp(prefix="fdface-benchgui-"))
    settings = (Settings().with_changes("storage", database_url=f"sqlite:///{tmp / 'bench.db'}")
                .with_changes("performance", threads=threads).with_changes("capture", source=""))
    ctl = AppController(settings, tmp / "settings.toml", source="", pace=False, camera_lister=lambda: [])
    ready: list[int] = []
    ctl.storeReady.connect(lambda: ready.append(1))
    ctl.start()
    clock = QElapsedTimer()
    clock.start()
    while not ready and clock.elapsed() < timeout_s * 1000:
        app.processEvents()
        time.sleep(0.005)
    shown: list[float] = []
    stages: dict[str, list[float]] = {}

    def on_packet(pk) -> None:
        shown.append(time.perf_counter())
        for k, v in pk.timings_ms.items():
            stages.setdefault(k, []).append(v)

    ctl.packetShown.connect(on_packet)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1e3)
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    ctl.open_source(video)
    clock.restart()
    while not ctl.window.view.message.startswith("End of") and clock.elapsed() < timeout_s * 1000:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    ctl.shutdown()
    ctl.window.close()
    if len(shown) < 2:
        raise SystemExit(f"the app showed {len(shown)} frame(s) of {video} in {timeout_s:.0f} s")
    g = sorted(gaps[1:]) or [0.0]
    return {
        "threads": threads, "frames": len(shown), "fps": (len(shown) - 1) / (shown[-1] - shown[0]),
        "stages": {k: statistics.fmean(v) for k, v in stages.items()},
        "gap_p50": g[len(g) // 2], "gap_p99": g[min(len(g) - 1, int(len(g) * 0.99))], "gap_max": g[-1],
        "notice": ctl.model_notice or "",
        "model": ctl.entry.name if ctl.entry else "none",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    ap.add_argument("--threads", default="1,0", help="ONNX Runtime threads per run, comma-separated (0: all cores)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per thread count; the median-FPS run is reported")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--write", metavar="MD", help="replace this benchmark's section in MD (docs/BENCHMARKS.md)")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop_app.ui.qtenv import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtCore import qVersion
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["fdface-bench-gui"])
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    results = []
    for th in (int(x) for x in args.threads.split(",")):
        runs = [one_run(app, args.video, th, args.timeout) for _ in range(max(1, args.repeats))]
        runs.sort(key=lambda r: r["fps"])
        best = runs[len(runs) // 2]
        best["all_fps"] = [r["fps"] for r in runs]
        results.append(best)
        print(f"threads={th}: {best['fps']:.1f} FPS shown (runs {', '.join(f'{f:.1f}' for f in best['all_fps'])}), "
              f"event loop gap p50 {best['gap_p50']:.0f} ms, p99 {best['gap_p99']:.0f} ms, "
              f"max {best['gap_max']:.0f} ms", flush=True)
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    body = section(args, results, load0, load1, qVersion())
    print(body)
    if args.write:
        from desktop_app.bench.common import write_section

        print(f"wrote {write_section(args.write, body, MARKER)}")
    return 0


def section(args, results: list[dict], load0, load1, qt: str) -> str:
    video = Path(args.video).name
    cmd = (f".venv/bin/python scripts/bench_gui.py ../shared/media/video/{video} --threads {args.threads} "
           f"--repeats {args.repeats} --write docs/BENCHMARKS.md")
    stage_names = ["detect", "align", "quality", "embed", "search", "track", "total"]
    lines = [
        f"## Desktop app: frames shown and event-loop latency, {video} (`scripts/bench_gui.py`)",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical cores; load average {load0[0]:.1f} before, "
        f"{load1[0]:.1f} after. Python {platform.python_version()}, Qt {qt}, offscreen window, model "
        f"{results[0]['model']}{' (' + results[0]['notice'] + ')' if results[0]['notice'] else ''}; "
        f"{args.repeats} run(s) per row, the median-FPS run shown.",
        "",
        "    " + cmd,
        "",
        "| threads | frames | FPS shown (runs) | " + " | ".join(f"{s} ms" for s in stage_names)
        + " | loop gap p50 / p99 / max ms |",
        "|---|---|---|" + "---|" * len(stage_names) + "---|",
    ]
    for r in results:
        name = "all" if r["threads"] == 0 else str(r["threads"])
        runs = ", ".join(f"{f:.1f}" for f in r["all_fps"])
        st = " | ".join(f"{r['stages'].get(s, 0.0):.1f}" for s in stage_names)
        lines.append(f"| {name} | {r['frames']} | {r['fps']:.1f} ({runs}) | {st} | "
                     f"{r['gap_p50']:.0f} / {r['gap_p99']:.0f} / {r['gap_max']:.0f} |")
    lines += ["", "FPS shown: processed frames painted in the window per second (decoding, detection, tracking, "
              "embedding when a track needs it, the copy to the GUI and painting, with an empty gallery). Loop "
              "gap: time between ticks of a 10 ms timer on the GUI thread while the video plays."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
