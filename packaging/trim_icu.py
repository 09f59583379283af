"""Shrink the ICU data library that PySide6's Qt carries (libicudata.so.NN, ~31 MB) to what Qt uses (~8 MB).

Qt 6 formats dates, numbers and locale names from its own CLDR tables, breaks text with its own Unicode tables and
does IDNA itself (Qt's documentation and sources); from ICU's data it reads collation (QCollator: sorting names the
way a language expects), the normalisation and layout properties, and time-zone names. So the trimmed library keeps
ICU's root bundle, index and supplemental tables (likely subtags, key types, zone metadata), every collation
tailoring (``coll/``), time-zone display names (``zone/``), the normalisation files (``*.nrm``), the converter alias
table and the emoji/layout properties, and drops the rest: per-language locale display data (``curr/``, ``lang/``,
``region/``, ``unit/`` and the top-level locale bundles), break-iterator rules and dictionaries, transliterators,
number spell-out rules, the legacy code-page converters (Qt's own UTF-8/16/32 and Latin-1 codecs stay; a legacy name
such as Shift_JIS is then unknown), character names and the StringPrep profiles.

How: the data blob (symbol ``icudtNN_dat``) is cut out of the library, ``icupkg`` (Debian: icu-devtools) removes the
items, and a C compiler assembles the smaller blob into a library of the same name exporting the same symbol. When
icupkg, nm, readelf or cc is missing, or a step fails, the original library stays and the script says why (exit
0: the bundle is still complete, only larger).

Checks: the bundle's self-test (``--self-test``) sorts names with QCollator under a German and a Swedish locale and
fails when ICU cannot open a collator (tests/test_packaging.py runs Qt on a trimmed copy, and on one without
collation data to see the check fail). Compared once by hand on PySide6 6.12 (2026-11-29, a throw-away script):
collation under de_DE / sv_SE / fr_FR / C, locale upper-casing (de, tr), number formatting and a time-zone display
name were identical with the full and the trimmed data; only the Shift_JIS and windows-1252 decoders went away.

    python packaging/trim_icu.py dist/fdface-attendance
"""

from __future__ import annotations

import argparse
import fnmatch
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP = ("root.res", "res_index.res", "pool.res", "cnvalias.icu", "*.nrm", "ulayout.icu", "uemoji.icu",
        "coll/*", "zone/*")
LOCALE_BUNDLE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]+)*\.res$")  # af.res, de_CH.res, sr_Latn_BA.res


def find_library(bundle: Path) -> Path | None:
    hits = sorted(p for p in bundle.rglob("libicudata.so.*") if p.is_file() and not p.is_symlink())
    return hits[0] if hits else None


def blob_location(lib: Path) -> tuple[str, int, int]:
    """(symbol, file offset, size) of the ICU data blob in ``lib``."""
    out = subprocess.run(["nm", "-D", "-S", "--defined-only", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"^([0-9a-f]+) ([0-9a-f]+) R (icudt\d+_dat)$", out, re.M)
    if not m:
        raise ValueError("no icudtNN_dat symbol")
    addr, size, symbol = int(m[1], 16), int(m[2], 16), m[3]
    sections = subprocess.run(["readelf", "-SW", str(lib)], capture_output=True, text=True, check=True).stdout
    for line in sections.splitlines():
        f = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if f:
            vaddr, off, length = int(f[2], 16), int(f[3], 16), int(f[4], 16)
            if vaddr <= addr and addr + size <= vaddr + length:
                return symbol, addr - vaddr + off, size
    raise ValueError("the blob is not inside a section")


def kept(item: str) -> bool:
    name = item.split("/", 1)[1] if item.count("/") >= 1 and item.startswith("icudt") else item
    if "/" not in name and name.endswith(".res") and not LOCALE_BUNDLE.match(name):
        return True  # supplemental tables (likelySubtags, keyTypeData, metaZones, zoneinfo64...): small, needed
    return any(fnmatch.fnmatchcase(name, pat) for pat in KEEP)


def trim(lib: Path, work: Path) -> tuple[Path, int, int]:
    """Build the trimmed library in ``work``; (path, items kept, items removed)."""
    symbol, offset, size = blob_location(lib)
    data = lib.read_bytes()[offset:offset + size]
    pkg = symbol.removesuffix("_dat") + "l.dat"  # icudt73l.dat: the package name icupkg expects
    (work / pkg).write_bytes(data)
    items = subprocess.run(["icupkg", "-l", pkg], capture_output=True, text=True, check=True,
                           cwd=work).stdout.split()
    drop = [i for i in items if not kept(i)]
    if not drop:
        raise ValueError("nothing to remove")
    (work / "drop.txt").write_text("\n".join(drop) + "\n")
    (work / "small").mkdir()
    # the output keeps the package's name: icupkg takes the items' tree prefix (icudt73l/...) from it
    subprocess.run(["icupkg", "--ignore-deps", "-r", "drop.txt", pkg, f"small/{pkg}"], capture_output=True,
                   text=True, check=True, cwd=work)
    # GNU as on ARM reads "@" as a comment: type markers are written "%" there (Raspberry Pi OS builds)
    t = "%" if platform.machine().lower().startswith(("arm", "aarch64")) else "@"
    (work / "blob.s").write_text(
        f"\t.section .rodata\n\t.globl {symbol}\n\t.type {symbol}, {t}object\n\t.balign 16\n{symbol}:\n"
        f'\t.incbin "small/{pkg}"\n\t.size {symbol}, .-{symbol}\n'
        f'\t.section .note.GNU-stack,"",{t}progbits\n')
    out = work / lib.name
    subprocess.run(["cc", "-shared", "-nostdlib", f"-Wl,-soname,{lib.name}", "-o", out.name, "blob.s"],
                   capture_output=True, text=True, check=True, cwd=work)
    if blob_location(out)[0] != symbol:
        raise ValueError("the rebuilt library does not export the symbol")
    return out, len(items) - len(drop), len(drop)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    args = ap.parse_args(argv)
    lib = find_library(args.bundle)
    if lib is None:
        print("trim_icu: no libicudata in the bundle (Qt built without ICU, or Windows/macOS): nothing to do")
        return 0
    missing = [t for t in ("icupkg", "nm", "readelf", "cc") if not shutil.which(t)]
    if missing:
        print(f"trim_icu: {', '.join(missing)} not found (apt install icu-devtools binutils gcc): "
              f"{lib.name} kept whole")
        return 0
    before = lib.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        try:
            small, n_kept, n_dropped = trim(lib, Path(tmp))
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            print(f"trim_icu: could not trim {lib.name} ({exc} {detail.strip()[-300:]}): kept whole")
            return 0
        shutil.copy2(small, lib)
    after = lib.stat().st_size
    print(f"== ICU data trimmed: {lib.name} {before / 1e6:.1f} -> {after / 1e6:.1f} MB "
          f"({n_kept} items kept for Qt, {n_dropped} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
