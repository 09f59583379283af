"""`fdface backup` and `fdface restore`: the database's backups from the command line (desktop_app/gallery/backup.py,
the code the GUI's Back up now and Restore from backup use).

On PostgreSQL nothing is copied here: the commands print the pg_dump / pg_restore command for the configured
database (without its password) and exit with status 3, so that a script that took `fdface backup` for a
backup stops instead of believing it has one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop_app.cli import CliError
from desktop_app.cli.gallery_cmds import _common, _confirm, _settings


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def _sqlite_or_pg(url: str, pg_index: int, file: str | None = None) -> Path | None:
    """The SQLite file of ``url``; for PostgreSQL prints the command to use (restoring ``file``) and returns None."""
    from desktop_app.gallery.backup import BackupError, pg_commands, sqlite_file
    from desktop_app.storage import describe_url

    try:
        db = sqlite_file(url)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    if db is not None:
        return db
    if not url.startswith("postgresql"):
        raise CliError(f"{describe_url(url)}: backups are made for SQLite and explained for PostgreSQL; use this "
                       "database's own backup tools")
    what = ("back it up with pg_dump" if pg_index == 0 else
            "restore a pg_dump file with pg_restore (it replaces the tables of the database)")
    print(f"fdface: {describe_url(url)} is a PostgreSQL database: {what}. Nothing was done here. The command "
          "(it asks for the password, or reads PGPASSWORD / ~/.pgpass):", file=sys.stderr)
    print(pg_commands(url, file=file)[pg_index])
    return None


def cmd_backup(args: argparse.Namespace) -> int:
    from desktop_app.attendance.rules import resolve_zone
    from desktop_app.gallery.backup import EXIT_USE_PG_TOOLS, BackupError, list_backups, make_backup

    s = _settings(args)
    url = s.storage.resolved_url()
    db = _sqlite_or_pg(url, 0)
    if db is None:
        return EXIT_USE_PG_TOOLS
    folder = Path(args.to).expanduser().absolute() if args.to else s.backup.resolved_folder()
    tz, tz_name = resolve_zone(s.attendance.timezone)
    if args.list:
        backups = list_backups(folder, db)
        if not backups:
            print(f"no backups of {db} in {folder}")
            return 0
        for b in backups:
            print(f"{b.taken.astimezone(tz):%Y-%m-%d %H:%M:%S} {tz_name}  {_size(b.size):>9}  {b.path}")
        print(f"{len(backups)} backup(s) of {db} in {folder}")
        return 0
    try:
        r = make_backup(db, folder, s.backup.keep_daily, s.backup.keep_weekly, tz=tz)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"backed up {db} to {r.path} ({r.check.people} people, {r.check.events} events, "
          f"{_size(r.path.stat().st_size)}, verified, {r.seconds:.1f} s)")
    for p in r.removed:
        print(f"removed the older backup {p.name} (keeping {s.backup.keep_daily} daily, "
              f"{s.backup.keep_weekly} weekly)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from desktop_app.gallery.backup import EXIT_USE_PG_TOOLS, BackupError, copies_note, restore_database

    s = _settings(args)
    db = _sqlite_or_pg(s.storage.resolved_url(), 1, args.file)
    if db is None:
        return EXIT_USE_PG_TOOLS

    def confirm(check) -> bool:
        return _confirm(f"Replace the database {db} with {check.path} ({check.people} people, {check.events} "
                        f"events)? The current one is kept beside it.", args.yes)

    try:
        r = restore_database(Path(args.file), db, confirm=confirm)
    except BackupError as exc:
        text = str(exc)
        if text.startswith("not restored") and not args.yes:
            text += " (use --yes to confirm without a question)"
        raise CliError(text) from None
    kept = f"; the database as it was is kept as {r.kept_aside}" if r.kept_aside else ""
    migrated = f", schema brought up from {r.schema_before} to {r.schema_now}" if r.migrated else ""
    print(f"restored {db} from {r.restored_from} ({r.people} people, {r.events} events{migrated}){kept}")
    if note := copies_note(r.kept_copies):
        print(note)
    if r.index_files_removed:
        print(f"removed {len(r.index_files_removed)} saved index file(s): the index is rebuilt from the restored "
              "database at the next start")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backup", help="back the database up (SQLite; PostgreSQL: prints the pg_dump command)",
                       description="Copy the SQLite database while it may be in use (SQLite's backup API), verify "
                                   "the copy, then keep the newest backup of each of the last backup.keep_daily "
                                   "days and backup.keep_weekly weeks. On PostgreSQL: prints the pg_dump command "
                                   "and exits with status 3.")
    b.add_argument("--to", metavar="FOLDER", help="backup folder (default: backup.folder, else 'backups' in the "
                                                   "user's data folder)")
    b.add_argument("--list", action="store_true", help="list this database's backups instead, newest first")
    _common(b)
    b.set_defaults(func=cmd_backup)

    r = sub.add_parser("restore", help="replace the database with a backup (checked first; the current one is kept)",
                       description="Check FILE (integrity, schema; an older schema is migrated forward), keep the "
                                   "current database beside itself, put the backup in its place and drop the saved "
                                   "index files (rebuilt from the restored database). Stop the app and fdface run "
                                   "on this database first. On PostgreSQL: prints the pg_restore command and exits "
                                   "with status 3.")
    r.add_argument("file", metavar="FILE", help="a backup (from fdface backup --list, or any copy of the database)")
    r.add_argument("--yes", action="store_true", help="do not ask")
    _common(r)
    r.set_defaults(func=cmd_restore)
