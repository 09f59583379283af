"""Packaging figures for docs/BENCHMARKS.md: bundle size, .deb size, installed size, start-up time.

    python3 packaging/bench_startup.py --launcher /usr/bin/fdface-attendance \\
        --video ../shared/media/video/short_hamilton_clip.mp4 --repeats 5

Start-up time = from spawning the launcher to its first processed frame of the video (``--first-frame VIDEO``: the
desktop app starts as a user would start it, with its window offscreen, a fresh settings file and database, the
video as its source, and the frame counts once it has been detected, embedded and shown in the window; with
``--core`` the headless core alone: load the models, open the video, process one frame). Two figures per run: the
app's own report (seconds since its process started, read from /proc, to that frame) and the wall clock seen from
here (spawn to exit, which adds the shut-down).

*Cold* runs evict the app's files (bundle, models, video) from the page cache first (posix_fadvise DONTNEED; with
root also ``drop_caches``), like a first start after boot; *warm* runs follow each other. System libraries that
other programs keep in memory (libc, X11) stay cached either way, as on a desktop. The load average is printed:
figures taken while another job uses the cores are slower than on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_FRAME = re.compile(r"first frame: (\d+) faces; ([0-9.]+) s since.*recognition: (.*)$", re.M)
PKG = "fdface-attendance"


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def evict(paths: list[Path]) -> str:
    """Drop these files from the page cache; returns how."""
    n = 0
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    how = f"fadvise DONTNEED on {n} files"
    if os.geteuid() == 0:
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            how += " + drop_caches"
        except OSError:
            pass
    return how


def run_once(launcher: str, video: Path, threads: int, core: bool) -> tuple[float, float, int, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    cmd = [launcher, "--first-frame", str(video)] + (["--threads", str(threads)] if threads else [])
    cmd += ["--no-qt"] if core else []
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - t0
    m = FIRST_FRAME.search(r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return wall, float(m.group(2)), int(m.group(1)), m.group(3).strip()


def installed_kb(deb: Path | None) -> int | None:
    """The package's Installed-Size (KiB): from the .deb, else from dpkg's database when it is installed."""
    if deb and deb.is_file() and shutil.which("dpkg-deb"):
        r = subprocess.run(["dpkg-deb", "--field", str(deb), "Installed-Size"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip().isdigit():
            return int(r.stdout)
    if shutil.which("dpkg-query"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Installed-Size}", PKG], capture_output=True, text=True)
        status, _, size = r.stdout.partition("|")
        if r.returncode == 0 and status.endswith(" installed") and size.strip().isdigit():
            return int(size)
    return None


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launcher", default=f"/usr/bin/{PKG}",
                    help="the installed launcher, or dist/fdface-attendance/fdface-attendance")
    ap.add_argument("--bundle", type=Path, default=None,
                    help=f"the bundle folder (default: /opt/{PKG} when installed, else dist/{PKG})")
    ap.add_argument("--deb", type=Path, default=None, help="the .deb (default: the newest dist/*.deb)")
    ap.add_argument("--video", type=Path, default=REPO.parent / "shared/media/video/short_hamilton_clip.mp4")
    ap.add_argument("--repeats", type=int, default=5, help="cold + warm runs each (0: sizes only)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: the app's default, all cores)")
    ap.add_argument("--core", action="store_true", help="time the headless core only (--no-qt), not the desktop app")
    args = ap.parse_args(argv)
    if not args.video.is_file():
        print(f"bench_startup: video not found: {args.video}", file=sys.stderr)
        return 2
    launcher = shutil.which(args.launcher) or args.launcher
    if not Path(launcher).exists():
        print(f"bench_startup: launcher not found: {args.launcher} (install the .deb or pass --launcher)",
              file=sys.stderr)
        return 2
    bundle = args.bundle or next((p for p in (Path("/opt") / PKG, REPO / "dist" / PKG) if p.is_dir()), None)
    debs = sorted((REPO / "dist").glob(f"{PKG}_*.deb"), key=lambda p: p.stat().st_mtime)
    deb = args.deb or (debs[-1] if debs else None)

    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start")
    if bundle:
        print(f"bundle: {bundle}: {tree_bytes(bundle) / 1e6:.1f} MB")
    if deb and deb.is_file():
        comp = subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True).stdout.split()
        data = next((m for m in comp if m.startswith("data.tar")), "?") if shutil.which("ar") else "?"
        print(f"deb: {deb.name}: {deb.stat().st_size / 1e6:.1f} MB ({data})")
    kb = installed_kb(deb)
    if kb is not None:
        print(f"installed size (dpkg Installed-Size): {kb / 1024:.1f} MiB ({kb} KiB)")

    if args.repeats < 1:
        return 0  # sizes only
    cold_wall, cold_app, warm_wall, warm_app = [], [], [], []
    how = ""
    faces, recognition = 0, ""
    for _ in range(args.repeats):
        how = evict([p for p in (bundle, args.video) if p is not None])
        w, a, faces, recognition = run_once(launcher, args.video, args.threads, args.core)
        cold_wall.append(w)
        cold_app.append(a)
        w, a, _, _ = run_once(launcher, args.video, args.threads, args.core)
        warm_wall.append(w)
        warm_app.append(a)
    what = "headless core (--no-qt)" if args.core else "desktop app (window offscreen, fresh database)"
    print(f"timed: {what}, launcher {launcher}")
    print(f"cold start ({how}) to first processed frame: reported {fmt(cold_app)}; wall incl. exit {fmt(cold_wall)}")
    print(f"warm start to first processed frame: reported {fmt(warm_app)}; wall incl. exit {fmt(warm_wall)}")
    print(f"first frame of {args.video.name}: {faces} faces; recognition: {recognition}; "
          f"load average {os.getloadavg()[0]:.2f} at end")
    if "cannot" in recognition or recognition.startswith("no "):
        print("WARNING: the recognition model did not load; these timings leave out the embedder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
