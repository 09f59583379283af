"""`fdface` command line: subcommands over the same headless core the GUI drives.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)`` and sets ``func`` on its parsers;
``func(args) -> int`` is the exit status. User errors raise :class:`CliError` and print one line, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from desktop_app import __version__

COMMAND_MODULES = (  # in the order `fdface --help` lists them: what a person uses first, the developers' last
    "desktop_app.cli.gallery_cmds",
    "desktop_app.cli.report_cmds",
    "desktop_app.cli.unknown_cmds",
    "desktop_app.cli.backup_cmds",
    "desktop_app.cli.vision_cmds",
    "desktop_app.cli.nets_cmds",
    "desktop_app.cli.train_cmds",
)


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def check_config_option(path: str | None) -> None:
    """A ``--config`` that names no file stops the command: running on the defaults instead would, for
    instance, record attendance into the default database without a word."""
    if path is None:
        return
    if not path.strip():
        raise CliError("--config was given no file name")
    p = Path(path).expanduser()
    if p.is_dir():
        raise CliError(f"--config {path}: that is a folder; give the settings file (a .toml file) in it")
    if not p.is_file():
        raise CliError(f"--config {path}: settings file not found. Check the path, or leave out --config to use "
                       "your own settings")


# ---------------------------------------------------------------------------------- option types (argparse)
# A value that makes no sense stops the command at once, in argparse's words: "argument --threads: must be ...".
def _whole_number(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None


def threads_arg(text: str) -> int:
    """``--threads``: ONNX Runtime's intra-op threads per network; 0 is its default, all cores."""
    n = _whole_number(text, "0 (all cores) or a positive number")
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (all cores) or a positive number, not {text.strip()}")
    return n


def frames_arg(text: str) -> int:
    """``--max-frames``: stop after this many frames; at least one (0 or fewer would read nothing)."""
    n = _whole_number(text, "a positive number of frames")
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of frames, not {text.strip()} (leave it out "
                                         "to read the whole source)")
    return n


def station_arg(text: str) -> str:
    """``--station``: a station name as the store keeps it (storage/fields.py ``check_station``); an empty one would
    silently mean the settings' station (``fdface run``) or no event at all (a filter)."""
    from desktop_app.storage import StoreError, check_station

    if not text.strip():
        raise argparse.ArgumentTypeError("was given no name: name the station (as in attendance.station), or leave "
                                         "out --station")
    try:
        return check_station(text)
    except StoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bench_subparsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``fdface bench`` group's subparsers, created on first use, so that several command modules can each add
    a ``bench X`` (nets_cmds.py: ``bench nets``; vision_cmds.py: ``bench pipeline``)."""
    parser = sub.choices.get("bench")
    if parser is None:
        parser = sub.add_parser("bench", help="benchmarks")
        parser.set_defaults(func=lambda _a, p=parser: (p.print_help(), 2)[1])
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            return act
    return parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fdface", description="FDFace Attendance: face-recognition attendance")
    p.add_argument("--version", action="version", version=f"fdface {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_config_option(getattr(args, "config", None))
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe can still be handled, not at interpreter exit
        return code
    except CliError as exc:
        print(f"fdface {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`fdface export events | head`): stop quietly, as Unix tools do (128 + SIGPIPE)
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
