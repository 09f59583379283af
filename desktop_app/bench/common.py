"""What the benchmarks share: the machine line of a report and the marked section they write into
docs/BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path


def machine_basics() -> dict[str, str]:
    """Date, CPU and load average: taken before a run starts, so the load is the machine's, not the run's."""
    from desktop_app.cpuinfo import cpu_name

    try:
        load = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        load = "n/a"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "load": load,
    }


def write_section(path: str | Path, body: str, marker: str) -> Path:
    """Replace the text between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` (appending it if absent)."""
    path = Path(path)
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pat.sub(lambda _m: block, text, count=1) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
