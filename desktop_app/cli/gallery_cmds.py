"""`fdface enroll`, `fdface people`, `fdface run`, `fdface export`, `fdface gallery`: the gallery and attendance core
from the command line (the same code the GUI drives).

Every command takes ``--db URL-OR-FILE`` (default: the ``FDFACE_DB`` environment variable, else the settings'
database, else SQLite in the user's data directory; a plain path is a SQLite file, see ``desktop_app.dburl``) and
``--config FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from desktop_app.cli import CliError, frames_arg, station_arg, threads_arg

DB_ENV = "FDFACE_DB"
TERM_WAIT_S = 5.0  # fdface run stopped by SIGTERM: how long sightings may still be written before they are spooled


# ----------------------------------------------------------------------------------------------- shared helpers
def _settings(args: argparse.Namespace) -> Any:
    from desktop_app.config import ConfigError, Settings
    from desktop_app.dburl import database_url

    try:
        s = Settings.load(getattr(args, "config", None))
        db = getattr(args, "db", None) or os.environ.get(DB_ENV) or s.storage.database_url
        if db:  # a URL as it is, a plain path as the URL of that SQLite file
            s = s.with_changes("storage", database_url=database_url(db))
        if getattr(args, "threshold", None) is not None:
            s = s.with_changes("recognition", threshold=args.threshold)
        if getattr(args, "margin", None) is not None:
            s = s.with_changes("recognition", margin=args.margin)
        if getattr(args, "station", None):
            s = s.with_changes("attendance", station=args.station)
        return s
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _engine(settings: Any, must_exist: bool = False, read_only: bool = False) -> Any:
    """The store's engine; with ``must_exist`` (listing, export, remove, set) no SQLite file is created, nor the
    folders above it, where there is none (a mistyped ``--db`` would otherwise leave an empty database behind).
    ``read_only`` (lists, exports, reports): a SQLite copy that cannot be written (a read-only disk or share) is
    opened for reading instead of refused."""
    from desktop_app.storage import StoreError, database_location_problem, describe_url, open_engine, open_reader

    url = settings.storage.resolved_url()
    if must_exist:
        _require_database(url)
    try:
        return open_engine(url)
    except StoreError as exc:
        if read_only and database_location_problem(url):
            try:
                engine = open_reader(url)
            except StoreError:
                raise CliError(str(exc)) from None
            print(f"note: {describe_url(url)} cannot be written here: it is read, not changed", file=sys.stderr)
            return engine
        raise CliError(str(exc)) from None


def _require_database(url: str) -> None:
    """CliError where a SQLite file is named that is not there: a mistyped ``--db`` must not leave an empty database
    behind, nor run attendance against one where nobody is enrolled."""
    from desktop_app.storage import sqlite_file

    p = sqlite_file(url)
    if p is not None and not p.exists():
        raise CliError(f"there is no database at {p}: nobody has been enrolled and nothing recorded "
                       "there yet (check --db, FDFACE_DB or storage.database_url)")


def _pipeline_and_gallery(settings: Any, threads: int, recompute: bool = True) -> tuple[Any, Any]:
    """The pipeline and the gallery of its model; with ``recompute``, templates of an older model are first
    recomputed from their kept crops (and people without crops are named)."""
    from desktop_app.gallery.service import Gallery, model_id_for
    from desktop_app.storage import StoreError
    from desktop_app.vision.pipeline import Pipeline

    pipe = Pipeline(settings, threads=threads)
    if not pipe.recognition_available:
        raise CliError(pipe.notice or "no recognition model installed")
    try:
        gallery = Gallery.open(settings, model_id_for(pipe.model_entry), pipe.embedder.dim)
        stale = gallery.stale() if recompute else None
        if stale is None:
            return pipe, gallery
        if stale.recomputable:  # the model changed since enrollment: bring the kept crops up to date first
            n = gallery.recompute(pipe.embedder.infer)
            print(f"note: recomputed {n} template(s) with the current model {gallery.model_id}", file=sys.stderr)
        for pid, name in stale.people_to_reenroll:
            print(f"note: {name} (#{pid}) must be enrolled again: their templates are from another model and no "
                  "face crop was kept to recompute them", file=sys.stderr)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    return pipe, gallery


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _parse_day(text: str | None, today: date, default: date | None = None) -> date:
    """A day from YYYY-MM-DD, 'today' or 'yesterday' (relative to ``today``); ``default`` (else today) when
    none is given."""
    if not text:
        return today if default is None else default
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not a date: use YYYY-MM-DD, 'today' or 'yesterday'") from None


def unknown_group(sess: Any, group: str) -> str | None:
    """The one-line hint for a group nobody is in, naming the groups there are; None when ``group`` names one (any
    case matches, see ``reports.groups_named``)."""
    from desktop_app.attendance.reports import group_names, groups_named

    if groups_named(sess, group):
        return None
    return f"no group named {group!r}; groups: {', '.join(group_names(sess)) or 'none yet'}"


def _checked_grid(sess: Any, s: Any, first: date, last: date, today: date, *, group: str | None = None,
                  station: str | None = None, person_id: int | None = None) -> Any:
    """grid.py's marks for ``first``..``last`` as every report builds them: the late time from the settings, and
    the station checked against those that recorded (a typo would mark everyone absent)."""
    from desktop_app.attendance import grid as gr
    from desktop_app.attendance.rules import resolve_zone

    try:
        late = s.reports.late_time()
        gr.check_station(sess, station)
    except ValueError as exc:  # ConfigError is one
        raise CliError(str(exc)) from None
    tz, tz_name = resolve_zone(s.attendance.timezone)
    return gr.build_grid(sess, first, last, tz, tz_name, late, today, s.attendance.day_boundary_hour, group=group,
                         station=station, person_id=person_id)


def _store_call(fn: Any, *a: Any, **kw: Any) -> Any:
    from desktop_app.storage import StoreError

    try:
        return fn(*a, **kw)
    except StoreError as exc:
        raise CliError(str(exc)) from None


# ----------------------------------------------------------------------------------------------- enroll
def cmd_enroll(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.gallery.enroll import Enroller, EnrollmentError

    s = _settings(args)
    _store_call(st.check_person_fields, None if args.add_to else args.name, args.id, args.group)  # before photos
    missing = [p for p in args.images if not Path(p).exists()]
    if missing:
        raise CliError(f"not found: {', '.join(missing)}")
    pipe, gallery = _pipeline_and_gallery(s, args.threads)
    try:
        en = Enroller(pipe, gallery, s)
        person_id = None
        if args.add_to:
            with Session(gallery.engine) as sess:
                p = _store_call(st.resolve_person, sess, args.add_to)
                person_id, name = p.id, p.name
        else:
            name = args.name
        plan = en.prepare_files(args.images, largest=args.largest, person_id=person_id, name=name)
        for r in plan.refused:
            print(f"refused {r}", file=sys.stderr)
        if any(r.faces > 1 for r in plan.refused):
            print("hint: add --largest to enroll the largest face of a photo with several", file=sys.stderr)
        if not plan.accepted:
            raise CliError("no usable photo: nothing enrolled")
        confirm = False
        if plan.needs_confirmation:
            for w in plan.warnings:
                print(f"warning: {w}", file=sys.stderr)
            confirm = _confirm(f"Enroll {name} anyway as a different person?", args.yes)
            if not confirm:
                what = "has this name" if not plan.resembles else "looks like this" if not plan.same_name else \
                    "has this name or looks like this"
                raise CliError(f"someone already enrolled {what}; nothing enrolled (use --yes to enroll a different "
                               f"person anyway, ideally with --id to tell them apart, or --add-to to add the photos to "
                               f"that person)")
        try:
            res = en.commit(plan, name=name, external_id=args.id, group=args.group, confirm=confirm)
        except (EnrollmentError, st.StoreError) as exc:
            raise CliError(str(exc)) from None
        verb = "added" if person_id else "enrolled"
        print(f"{verb} {res.name} (#{res.person_id}): {len(res.template_ids)} template(s), "
              f"{len(res.refused)} photo(s) refused")
        return 0
    finally:
        gallery.close()


# ----------------------------------------------------------------------------------------------- people
def cmd_people_list(args: argparse.Namespace) -> int:
    from desktop_app import storage as st
    from desktop_app.attendance.queries import StoreReads, list_people

    engine = _engine(_settings(args), must_exist=True, read_only=True)
    try:
        reads = StoreReads(engine)
        people = reads.read(list_people, args.query or "", group=args.group, active=None if args.all else True)
        if args.group is not None and not people and (hint := reads.read(unknown_group, args.group)):
            print(f"fdface people: {hint}", file=sys.stderr)
        rows = [{"id": p.id, "name": p.name, "external_id": p.external_id, "group": p.group,
                 "active": p.active, "templates": p.templates,
                 "created": p.created.isoformat(timespec="seconds")} for p in people]
    except st.StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("nobody enrolled" if not (args.query or args.group) else "nobody matches")
        return 0
    print(f"{'#':>5}  {'name':<28} {'id':<14} {'group':<14} templates")
    for r in rows:
        flag = "" if r["active"] else "  (inactive)"
        print(f"{r['id']:>5}  {r['name'][:28]:<28} {(r['external_id'] or '')[:14]:<14} "
              f"{(r['group'] or '')[:14]:<14} {r['templates']:>9}{flag}")
    print(f"{len(rows)} people")
    return 0


def cmd_people_remove(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.gallery.service import erase_person

    s = _settings(args)
    erase = s.attendance.erase_events_on_delete if args.events == "setting" else args.events == "erase"
    engine = _engine(s, must_exist=True)
    try:
        for ref in args.people:
            with st.store_errors(), Session(engine) as sess:
                p = _store_call(st.resolve_person, sess, ref)
                pid, name = p.id, p.name
            if not _confirm(f"Delete {name} (#{pid}), their face templates and snapshots?", args.yes):
                raise CliError(f"not deleted: {name} (#{pid}); use --yes to confirm")
            # the person, their saved index entries and the database's log copies, in one operation
            er = _store_call(erase_person, engine, s.storage.resolved_url(), pid, erase_events=erase)
            events = (f"{er.events_deleted} event(s) deleted" if erase
                      else f"{er.events_pseudonymised} past event(s) kept under a pseudonym")
            print(f"deleted {name} (#{pid}): {er.templates} template(s), {er.snapshots} snapshot(s), {events}")
    except st.StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    return 0


def cmd_people_set(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st

    engine = _engine(_settings(args), must_exist=True)
    try:
        with st.store_errors(), Session(engine) as sess, sess.begin():
            p = _store_call(st.resolve_person, sess, args.person)
            active = None if args.active is None else args.active == "yes"
            _store_call(st.update_person, sess, p, name=args.name, external_id=args.id, group=args.group,
                        active=active)
            print(f"updated #{p.id}: {p.name}, id {p.external_id or '-'}, group {p.group or '-'}, "
                  f"{'active' if p.active else 'inactive'}")
    except st.StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    return 0


# ----------------------------------------------------------------------------------------------- run
def _event_line(ev: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps({"event_id": ev.id, "time": ev.local_ts.isoformat(timespec="seconds"),
                           "person_id": ev.person_id, "name": ev.name, "external_id": ev.external_id,
                           "kind": ev.kind, "station": ev.station, "similarity": round(ev.similarity, 4)},
                          ensure_ascii=False)
    return (f"{ev.local_ts.isoformat(timespec='seconds')}  {ev.kind:<9}  {ev.name} (#{ev.person_id})  "
            f"similarity {ev.similarity:.3f}  {ev.station}")


def _unknowns_summary(enabled: bool, logged: int) -> str:
    """The unknown visitors this run logged (README "Unknown visitors"), or why none can be."""
    if not enabled:
        return "0 unknown visitor(s) (the unknown-visitor log is off: unknowns.enabled = false)"
    return f"{logged} unknown visitor(s) logged"


def _repeats_summary(people: int, minutes: float) -> str:
    """The people recognised who got no new event because they were recorded a moment ago (the recorder counts
    them, by the rules' dedupe window): without it a second run over the same photos says only "0 event(s)"."""
    if not people:
        return ""
    return (f", {people} person(s) recognised but already recorded within the last {minutes:g} min "
            "(attendance.dedupe_minutes)")


def cmd_run(args: argparse.Namespace) -> int:
    """A thin driver of :class:`AttendanceSession` (the GUI's vision worker drives the same one): reads frames,
    hands them over, refreshes the gallery when the session says it is due, prints what the writer committed."""
    import contextlib
    import time

    from desktop_app.attendance.recorder import spool_path
    from desktop_app.attendance.session import AttendanceSession
    from desktop_app.capture.sources import FolderSource, SourceError, open_source
    from desktop_app.config import data_dir
    from desktop_app.storage import StoreError, check_station

    s = _settings(args)
    _store_call(check_station, s.attendance.station)  # not at the first recognised face
    _require_database(s.storage.resolved_url())  # attendance needs people enrolled: `fdface enroll` makes the database
    try:
        source = open_source(args.source, s.capture.width, s.capture.height)
        source.open()
    except SourceError as exc:
        raise CliError(str(exc)) from None
    pipe, gallery = _pipeline_and_gallery(s, args.threads)
    if len(gallery.index) == 0:
        print("warning: nobody is enrolled with the current model; no event can be recorded", file=sys.stderr)
    printed: list[int] = []

    def on_event(ev: Any) -> None:  # on the writer thread, after the commit
        printed.append(ev.id)
        with contextlib.suppress(BrokenPipeError):  # the reader went away (`| head`): the event is recorded
            print(_event_line(ev, args.json), flush=True)

    def on_status(text: str) -> None:  # a busy database: the sightings wait, nothing is dropped
        print(f"note: {text}; retrying" if text else "note: the database answers again", file=sys.stderr,
              flush=True)

    def on_error(text: str) -> None:
        print(f"error: {text}", file=sys.stderr, flush=True)

    session = AttendanceSession(s, pipe, on_event=on_event, on_error=on_error, on_status=on_status)
    spool = spool_path(s.storage.resolved_url(), data_dir())
    try:
        writer = session.attach(gallery.engine, gallery, spool=spool)
    except StoreError as exc:
        source.close()
        gallery.close()
        raise CliError(str(exc)) from None
    if writer.pending:
        print(f"note: {writer.pending} sighting(s) kept from an earlier run are recorded first", file=sys.stderr)
    stills = isinstance(source, FolderSource)  # unrelated photos: no tracking, each photo is a sighting
    frames = events = skipped = 0
    print(f"running on {source.description}: {len(gallery.index.person_ids)} people enrolled, station "
          f"{s.attendance.station}; Ctrl-C stops", file=sys.stderr)
    terminated = []

    def on_term(signum, frame):  # noqa: ARG001 - a service manager stopping the kiosk (systemd, docker stop)
        if not terminated:
            terminated.append(signum)
            raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        while args.max_frames is None or frames < args.max_frames:
            img = source.read()
            for skip in source.skipped[skipped:]:  # an image folder's unreadable files: which one, and why
                print(f"skipped {skip.path}: {skip.reason}", file=sys.stderr)
            skipped = len(source.skipped)
            if img is None:
                if source.live:
                    time.sleep(0.05)
                    continue
                break
            frames += 1
            res = session.process(img, still=stills).result
            if res.error:
                print(f"frame {frames}: {res.error}", file=sys.stderr)
                continue
            try:
                session.maybe_refresh()  # other kiosks may have enrolled people
            except StoreError as exc:  # tried again at the next refresh; recognition goes on meanwhile
                print(f"note: could not refresh the gallery: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
        status = writer.status()
        try:  # Ctrl-C: every sighting written, however long the database stays busy; SIGTERM: a few seconds
            # (the service manager kills soon after), then what waits is kept in the spool
            left = session.close(timeout=TERM_WAIT_S if terminated else None)
        except KeyboardInterrupt:  # a second Ctrl-C: keep what waits for the next run on this database
            status = writer.status()
            writer.spool_now()
            left = writer.pending
        if writer.spooled:
            print(f"{writer.spooled} sighting(s) not yet recorded ({status or 'stopped'}) are kept in {spool}; "
                  "they are recorded when fdface run or the app next opens this database", file=sys.stderr)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        gallery.close()
    events = len(printed)
    unknowns = _unknowns_summary(s.unknowns.enabled, writer.unknowns_logged)
    counted = f"{frames} frame(s), {events} event(s)" + _repeats_summary(writer.repeats_only,
                                                                         s.attendance.dedupe_minutes)
    if left:
        print(f"{counted}, {unknowns}; {left} sighting(s) waiting to be recorded", file=sys.stderr)
        return 1
    print(counted + (f", {skipped} unreadable file(s) skipped" if skipped else "") + f", {unknowns}",
          file=sys.stderr)
    return 1 if skipped else 0


# ----------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.attendance import export, reports
    from desktop_app.attendance.rules import day_of, resolve_zone, why_no_absence

    s = _settings(args)
    a = s.attendance
    tz, _ = resolve_zone(a.timezone)
    today = day_of(datetime.now(UTC), tz, a.day_boundary_hour)
    first = _parse_day(args.date_from or args.day, today)
    last = _parse_day(args.date_to or args.day, today, default=first)
    if last < first:
        raise CliError(f"--to {last} is before --from {first}")
    span = f"{first}" if first == last else f"{first} to {last}"
    engine = _engine(s, must_exist=True, read_only=True)
    try:
        with st.store_errors(), Session(st.reader(engine)) as sess:
            pid = _store_call(st.resolve_person, sess, args.person).id if args.person else None
            if args.group is not None and (hint := unknown_group(sess, args.group)):
                # an empty export as before (header only, exit 0), but not a silent one
                print(f"fdface export: {hint}: nothing to export", file=sys.stderr)
            if args.report == "absent":
                # the absences of the workbook's "Absent" sheet (grid.py), on the days the rules count
                g = _checked_grid(sess, s, first, last, today, group=args.group, station=args.station, person_id=pid)
                reasons = [why_no_absence(d, today) for d in g.days]
                if all(reasons):
                    why = reasons[0] if first == last else \
                        "none of these days is a working day (Monday to Friday) that has ended"
                    print(f"fdface export: no absence can be listed for {span}: {why}", file=sys.stderr)
                header, rows = export.ABSENT_HEADER, export.absent_rows(g.absences())
            else:
                evs = reports.events_in_range(sess, first, last, tz, a.day_boundary_hour, person_id=pid,
                                              group=args.group, station=args.station)
                if args.report == "events":
                    header, rows = export.EVENT_HEADER, [export.event_cells(e) for e in evs]
                else:
                    header = export.SUMMARY_HEADER
                    rows = [export.summary_cells(d) for d in reports.summarize(evs)]
    except st.StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    if args.output and args.output != "-":
        out = Path(args.output)
        if out.is_dir():
            raise CliError(f"{out} is a folder: give a file name such as {out / (args.report + '.csv')}")
        try:
            n = export._to_path(out, header, rows)
        except OSError as exc:
            raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"wrote {n} row(s) ({args.report}, {span}) to {out}", file=sys.stderr)
    else:
        export.write_csv(sys.stdout, header, rows)
    return 0


# ----------------------------------------------------------------------------------------------- gallery
def cmd_gallery_status(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st

    s = _settings(args)
    pipe, gallery = _pipeline_and_gallery(s, args.threads, recompute=False)
    try:
        with Session(st.reader(gallery.engine)) as sess:
            n_people, n_events = st.count_people(sess), st.count_events(sess)
            models = st.model_counts(sess)
        stale = gallery.stale()
        print(f"database   {st.describe_url(gallery.url)} (schema {st.schema_version(gallery.engine)})")
        print(f"model      {gallery.model_id} ({gallery.dim}-d)")
        print(f"people     {n_people}, events {n_events}")
        print("templates  " + ", ".join(f"{m}: {n}" for m, n in sorted(models.items())) if models else
              "templates  none")
        print(f"index      {gallery.index.kind}, {len(gallery.index)} templates, loaded from the "
              f"{gallery.load_source} in {gallery.load_seconds:.2f} s")
        if stale.recomputable:
            print(f"stale      {stale.recomputable} template(s) of another model: `fdface gallery recompute`")
        _print_reenroll(stale)
    finally:
        gallery.close()
    return 0


def cmd_gallery_recompute(args: argparse.Namespace) -> int:
    s = _settings(args)
    pipe, gallery = _pipeline_and_gallery(s, args.threads, recompute=False)
    try:
        n = _store_call(gallery.recompute, pipe.embedder.infer)
        stale = gallery.stale()
        print(f"recomputed {n} template(s) with {gallery.model_id}")
        _print_reenroll(stale)
    finally:
        gallery.close()
    return 0


def _print_reenroll(stale: Any) -> None:
    """People whose templates no crop can recompute: only new photos bring them back to the current model."""
    for pid, name in stale.people_to_reenroll:
        print(f"re-enroll  {name} (#{pid}): no crop kept to recompute their templates")


# ----------------------------------------------------------------------------------------------- parsers
def _common(p: argparse.ArgumentParser, pipeline: bool = False, nested: bool = False) -> None:
    """--db, --config (and --threads). ``nested``: a sub-action of a command that has them too; its defaults must
    not overwrite what was given before the action's name (``fdface people --db X remove ...``)."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    p.add_argument("--db", metavar="URL|FILE",
                   help="database: a SQLite file (/srv/fdface/attendance.db, C:\\fdface\\attendance.db) or a URL "
                        "(sqlite:////srv/fdface/attendance.db, postgresql+psycopg://kiosk@db-host/attendance); "
                        f"default: ${DB_ENV}, else the settings, else SQLite in the user's data folder", **kw)
    p.add_argument("--config", help="settings file (default: the user's)", **kw)
    if pipeline:
        p.add_argument("--threads", type=threads_arg, help="ONNX Runtime threads (0: all cores)",
                       **(kw or {"default": 0}))


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("enroll", help="enroll a person from photos (or add photos with --add-to)")
    e.add_argument("name", metavar="NAME", help="display name (ignored with --add-to)")
    e.add_argument("images", nargs="+", metavar="IMAGE")
    e.add_argument("--id", help="employee / student number (unique)")
    e.add_argument("--group", help="group or department")
    e.add_argument("--largest", action="store_true", help="use the largest face when a photo has several")
    e.add_argument("--yes", action="store_true", help="enroll even if the face resembles someone enrolled")
    e.add_argument("--add-to", metavar="PERSON", help="add the photos to this person (#id, id or exact name)")
    _common(e, pipeline=True)
    e.set_defaults(func=cmd_enroll)

    p = sub.add_parser("people", help="list, edit or remove enrolled people")
    _common(p)
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--group", help="only this group")
    p.add_argument("--all", action="store_true", help="include inactive people")
    p.set_defaults(func=cmd_people_list, query=None)
    ps = p.add_subparsers(dest="people_command", metavar="ACTION")
    pl = ps.add_parser("list", help="list people (the default)")
    pl.add_argument("query", nargs="?", help="part of a name, an id or a group, or #number")
    pl.add_argument("--json", action="store_true", help="as JSON", default=argparse.SUPPRESS)
    pl.add_argument("--group", help="only this group", default=argparse.SUPPRESS)
    pl.add_argument("--all", action="store_true", help="include inactive people", default=argparse.SUPPRESS)
    _common(pl, nested=True)
    pl.set_defaults(func=cmd_people_list)
    pr = ps.add_parser("remove", help="delete people, their templates and snapshots (right to erasure)")
    pr.add_argument("people", nargs="+", metavar="PERSON", help="#number, id or exact name")
    pr.add_argument("--events", choices=("setting", "keep", "erase"), default="setting",
                    help="past events: keep under a pseudonym, or erase (default: attendance.erase_events_on_delete)")
    pr.add_argument("--yes", action="store_true", help="do not ask")
    _common(pr, nested=True)
    pr.set_defaults(func=cmd_people_remove)
    pe = ps.add_parser("set", help="rename, change id or group, (de)activate")
    pe.add_argument("person", metavar="PERSON", help="#number, id or exact name")
    pe.add_argument("--name")
    pe.add_argument("--id", help="new id ('' removes it)")
    pe.add_argument("--group", help="new group ('' removes it)")
    pe.add_argument("--active", choices=("yes", "no"))
    _common(pe, nested=True)
    pe.set_defaults(func=cmd_people_set)

    r = sub.add_parser("run", help="headless attendance on a camera, video, stream or image folder")
    r.add_argument("source", metavar="SOURCE", help="camera index (0), video file, rtsp:// URL or image folder")
    r.add_argument("--station", type=station_arg, help="station name recorded with events (default: settings)")
    r.add_argument("--threshold", type=float, help="similarity threshold (default: settings, else the model's)")
    r.add_argument("--margin", type=float, help="margin over the next person (default: settings, else the model's)")
    r.add_argument("--max-frames", type=frames_arg, help="stop after this many frames")
    r.add_argument("--json", action="store_true", help="one JSON object per event and line")
    _common(r, pipeline=True)
    r.set_defaults(func=cmd_run)

    x = sub.add_parser("export", help="attendance reports as CSV (UTF-8 with BOM, ISO-8601 times)")
    x.add_argument("report", choices=("events", "summary", "absent"))
    x.add_argument("--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD; default today)")
    x.add_argument("--to", dest="date_to", metavar="DATE", help="last day (default: --from)")
    x.add_argument("--day", metavar="DATE", help="one day (same as --from DATE --to DATE)")
    x.add_argument("--person", help="only this person (#number, id or exact name)")
    x.add_argument("--group", help="only this group")
    x.add_argument("--station", type=station_arg, help="only this station")
    x.add_argument("-o", "--output", metavar="FILE", help="CSV file (default: standard output)")
    _common(x)
    x.set_defaults(func=cmd_export)

    g = sub.add_parser("gallery", help="gallery status; recompute templates after a model change")
    _common(g, pipeline=True)
    g.set_defaults(func=cmd_gallery_status)
    gs = g.add_subparsers(dest="gallery_command", metavar="ACTION")
    g1 = gs.add_parser("status", help="database, model, index, stale templates")
    _common(g1, pipeline=True, nested=True)
    g1.set_defaults(func=cmd_gallery_status)
    g2 = gs.add_parser("recompute", help="recompute templates of another model from their kept crops")
    _common(g2, pipeline=True, nested=True)
    g2.set_defaults(func=cmd_gallery_recompute)
