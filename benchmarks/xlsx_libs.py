"""openpyxl against XlsxWriter for the Excel report: what each would add to the installed app and the bundle.

Installs each library's wheel(s) (``pip download`` then ``pip install --target``, no other package) into its own
temporary folder and measures, in a fresh interpreter each time:

- wheel bytes (what a download costs) and installed bytes / files (site-packages footprint, caches excluded);
- the modules a workbook write imports, and the bytes of their compiled ``.pyc`` files: what PyInstaller puts into
  the bundle's PYZ archive for them (it collects the imported modules, compiled, not the whole package);
- the import time from compiled files, as in the bundle (median of 5 fresh interpreters), and the time to
  write 10,000 rows x 12 columns with dates, times and durations as cell types.

    python benchmarks/xlsx_libs.py [--wheels DIR]

Figures go to docs/BENCHMARKS.md ("Excel library").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

LIBS = {"openpyxl": ["openpyxl==3.1.5", "et-xmlfile==2.0.0"], "xlsxwriter": ["xlsxwriter==3.3.1"]}

PROBE = r"""
import importlib, json, sys, time
lib = sys.argv[1]
before = set(sys.modules)
t0 = time.perf_counter()
importlib.import_module(lib)
t_import = time.perf_counter() - t0
from datetime import datetime, timedelta, date
rows = [[i, datetime(2026, 12, 1, 8, 0) + timedelta(minutes=i), date(2026, 12, 1), f"Person {i % 50}",
         "group", "ref", datetime(2026, 12, 1, 8, 0), datetime(2026, 12, 1, 17, 0), timedelta(hours=9), 3,
         "door", 0.8] for i in range(10000)]
out = sys.argv[2]
t0 = time.perf_counter()
if lib == "openpyxl":
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("events")
    for r in rows:
        ws.append(r)
    wb.save(out)
else:
    import xlsxwriter
    wb = xlsxwriter.Workbook(out, {"constant_memory": True})
    ws = wb.add_worksheet("events")
    fd, ft = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}), wb.add_format({"num_format": "[h]:mm"})
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            if isinstance(v, timedelta):
                ws.write_datetime(i, j, v, ft)
            elif isinstance(v, (date, datetime)):
                ws.write_datetime(i, j, v, fd)
            else:
                ws.write(i, j, v)
    wb.close()
t_write = time.perf_counter() - t0
mods = sorted(m for m in set(sys.modules) - before if getattr(sys.modules[m], "__file__", None))
files = {m: sys.modules[m].__file__ for m in mods}
print(json.dumps({"import_s": t_import, "write_s": t_write, "files": files}))
"""


def _size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sum(p.stat().st_size for p in files), len(files)


def measure(lib: str, pins: list[str], wheels: Path, work: Path) -> dict:
    target = work / lib
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *pins], check=True)
    names = [p.split("==")[0].replace("-", "_").lower() for p in pins]
    whls = [w for w in wheels.glob("*.whl") if w.name.lower().split("-")[0] in names]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), *map(str, whls)], check=True)
    installed, nfiles = _size(target)
    env = {"PYTHONPATH": str(target)}
    runs = []
    for i in range(5):
        r = subprocess.run([sys.executable, "-c", PROBE, lib, str(work / f"{lib}-{i}.xlsx")], env=env,
                           capture_output=True, text=True, check=True)
        runs.append(json.loads(r.stdout))
    own = {m: f for m, f in runs[0]["files"].items() if f.startswith(str(target))}
    # the bytes PyInstaller's PYZ would hold for them: each imported module of the library, compiled
    import py_compile

    pyc = 0
    for m, f in own.items():
        dst = work / "pyc" / lib / (m + ".pyc")
        py_compile.compile(f, cfile=str(dst), doraise=True)
        pyc += dst.stat().st_size
    return {
        "wheel_bytes": sum(w.stat().st_size for w in whls), "installed_bytes": installed, "installed_files": nfiles,
        "modules_imported": len(own), "pyc_bytes": pyc,
        "import_ms": statistics.median(r["import_s"] for r in runs) * 1e3,
        "write_10k_rows_s": statistics.median(r["write_s"] for r in runs),
        "xlsx_bytes": (work / f"{lib}-0.xlsx").stat().st_size,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="folder for the downloaded wheels (default: temporary)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheels = args.wheels or work / "wheels"
        for lib, pins in LIBS.items():
            m = measure(lib, pins, wheels, work)
            print(f"{lib:<10} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in m.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
