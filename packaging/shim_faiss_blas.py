"""Let FAISS use NumPy's OpenBLAS: replace FAISS's own OpenBLAS (37 MB) in a Linux bundle by a small shim.

FAISS's wheel vendors an OpenMP OpenBLAS (``faiss_cpu.libs/libopenblaso-r0-*.so``) with 32-bit integers; NumPy's
wheel vendors another OpenBLAS (``numpy.libs/libscipy_openblas64_-*.so``) with 64-bit integers and prefixed names
(``scipy_sgemm_64_``), so the two cannot simply be merged (dedupe_libs.py leaves them apart). FAISS imports only
14 BLAS/LAPACK routines; ``blas_shim/lp64_to_ilp64.c`` implements those 14 by widening the integers and calling
NumPy's copy. This script

1. finds the OpenBLAS that libfaiss needs and every library of the bundle that needs it (under its own name or a
   symlink's, as dedupe_libs.py leaves them); each one must import from it nothing but the shim's routines
   (``nm -D``), else nothing is changed (the wheel OpenCV imports 16 more, cblas_sgemm, sgesdd_ ...: the shim
   is for the small OpenCV build, packaging/build_opencv_small.sh);
2. compiles the shim with ``cc`` under the OpenBLAS's file name and soname, linked to NumPy's copy through
   ``$ORIGIN/../numpy.libs``;
3. replaces the OpenBLAS (and its symlinks) by the shim and removes the libraries only it needed (libgfortran,
   libquadmath of FAISS's wheel).

Correctness is checked by tests/test_packaging.py (FAISS's flat search, PCA, random rotation, OPQ and least-squares
training through the shim against the same calls through FAISS's own OpenBLAS) and, in the built bundle, by
``--self-test`` (a FAISS search of 64 queries, which runs through sgemm_, against NumPy).

    python packaging/shim_faiss_blas.py dist/fdface-attendance            # replace; prints the MB saved
    python packaging/shim_faiss_blas.py dist/fdface-attendance --dry-run  # say what would happen
    python packaging/shim_faiss_blas.py --build OUT.so --soname NAME --numpy-lib PATH   # only compile
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from dedupe_libs import needed, nm_symbols  # noqa: E402  (readelf / nm -D, the same helpers)

SOURCE = HERE / "blas_shim" / "lp64_to_ilp64.c"
# what the shim exports (checked with nm -D on every compiled copy): what libfaiss 1.15 imports from OpenBLAS
ROUTINES = frozenset({"sgemm_", "dgemm_", "sgemv_", "ssyrk_", "sgesvd_", "dgesvd_", "sgetrf_", "dgetrf_", "sgetri_",
                      "dgetri_", "dsyev_", "sgelsd_", "sgeqrf_", "sorgqr_"})
LIB = re.compile(r"\.so(\.\d+)*$")


def compile_shim(out: Path, soname: str, numpy_lib: Path, rpath: str) -> None:
    """cc the shim into ``out``: exports the 14 routines, needs ``numpy_lib`` by its file name."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler (cc) found")
    cmd = [cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(out), str(SOURCE),
           f"-Wl,-soname,{soname}", f"-L{numpy_lib.parent}", f"-l:{numpy_lib.name}", f"-Wl,-rpath,{rpath}",
           "-Wl,--no-undefined", "-Wl,--as-needed"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"compiling the BLAS shim failed:\n{r.stderr.strip()}")
    missing = ROUTINES - nm_symbols(out, undefined=False)
    if missing:
        raise RuntimeError(f"the compiled shim lacks {sorted(missing)}")


def _libs(inner: Path) -> list[Path]:
    return sorted(p for p in inner.rglob("*") if LIB.search(p.name) and (p.is_file() or p.is_symlink()))


def plan(bundle: Path) -> tuple[dict, str | None]:
    """What would be replaced, or why nothing is: ({blas, names, numpy, orphans}, None) or ({}, reason)."""
    inner = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    faiss = next(iter(sorted(inner.glob("faiss/libfaiss*.so"))), None)
    if faiss is None:
        return {}, "no faiss/libfaiss.so in the bundle"
    names = [n for n in needed(faiss) if n.startswith("libopenblas")]
    if len(names) != 1:
        return {}, f"libfaiss needs {len(names)} OpenBLAS libraries ({names}), expected one"
    libs = _libs(inner)
    blas = next((p for p in libs if p.name == names[0] and p.is_file() and not p.is_symlink()), None)
    if blas is None:
        hit = next((p for p in libs if p.name == names[0]), None)
        blas = hit.resolve() if hit is not None else None
    if blas is None or not blas.is_file():
        return {}, f"{names[0]} not found in the bundle"
    numpy_lib = next(iter(sorted(inner.glob("numpy.libs/libscipy_openblas64_*.so"))), None)
    if numpy_lib is None:
        return {}, "NumPy's libscipy_openblas64_ not found in the bundle"
    exported = nm_symbols(numpy_lib, undefined=False)
    lacking = sorted(r for r in ROUTINES if f"scipy_{r}64_" not in exported)
    if lacking:
        return {}, f"NumPy's OpenBLAS lacks {lacking}"
    # every name under which the OpenBLAS is reachable (its file and the symlinks dedupe_libs.py made to it)
    aliases = [p for p in libs if p == blas or (p.is_symlink() and p.resolve() == blas)]
    alias_names = {p.name for p in aliases}
    provided = nm_symbols(blas, undefined=False)
    for lib in libs:
        if lib.is_symlink() or lib in aliases or not (needed(lib) & alias_names):
            continue
        extra = (nm_symbols(lib, undefined=True) & provided) - ROUTINES
        if extra:
            shown = ", ".join(sorted(extra)[:6]) + (" ..." if len(extra) > 6 else "")
            return {}, (f"{lib.relative_to(inner)} imports {len(extra)} routines the shim does not provide "
                        f"({shown}): OpenBLAS kept")
    # libraries only the OpenBLAS needed (FAISS's libgfortran, then libquadmath), unless another library needs them
    removed = {blas}
    while True:
        users = set().union(*(needed(p) for p in libs if not p.is_symlink() and p not in removed))
        wanted = set().union(*(needed(r) for r in removed))
        more = {p for p in libs if p.parent == blas.parent and not p.is_symlink() and p not in removed
                and p.name in wanted and p.name not in users}
        if not more:
            break
        removed |= more
    orphans = sorted(removed - {blas})
    return {"inner": inner, "blas": blas, "aliases": aliases, "numpy": numpy_lib, "orphans": orphans}, None


def size(p: Path) -> int:
    return p.stat().st_size if p.is_file() and not p.is_symlink() else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", nargs="?", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--build", type=Path, help="only compile the shim to this file")
    ap.add_argument("--soname", help="with --build: the soname to give it")
    ap.add_argument("--numpy-lib", type=Path, help="with --build: NumPy's libscipy_openblas64_ to link to")
    a = ap.parse_args(argv)
    if a.build:
        if not (a.soname and a.numpy_lib):
            ap.error("--build needs --soname and --numpy-lib")
        compile_shim(a.build, a.soname, a.numpy_lib.resolve(), str(a.numpy_lib.resolve().parent))
        print(f"shim: {a.build} ({size(a.build) / 1e3:.0f} kB)")
        return 0
    if a.bundle is None:
        ap.error("give the bundle folder")
    if not (shutil.which("nm") and shutil.which("readelf")):
        print("shim_faiss_blas: nm/readelf not found (binutils): FAISS's OpenBLAS kept")
        return 0
    p, why = plan(a.bundle)
    if why:
        print(f"shim_faiss_blas: {why}")
        return 0
    blas, inner = p["blas"], p["inner"]
    rel = os.path.relpath(p["numpy"].parent, blas.parent)
    saved = size(blas) + sum(size(o) for o in p["orphans"])
    print(f"shim_faiss_blas: {blas.relative_to(inner)} -> shim over {p['numpy'].relative_to(inner)}; "
          f"removing {[str(o.relative_to(inner)) for o in p['orphans']]}")
    if a.dry_run:
        print(f"  (dry run) would save {saved / 1e6:.1f} MB")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / blas.name
        try:
            compile_shim(out, blas.name, p["numpy"], f"$ORIGIN/{rel}")
        except RuntimeError as e:
            print(f"shim_faiss_blas: {e}; FAISS's OpenBLAS kept")
            return 0
        saved -= size(out)
        blas.unlink()
        shutil.copy2(out, blas)
    for o in p["orphans"]:
        o.unlink()
    for link in _libs(inner):  # symlinks dedupe_libs.py made to a removed library
        if link.is_symlink() and not link.exists():
            link.unlink()
    print(f"  saved {saved / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
