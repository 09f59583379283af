"""All settings in one typed place, loaded from / saved to a TOML file, validated with clear messages.

Sections mirror the core: detector, recognition, attendance, unknowns, storage, capture, performance. Unknown keys and
out-of-range values raise :class:`ConfigError` naming the key and the accepted range; a missing file means
defaults. ``Settings.load`` never raises anything else for a malformed file.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import time as dt_time
from pathlib import Path
from typing import Any, get_args, get_type_hints

import platformdirs

APP_NAME = "FDFaceAttendance"


class ConfigError(ValueError):
    """A settings file or value that cannot be used. ``str()`` names the field by its label and its key (what a
    settings file or the command line needs); ``plain`` only by its label (what the settings dialog shows)."""

    def __init__(self, reason: str, key: str = "") -> None:
        self.key = key
        self.plain = f"{field_label(key)}: {reason}" if key else reason
        super().__init__(f"{field_label(key)} ({key}): {reason}" if key else reason)


def read_settings_file(p: Path) -> dict[str, Any]:
    """The tables of a settings file, or a one-line ConfigError in plain words: not text (a binary file, a
    spreadsheet), not readable (permission), or not TOML (the parser's line and column)."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"settings file {p} is not a text file (TOML expected)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {p}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read settings file {p}: {exc}") from None


# The name a person sees for each field: the settings dialog's label, and the first words of every message about
# it (the key follows in brackets only where a settings file or the command line needs it).
LABELS: dict[str, str] = {
    "capture.source": "Source",
    "capture.width": "Width (px)",
    "capture.height": "Height (px)",
    "capture.reconnect_seconds": "Retry a lost camera every (s)",
    "detector.detect_scale": "Detection scale",
    "detector.score_threshold": "Detection threshold",
    "detector.nms_threshold": "Overlap threshold",
    "detector.min_face_px": "Smallest face (px)",
    "detector.max_side": "Largest detection side (px)",
    "recognition.model": "Recognition model",
    "recognition.threshold": "Match threshold",
    "recognition.margin": "Margin",
    "recognition.rule": "Decision rule",
    "recognition.vote_frames": "Frames to agree",
    "recognition.recheck_frames": "Re-check every (frames)",
    "attendance.dedupe_minutes": "Ignore repeats for (min)",
    "attendance.day_boundary_hour": "Day starts at (hour)",
    "attendance.timezone": "Time zone",
    "attendance.station": "Station name",
    "attendance.keep_crops": "Keep face crops",
    "attendance.keep_snapshots": "Keep a snapshot with each event",
    "attendance.erase_events_on_delete": "Deleting a person erases their events",
    "unknowns.enabled": "Log unknown visitors",
    "unknowns.keep_days": "Keep unknown visitors for (days)",
    "unknowns.keep_snapshots": "Keep a snapshot of each unknown visitor",
    "unknowns.min_seconds": "Log a face unknown for at least (s)",
    "storage.database_url": "Database",
    "storage.hnsw_above": "Graph search above (templates)",
    "storage.hnsw_ef_search": "Graph search effort",
    "backup.scheduled": "Back up every day",
    "backup.folder": "Backup folder",
    "backup.keep_daily": "Daily backups kept",
    "backup.keep_weekly": "Weekly backups kept",
    "performance.threads": "Inference threads",
    "reports.late_after": "Late after (HH:MM)",
}


def field_label(key: str) -> str:
    """The label of ``section.key`` (the key itself for one without a label)."""
    return LABELS.get(key, key)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "settings.toml"


@dataclass(frozen=True)
class DetectorSettings:
    score_threshold: float = 0.6
    nms_threshold: float = 0.4
    min_face_px: int = 20  # smaller faces are ignored
    detect_scale: float = 1.0  # frames are detected at this fraction of their size (boxes mapped back)
    max_side: int = 960  # frames larger than this are scaled down for detection

    def validate(self) -> None:
        _rng("detector.score_threshold", self.score_threshold, 0.05, 0.99)
        _rng("detector.nms_threshold", self.nms_threshold, 0.05, 0.95)
        _rng("detector.min_face_px", self.min_face_px, 4, 2000)
        _rng("detector.detect_scale", self.detect_scale, 0.1, 2.0)
        _rng("detector.max_side", self.max_side, 64, 8192)


# Threshold and margin belong to the model: `fdface ship` calibrates them and writes them into its manifest entry
# (docs/CALIBRATION.md); a setting overrides them only when a person sets one. A model with no calibrated values
# in its entry (an older manifest, a test model) is run at the FALLBACK values. The threshold range is the only one
# a person may set: below it nearly every stranger is named as the closest enrolled person, above it nearly nobody
# is named. The GUI asks before it saves a value far from the model's.
STATION_MAX = 100  # the width of the store's station column
FALLBACK_THRESHOLD = 0.47
FALLBACK_MARGIN = 0.08
THRESHOLD_RANGE = (0.2, 0.95)
# how a person's templates make one score (desktop_app/gallery/index.py): the model's entry names one
DECISION_RULES = ("best", "centroid", "best_or_centroid")
FAR_FROM_CALIBRATED = 0.1


@dataclass(frozen=True)
class RecognitionSettings:
    model: str = "auto"  # a manifest name (fdfacenet, fdfacenet-int8) or "auto": the fastest that meets the bar
    # None: the value calibrated for the model in use (its manifest entry); a number overrides it
    threshold: float | None = None  # cosine similarity to accept a match
    margin: float | None = None  # the best person must beat the next best person by this much
    rule: str | None = None  # DECISION_RULES; None: the model's (else "best")
    vote_frames: int = 3  # frames a track must agree on before anyone downstream acts on it
    recheck_frames: int = 15  # re-embed a known track at least every N frames

    def validate(self) -> None:
        if self.threshold is not None:
            _rng("recognition.threshold", self.threshold, *THRESHOLD_RANGE)
        if self.margin is not None:
            _rng("recognition.margin", self.margin, 0.0, 1.0)
        if self.rule is not None and self.rule not in DECISION_RULES:
            raise ConfigError(f"{self.rule!r} is not a decision rule; use one of {', '.join(DECISION_RULES)}",
                              "recognition.rule")
        _rng("recognition.vote_frames", self.vote_frames, 1, 100)
        _rng("recognition.recheck_frames", self.recheck_frames, 1, 10000)

    def for_model(self, entry: Any) -> RecognitionSettings:
        """These settings with threshold, margin and rule filled in: a value set here wins, then the model entry's
        calibrated one (``entry.threshold`` / ``.margin`` / ``.rule``), then the FALLBACK values and "best".
        ``entry`` may be None."""
        def pick(mine: float | None, key: str, fallback: float) -> float:
            if mine is not None:
                return float(mine)
            theirs = getattr(entry, key, None)
            return float(theirs) if isinstance(theirs, int | float) else fallback

        rule = self.rule or getattr(entry, "rule", None) or "best"
        return replace(self, threshold=pick(self.threshold, "threshold", FALLBACK_THRESHOLD),
                       margin=pick(self.margin, "margin", FALLBACK_MARGIN), rule=rule)


@dataclass(frozen=True)
class AttendanceSettings:
    dedupe_minutes: float = 5.0
    day_boundary_hour: int = 4  # a "day" runs from this local hour to the same hour the next day
    timezone: str = "local"  # an IANA name (Europe/Paris) or "local"
    station: str = "station-1"
    keep_crops: bool = True  # keep aligned crops so templates can be recomputed when the model changes
    keep_snapshots: bool = False
    erase_events_on_delete: bool = False  # False: past events keep a pseudonymous reference

    def validate(self) -> None:
        _rng("attendance.dedupe_minutes", self.dedupe_minutes, 0.0, 24 * 60)
        station = self.station.strip()
        label = field_label("attendance.station")  # the store checks the rest (storage/fields.py check_station)
        if not station:
            raise ConfigError(f"{label}: the station name is empty: give the station a name")
        if len(station) > STATION_MAX:
            raise ConfigError(f"{label}: the station name is too long ({len(station)} characters, at most "
                              f"{STATION_MAX}): shorten it")
        _rng("attendance.day_boundary_hour", self.day_boundary_hour, 0, 23)
        if self.timezone != "local":
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"unknown time zone {self.timezone!r}: use an IANA name such as Europe/Paris, "
                                  f"or local", "attendance.timezone") from None


@dataclass(frozen=True)
class UnknownSettings:
    """The unknown-visitor log (README "Unknown visitors"): a face that stays unknown over its whole track is
    logged once (time, station, how long, whom it resembled most and how much, a snapshot if allowed here); every
    entry is deleted after ``keep_days``, whether the log is on or off."""

    enabled: bool = True
    keep_days: int = 7
    keep_snapshots: bool = False  # like attendance snapshots: no face picture is kept unless chosen
    min_seconds: float = 1.0  # a track must stay unknown this long to be logged (not a one-frame false detection)

    def validate(self) -> None:
        _rng("unknowns.keep_days", self.keep_days, 1, 3650)
        _rng("unknowns.min_seconds", self.min_seconds, 0.0, 600.0)


@dataclass(frozen=True)
class StorageSettings:
    database_url: str = ""  # empty: SQLite in the user's data directory
    hnsw_above: int = 50_000  # templates beyond which the approximate (HNSW person graph) index is used
    hnsw_ef_search: int = 128  # search effort of that graph: higher finds more, slower (docs/BENCHMARKS.md)

    def resolved_url(self) -> str:
        return self.database_url or f"sqlite:///{data_dir() / 'attendance.db'}"

    def validate(self) -> None:
        _rng("storage.hnsw_above", self.hnsw_above, 100, 10**9)
        _rng("storage.hnsw_ef_search", self.hnsw_ef_search, 16, 4096)


@dataclass(frozen=True)
class BackupSettings:
    """Backups of the SQLite database (README "Backups"; desktop_app/gallery/backup.py)."""

    scheduled: bool = True  # the desktop app backs the database up once a day
    folder: str = ""  # empty: "backups" in the user's data directory
    keep_daily: int = 7  # the newest backup of each of the last N days that have one
    keep_weekly: int = 4  # and of each of the last M weeks

    def resolved_folder(self) -> Path:
        return Path(self.folder.strip()).expanduser() if self.folder.strip() else data_dir() / "backups"

    def validate(self) -> None:
        _rng("backup.keep_daily", self.keep_daily, 1, 3650)
        _rng("backup.keep_weekly", self.keep_weekly, 0, 520)


@dataclass(frozen=True)
class CaptureSettings:
    source: str = "0"  # camera index, video file, RTSP URL or image folder
    width: int = 1280
    height: int = 720
    reconnect_seconds: float = 2.0

    def validate(self) -> None:
        _rng("capture.width", self.width, 64, 7680)
        _rng("capture.height", self.height, 48, 4320)
        _rng("capture.reconnect_seconds", self.reconnect_seconds, 0.1, 600)


@dataclass(frozen=True)
class PerformanceSettings:
    threads: int = 0  # ONNX Runtime intra-op threads; 0: all cores

    def validate(self) -> None:
        _rng("performance.threads", self.threads, 0, 256)


@dataclass(frozen=True)
class ReportSettings:
    late_after: str = "09:00"  # a first check-in after this local time marks the day late (README "Reports")

    def late_time(self) -> dt_time:
        """``late_after`` as a time of day; :class:`ConfigError` when it is not HH:MM."""
        try:
            h, m = self.late_after.strip().split(":")
            if len(h) not in (1, 2) or len(m) != 2 or not (h.isdigit() and m.isdigit()):
                raise ValueError
            return dt_time(int(h), int(m))
        except ValueError:
            raise ConfigError(f"{self.late_after!r} is not a time of day: use HH:MM on the 24-hour clock, e.g. "
                              "09:00", "reports.late_after") from None

    def validate(self) -> None:
        self.late_time()


@dataclass(frozen=True)
class Settings:
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    recognition: RecognitionSettings = field(default_factory=RecognitionSettings)
    attendance: AttendanceSettings = field(default_factory=AttendanceSettings)
    unknowns: UnknownSettings = field(default_factory=UnknownSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)

    def validate(self) -> Settings:
        for f in fields(self):
            getattr(self, f.name).validate()
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        if not isinstance(data, dict):
            raise ConfigError("settings must be a table of sections")
        kw: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for key, value in data.items():
            if key not in hints:
                raise ConfigError(f"unknown settings section [{key}]{_did_you_mean(key, hints)}; "
                                  f"known: {', '.join(hints)}")
            kw[key] = _section(key, hints[key], value)
        return cls(**kw).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Settings:
        p = Path(path) if path else config_path()
        if not p.exists():
            return cls()
        data = read_settings_file(p)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None

    @classmethod
    def load_keeping_valid(cls, path: str | Path | None = None) -> tuple[Settings, list[str]]:
        """Like :meth:`load`, for an app that must start anyway: every value that can be used is kept (one
        misspelt key must not cost the database URL), each one that cannot is named, with the file, and left at
        its default. Raises ConfigError only when the file cannot be read as TOML at all."""
        p = Path(path) if path else config_path()
        if not p.exists():
            return cls(), []
        data = read_settings_file(p)
        hints = get_type_hints(cls)
        problems: list[str] = []
        kw: dict[str, Any] = {}
        for name, table in data.items():
            if name not in hints:
                problems.append(f"unknown settings section [{name}]{_did_you_mean(name, hints)}")
                continue
            if not isinstance(table, dict):
                problems.append(f"[{name}] must be a table")
                continue
            typ, section = hints[name], hints[name]()
            for key, value in table.items():
                try:
                    one = _section(name, typ, {key: value})
                    one.validate()
                except ConfigError as exc:
                    problems.append(str(exc))
                    continue
                section = replace(section, **{key: getattr(one, key)})
            kw[name] = section
        return cls(**kw), [f"{p}: {m}" for m in problems]

    def save(self, path: str | Path | None = None) -> Path:
        p = Path(path) if path else config_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(_to_toml(self.to_dict()), encoding="utf-8")
        tmp.replace(p)
        return p

    def with_changes(self, section: str, **changes: Any) -> Settings:
        return replace(self, **{section: replace(getattr(self, section), **changes)}).validate()

    def for_model(self, entry: Any) -> Settings:
        """The settings a model runs with: :meth:`RecognitionSettings.for_model` (whoever resolves the model binds
        them; everything downstream reads plain numbers)."""
        return replace(self, recognition=self.recognition.for_model(entry))


def _section(name: str, typ: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = get_type_hints(typ)
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k not in hints:
            raise ConfigError(f"unknown key {name}.{k}{_did_you_mean(k, hints)}; known: {', '.join(hints)}")
        want = hints[k]
        kinds = tuple(t for t in get_args(want) if t is not type(None)) or (want,)  # float | None: a float
        if float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if v is None and type(None) in get_args(want):  # not set (the dialog's empty field): the default
            out[k] = v
            continue
        if not isinstance(v, kinds) or (int in kinds and isinstance(v, bool)):
            raise ConfigError(f"{v!r} is not {_KINDS.get(kinds[0], kinds[0].__name__)}", f"{name}.{k}")
        out[k] = v
    return typ(**out)


def _did_you_mean(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


_KINDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}


def _rng(key: str, v: float, lo: float, hi: float) -> None:
    if not lo <= v <= hi:
        raise ConfigError(f"{v!r} is out of range; use a value from {lo} to {hi}", key)


def _to_toml(d: dict[str, Any]) -> str:
    lines: list[str] = []
    for sec, vals in d.items():
        lines.append(f"[{sec}]")
        for k, v in vals.items():
            if v is None:  # not set: the default applies (for threshold and margin, the model's)
                continue
            if isinstance(v, bool):
                s = "true" if v else "false"
            elif isinstance(v, str):
                s = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                s = repr(v)
            lines.append(f"{k} = {s}")
        lines.append("")
    return "\n".join(lines)


