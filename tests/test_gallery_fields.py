"""Text fields are checked in the core, the same on every engine: a station name, external id or group longer than
its column is refused up front with a message naming the field (PostgreSQL used to fail at the first recognised
face; SQLite stored it). PostgreSQL runs the same checks in test_gallery_postgres.py."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder
from desktop_app.config import AttendanceSettings

LONG = "x" * 101


def check_field_limits(engine: Engine) -> None:
    with pytest.raises(st.StoreError, match=r"station name is too long \(101 characters, at most 100\)"):
        AttendanceRecorder(engine, AttendanceSettings(station=LONG))
    for field, kw in (("external id", {"external_id": LONG}), ("group", {"group": LONG}),
                      ("name", {"name": "n" * 201})):
        with pytest.raises(st.StoreError, match=f"the {field} is too long"), Session(engine) as s, s.begin():
            st.add_person(s, **{"name": "Ada", **kw})
    with Session(engine) as s, s.begin():
        p = st.add_person(s, "Ada", external_id="x" * 100, group="g" * 100)  # at the limit: fine
        pid = p.id
    for field, kw in (("external id", {"external_id": LONG}), ("group", {"group": LONG})):
        with pytest.raises(st.StoreError, match=f"the {field} is too long"), Session(engine) as s, s.begin():
            st.update_person(s, s.get(st.Person, pid), **kw)
    rec = AttendanceRecorder(engine, AttendanceSettings(station="s" * 100))
    with pytest.raises(st.StoreError, match="station name is too long"):
        rec.record(pid, 0.9, station=LONG)
    assert rec.record(pid, 0.9) is not None
    with Session(engine) as s:
        assert s.scalar(select(func.count(st.AttendanceEvent.id))) == 1


def test_field_limits_on_sqlite(tmp_path) -> None:
    engine = st.open_engine(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        check_field_limits(engine)
    finally:
        engine.dispose()


def _cli(capsys, argv: list[str]) -> tuple[int, str]:
    from desktop_app.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # refused by the option's type, as argparse does: usage line and message, exit 2
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, field", [
    (["run", "0", "--station", LONG], "station name"),
    (["enroll", "Ada", "missing.jpg", "--id", LONG], "external id"),
    (["enroll", "Ada", "missing.jpg", "--group", LONG], "group"),
])
def test_cli_refuses_long_fields_before_any_work(tmp_path, capsys, argv: list[str], field: str) -> None:
    cfg = tmp_path / "settings.toml"
    cfg.write_text("")
    code, err = _cli(capsys, [*argv, "--db", f"sqlite:///{tmp_path / 'c.db'}", "--config", str(cfg)])
    assert code == 2 and f"the {field} is too long (101 characters, at most 100)" in err, err
    assert "Traceback" not in err


def test_a_long_station_in_the_settings_file_is_named(tmp_path, capsys) -> None:
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[attendance]\nstation = "{LONG}"\n')
    code, err = _cli(capsys, ["run", "0", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--config", str(cfg)])
    assert code == 2 and "station name is too long" in err, err


# ------------------------------------------------------------------------ control and text-direction characters
@pytest.mark.parametrize("typed, stored", [
    ("\u202eAda Lovelace", "Ada Lovelace"),  # right-to-left override: shown reversed in every table
    ("Ada\nLovelace", "Ada Lovelace"),  # a line break splits table rows
    ("Ada\t\r\n  Lovelace\u2028", "Ada Lovelace"),
    ("Ada\x00\x1b[2J\x7f", "Ada[2J"),  # NUL, a terminal escape, DEL
    ("\u2066Ada\u2069 \u200fLovelace\ufeff", "Ada Lovelace"),
    ("Mi\u200cnoo", "Mi\u200cnoo"),  # a zero-width non-joiner is part of Persian spelling: kept
    ("Jose\u0301", "Jos\u00e9"),  # NFC: the same name typed two ways is stored one way
])
def test_names_lose_control_and_direction_characters(tmp_path, typed: str, stored: str) -> None:
    engine = st.open_engine(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with Session(engine) as s, s.begin():
            p = st.add_person(s, typed, external_id=f"\u202e{typed}", group=f"{typed}\n")
            assert (p.name, p.external_id, p.group) == (stored, stored, stored)
            st.update_person(s, p, name=f"{typed}\n2", group="\u202eg\r\n", external_id="E\x00-2")
            assert (p.name, p.group, p.external_id) == (f"{stored} 2", "g", "E-2")
    finally:
        engine.dispose()


@pytest.mark.parametrize("field, kw", [("name", {"name": "\u202e\n\x00"}), ("external id", {"external_id": "\u200e"}),
                                       ("group", {"group": "\x1b\x07"})])
def test_a_field_of_only_control_characters_is_refused_with_a_message(tmp_path, field: str, kw: dict) -> None:
    engine = st.open_engine(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with (pytest.raises(st.StoreError, match=f"the {field} .* has nothing left once control and text-direction "
                                                  "characters are removed"), Session(engine) as s, s.begin()):
            st.add_person(s, **{"name": "Ada", **kw})
        with Session(engine) as s:
            assert st.count_people(s) == 0
    finally:
        engine.dispose()


def test_cli_enroll_refuses_a_name_of_control_characters(tmp_path, capsys) -> None:
    cfg = tmp_path / "settings.toml"
    cfg.write_text("")
    code, err = _cli(capsys, ["enroll", "\u202e\n", "missing.jpg", "--db", f"sqlite:///{tmp_path / 'c.db'}",
                              "--config", str(cfg)])
    assert code == 2 and "the name '\\u202e' has nothing left" in err, err
