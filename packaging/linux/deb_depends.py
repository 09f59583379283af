"""The .deb's Depends line: the system packages owning the libraries the bundle links to but does not carry.

    python3 packaging/linux/deb_depends.py dist/fdface-attendance

Every ELF file of the bundle goes through ``ldd``; a library resolved outside the bundle is looked up with
``dpkg -S``; libc6 gets the newest GLIBC symbol version any file needs. Run on the build machine, so the package
names are those of its distribution and architecture (Debian bookworm amd64 here, Raspberry Pi OS arm64 on a Pi).
Prints the Depends value on stdout; libraries that resolve nowhere are reported on stderr (exit 1 with --strict).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")
GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)")
# Qt plugins whose system libraries are optional: a plugin that cannot load is skipped by Qt. The Wayland ones need
# libwayland-* (present on every Wayland desktop, e.g. Raspberry Pi OS bookworm; the .deb Recommends them).
OPTIONAL_PLUGIN_DIRS = ("wayland-decoration-client", "wayland-graphics-integration-client", "wayland-shell-integration")
OPTIONAL_PLUGINS = ("libqgtk3", "libqxdgdesktopportal", "libqvkkhrdisplay", "libqwayland", "libQt6Wayland",
                    "libQt6WlShell")


def elf_files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            try:
                with open(p, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(p)
            except OSError:
                continue
    return out


def ldd(path: Path) -> list[tuple[str, str | None]]:
    try:
        text = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    deps = []
    for line in text.splitlines():
        m = LDD_LINE.match(line)
        if m:
            deps.append((m.group(1), None if m.group(2) == "not found" else m.group(2)))
    return deps


def dpkg_owner(paths: list[str]) -> dict[str, str]:
    """path -> package (without :arch); tries the /usr-merged twin of each path too."""
    owners: dict[str, str] = {}
    for p in paths:
        real = os.path.realpath(p)
        cands = [p, real]
        for c in list(cands):
            cands.append(c[4:] if c.startswith("/usr/") else "/usr" + c)
        for c in dict.fromkeys(cands):
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout:
                pkg = r.stdout.split(":", 1)[0].split(",")[0].strip()
                owners[p] = pkg
                break
    return owners


def glibc_floor(files: list[Path]) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for f in files:
        try:
            text = subprocess.run(["objdump", "-T", str(f)], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        for m in GLIBC_VERSION.finditer(text):
            v = (int(m.group(1)), int(m.group(2)))
            best = v if best is None or v > best else best
    return best


def depends(bundle: Path) -> tuple[str, list[str]]:
    files = elf_files(bundle)
    carried = {p.name for p in bundle.rglob("*")}
    system: dict[str, str] = {}
    unresolved: list[str] = []
    for f in files:
        optional = f.name.startswith(OPTIONAL_PLUGINS) or f.parent.name in OPTIONAL_PLUGIN_DIRS
        for name, path in ldd(f):
            if name in carried or (path and Path(path).resolve().is_relative_to(bundle.resolve())):
                continue
            if path is None:
                msg = f"{f.relative_to(bundle)} needs {name}: not found"
                if not optional and msg not in unresolved:
                    unresolved.append(msg)
                continue
            if optional:
                continue  # a system library only an optional plugin needs is no hard dependency
            system.setdefault(path, name)
    owners = dpkg_owner(sorted(system))
    pkgs = sorted(set(owners.values()))
    for path in sorted(set(system) - set(owners)):
        unresolved.append(f"{path} (needed by the bundle) belongs to no installed package")
    floor = glibc_floor(files)
    out = []
    for pkg in pkgs:
        if pkg == "libc6" and floor:
            out.append(f"libc6 (>= {floor[0]}.{floor[1]})")
        else:
            out.append(pkg)
    return ", ".join(out), unresolved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a library resolves nowhere")
    args = ap.parse_args(argv)
    line, unresolved = depends(args.bundle)
    for u in unresolved:
        print(f"deb_depends: {u}", file=sys.stderr)
    print(line)
    return 1 if (args.strict and unresolved) else 0


if __name__ == "__main__":
    sys.exit(main())
