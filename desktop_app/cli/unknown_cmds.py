"""`fdface unknowns`: the unknown-visitor log (faces that stayed unknown over a whole track; README "Unknown
visitors"): list it, save its snapshots, delete it.

    fdface unknowns [--day DATE | --from DATE --to DATE] [--json] [--export-snapshots DIR]
    fdface unknowns purge            # delete the entries older than unknowns.keep_days now
    fdface unknowns purge --all      # delete every entry (asks first; --yes does not)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from desktop_app.cli import CliError
from desktop_app.cli.gallery_cmds import _common, _confirm, _engine, _parse_day, _settings, _store_call


def _range(args: argparse.Namespace, settings: Any) -> tuple[datetime | None, datetime | None, Any]:
    """The UTC range asked for with --day / --from / --to (None, None: everything) and the display time zone."""
    from desktop_app.attendance.rules import day_of, resolve_zone
    from desktop_app.attendance.unknowns import day_bounds

    a = settings.attendance
    tz, _ = resolve_zone(a.timezone)
    if not (args.day or args.date_from or args.date_to):
        return None, None, tz
    today = day_of(datetime.now(UTC), tz, a.day_boundary_hour)
    first = _parse_day(args.date_from or args.day, today)
    last = _parse_day(args.date_to or args.day, today, default=first)
    if last < first:
        raise CliError(f"--to {last} is before --from {first}")
    start, end = day_bounds(first, last, tz, a.day_boundary_hour)
    return start, end, tz


def _line(row: Any, tz: Any) -> str:
    from desktop_app.attendance.unknowns import seen_for

    sim = "   -  " if row.similarity is None else f"{row.similarity:.3f}"
    snap = "  snapshot" if row.has_snapshot else ""
    return (f"{row.ts.astimezone(tz).isoformat(timespec='seconds')}  {row.station}  similarity {sim}  "
            f"resembles {row.resembles}  {seen_for(row.frames, row.seconds)}  #{row.id}{snap}")


def _json(row: Any, tz: Any) -> str:
    return json.dumps({"id": row.id, "time": row.ts.astimezone(tz).isoformat(timespec="seconds"),
                       "station": row.station,
                       "similarity": None if row.similarity is None else round(row.similarity, 4),
                       "resembles_id": row.candidate_id, "resembles": row.candidate_name,
                       "seconds": round(row.seconds, 2), "frames": row.frames, "snapshot": row.has_snapshot},
                      ensure_ascii=False)


def cmd_unknowns_list(args: argparse.Namespace) -> int:
    from desktop_app.attendance import unknowns as un

    s = _settings(args)
    start, end, tz = _range(args, s)
    out_dir = Path(args.export_snapshots).expanduser() if args.export_snapshots else None
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise CliError(f"--export-snapshots {out_dir}: that is a file; give a folder (it is created if missing)")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--export-snapshots {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    engine = _engine(s, must_exist=True, read_only=True)
    try:
        rows = _store_call(un.list_unknowns, engine, start, end)
        for r in rows:
            print(_json(r, tz) if args.json else _line(r, tz))
        if not rows and not args.json:
            state = "on" if s.unknowns.enabled else "off (unknowns.enabled)"
            print(f"no unknown visitors logged{' in that period' if start else ''} (the log is {state}; entries "
                  f"are kept {s.unknowns.keep_days} day(s))", file=sys.stderr)
        if out_dir is not None:
            snaps = _store_call(un.unknown_snapshots, engine, [r.id for r in rows if r.has_snapshot])
            for r in rows:
                if r.id in snaps:
                    name = f"unknown-{r.id}-{r.ts.astimezone(tz):%Y%m%d-%H%M%S}.jpg"
                    try:
                        (out_dir / name).write_bytes(snaps[r.id])
                    except OSError as exc:
                        raise CliError(f"cannot write {out_dir / name}: {exc.strerror or exc}") from None
            print(f"{len(snaps)} snapshot(s) saved in {out_dir}" + ("" if s.unknowns.keep_snapshots or snaps else
                  " (snapshots are not kept: unknowns.keep_snapshots is off)"), file=sys.stderr)
    finally:
        engine.dispose()
    return 0


def cmd_unknowns_purge(args: argparse.Namespace) -> int:
    from desktop_app.attendance import unknowns as un

    s = _settings(args)
    engine = _engine(s, must_exist=True)
    try:
        if args.all:
            n = _store_call(un.count_unknowns, engine)
            if n and not _confirm(f"Delete all {n} unknown visitor(s) and their snapshots?", args.yes):
                raise CliError("nothing deleted: confirm with --yes (or answer y)")
            n = _store_call(un.delete_unknowns, engine)
            print(f"deleted {n} unknown visitor(s)")
        else:
            n = _store_call(un.purge_unknowns, engine, s.unknowns.keep_days)
            print(f"deleted {n} unknown visitor(s) older than {s.unknowns.keep_days} day(s)")
    finally:
        engine.dispose()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser("unknowns", help="the unknown-visitor log: faces that stayed unknown (list, purge)")

    def list_options(p: argparse.ArgumentParser, nested: bool) -> None:
        kw: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
        p.add_argument("--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD, today, yesterday)",
                       **(kw or {"default": None}))
        p.add_argument("--to", dest="date_to", metavar="DATE", help="last day (default: --from)",
                       **(kw or {"default": None}))
        p.add_argument("--day", metavar="DATE", help="one day (same as --from DATE --to DATE)",
                       **(kw or {"default": None}))
        p.add_argument("--json", action="store_true", help="one JSON object per visitor and line", **kw)
        p.add_argument("--export-snapshots", metavar="DIR", help="save the snapshots of the listed visitors here",
                       **(kw or {"default": None}))
        _common(p, nested=nested)

    list_options(u, False)
    u.set_defaults(func=cmd_unknowns_list)
    us = u.add_subparsers(dest="unknowns_command", metavar="ACTION")
    ul = us.add_parser("list", help="list the logged unknown visitors, newest first (the default)")
    list_options(ul, True)
    ul.set_defaults(func=cmd_unknowns_list)
    up = us.add_parser("purge", help="delete the entries older than unknowns.keep_days (--all: every entry)")
    up.add_argument("--all", action="store_true", help="delete every unknown visitor and snapshot")
    up.add_argument("--yes", action="store_true", help="do not ask")
    _common(up, nested=True)
    up.set_defaults(func=cmd_unknowns_purge)
