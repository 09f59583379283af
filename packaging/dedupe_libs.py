"""Replace duplicate shared libraries in a one-folder bundle with relative symlinks (Linux/macOS builds).

Each wheel brings its own copies of some libraries (auditwheel renames them, so PyInstaller cannot tell they are the
same). Two kinds are merged here:

* byte-identical files, and files of one name in two wheels' ``*.libs/`` folders: auditwheel names a vendored
  library ``NAME-HASH.so...`` after the hash of the original file, so one name is one build; the copies differ
  only in what patchelf wrote into them (e.g. ``libgfortran-83c28eba.so.5.0.0`` of OpenCV and of FAISS);
* OpenBLAS builds of one version that differ only in their threading layer (OpenCV's pthreads
  ``libopenblasp-r0-*.3.15.so`` and FAISS's OpenMP ``libopenblaso-r0-*.3.15.so``, 37 MB each). The copy kept must
  define every symbol that the bundle's other libraries import from the one it replaces (checked with ``nm -D``);
  otherwise the pair is left alone. NumPy's ``libscipy_openblas64_`` is a different library (64-bit integers,
  prefixed symbols) and is never merged.

The dynamic loader opens the symlink under the name the dependent library asks for and finds the kept file. The
kept file's ``$ORIGIN`` is then the symlink's folder, so the libraries it needs from its own folder (FAISS's
``libgomp`` for the OpenMP OpenBLAS) get symlinks there too.
``dpkg-deb`` and ``du`` keep symlinks as links. Windows bundles are not touched (no symlinks in the installer).

    python packaging/dedupe_libs.py dist/fdface-attendance          # merge, print what was merged and the MB saved
    python packaging/dedupe_libs.py dist/fdface-attendance --dry-run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

LIB = re.compile(r"\.so(\.\d+)*$")
OPENBLAS = re.compile(r"^libopenblas[a-z]*-r\d+-[0-9a-f]+\.(?P<version>\d+(?:\.\d+)*)\.so$")


def shared_libs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and LIB.search(p.name))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def nm_symbols(path: Path, undefined: bool) -> set[str]:
    """Dynamic symbols a library defines (``undefined=False``) or imports (True); empty when nm fails."""
    flag = "--undefined-only" if undefined else "--defined-only"
    try:
        out = subprocess.run(["nm", "-D", flag, str(path)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def needed(path: Path) -> set[str]:
    try:
        out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def link(dup: Path, keep: Path, dry_run: bool) -> int:
    """Replace ``dup`` with a symlink to ``keep``, and link ``keep``'s neighbours that it needs next to ``dup``."""
    size = dup.stat().st_size
    if dry_run:
        return size
    dup.unlink()
    dup.symlink_to(os.path.relpath(keep, dup.parent))
    for name in needed(keep):
        there, here = keep.parent / name, dup.parent / name
        if there.exists() and not here.exists() and not here.is_symlink():
            here.symlink_to(os.path.relpath(there, dup.parent))
            print(f"  {here.name}: linked next to {dup.name} (needed by it)")
    return size


def identical(libs: list[Path]) -> list[tuple[Path, Path]]:
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in libs:
        by_size[p.stat().st_size].append(p)
    pairs = []
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p in group:
            by_hash[sha256(p)].append(p)
        for same in by_hash.values():
            pairs += [(dup, same[0]) for dup in same[1:]]
    return pairs


AUDITWHEEL = re.compile(r"-[0-9a-f]{8}(-[0-9a-f]{8})?\.so")


def same_build(libs: list[Path]) -> list[tuple[Path, Path]]:
    """Vendored libraries of one auditwheel name in different ``*.libs/`` folders."""
    by_name: dict[str, list[Path]] = defaultdict(list)
    for p in libs:
        if p.parent.name.endswith(".libs") and AUDITWHEEL.search(p.name):
            by_name[p.name].append(p)
    return [(dup, same[0]) for same in by_name.values() for dup in same[1:]]


def openblas_pairs(libs: list[Path]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(duplicate, kept) OpenBLAS pairs whose importers are satisfied by the kept copy; and why others were not."""
    by_version: dict[str, list[Path]] = defaultdict(list)
    for p in libs:
        m = OPENBLAS.match(p.name)
        if m:
            by_version[m["version"]].append(p)
    pairs, skipped = [], []
    for group in by_version.values():
        if len(group) < 2:
            continue
        # keep the OpenMP build when there is one (FAISS loads libgomp anyway), else the first
        group.sort(key=lambda p: (not p.name.startswith("libopenblaso"), str(p)))
        keep, defined = group[0], nm_symbols(group[0], undefined=False)
        for dup in group[1:]:
            users = [p for p in libs if dup.name in needed(p)]
            missing = set().union(*(nm_symbols(u, undefined=True) for u in users)) & nm_symbols(dup, False)
            missing -= defined
            if not defined or missing:
                skipped.append(f"{dup.name}: {keep.name} lacks {sorted(missing)[:5] or 'a symbol table'}")
            else:
                pairs.append((dup, keep))
    return pairs, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if os.name == "nt":
        print("dedupe_libs: nothing to do on Windows")
        return 0
    if not args.bundle.is_dir():
        print(f"dedupe_libs: no bundle at {args.bundle}", file=sys.stderr)
        return 2
    libs = shared_libs(args.bundle)
    pairs = identical(libs)
    pairs += [pair for pair in same_build(libs) if pair[0] not in {d for d, _ in pairs}]
    if shutil.which("nm") and shutil.which("readelf"):
        blas, skipped = openblas_pairs([p for p in libs if p not in {d for d, _ in pairs}])
    else:
        blas, skipped = [], ["nm/readelf not found (binutils): OpenBLAS copies left as they are"]
    saved = 0
    for dup, keep in pairs + blas:
        saved += link(dup, keep, args.dry_run)
        print(f"  {dup.relative_to(args.bundle)} -> {keep.relative_to(args.bundle)}")
    for why in skipped:
        print(f"  kept separately: {why}")
    print(f"== merged {len(pairs) + len(blas)} duplicate libraries, {saved / 1e6:.1f} MB"
          + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
