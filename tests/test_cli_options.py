"""Options every command shares: ``--config`` that names no file stops with a message; ``--db`` takes a URL or
a plain path to a SQLite file. Real SQLite databases; no model and no ../shared needed."""

from __future__ import annotations

import pytest

from desktop_app.cli import main


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("argv", [("people", "list"), ("people", "remove", "#1", "--yes"),
                                  ("export", "events"), ("detect", "face.jpg")])
def test_a_config_file_that_does_not_exist_stops_the_command(argv, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FDFACE_DB", f"sqlite:///{tmp_path / 'a.db'}")
    missing = tmp_path / "setings.toml"  # misspelt
    code, out, err = cli(capsys, *argv, "--config", str(missing))
    assert code == 2 and out == ""
    assert f"--config {missing}: settings file not found" in err and err.count("\n") == 1
    assert not (tmp_path / "a.db").exists()  # nothing ran on the defaults
    code, _, err = cli(capsys, *argv, "--config", str(tmp_path))
    assert code == 2 and "that is a folder" in err


def test_an_existing_config_file_is_used(tmp_path, capsys, monkeypatch) -> None:
    from desktop_app.storage import open_engine

    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[storage]\ndatabase_url = "sqlite:///{tmp_path / "from-config.db"}"\n')
    monkeypatch.delenv("FDFACE_DB", raising=False)
    open_engine(f"sqlite:///{tmp_path / 'from-config.db'}").dispose()
    code, out, _ = cli(capsys, "people", "list", "--config", str(cfg))
    assert code == 0 and "nobody enrolled" in out


# ------------------------------------------------------------------------------------------------ --db
def test_database_url_takes_a_url_as_it_is_and_a_path_as_a_sqlite_file(tmp_path, monkeypatch) -> None:
    from desktop_app.dburl import database_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for url in ("sqlite:////srv/fdface/a.db", "sqlite://", "postgresql+psycopg://kiosk@db-host/attendance", ""):
        assert database_url(url) == url
    assert database_url(" /srv/fdface/a.db ") == "sqlite:////srv/fdface/a.db"
    assert database_url("a.db") == f"sqlite:///{tmp_path.as_posix()}/a.db"
    assert database_url("~/fdface/a.db") == f"sqlite:///{tmp_path.as_posix()}/home/fdface/a.db"


@pytest.mark.skipif(not __import__("sys").platform.startswith("win"), reason="Windows paths on Windows")
def test_database_url_takes_a_windows_path() -> None:  # pragma: no cover - runs on Windows
    from desktop_app.dburl import database_url

    assert database_url(r"C:\Users\ada\attendance.db") == "sqlite:///C:/Users/ada/attendance.db"
    assert database_url("C:/Users/ada/attendance.db") == "sqlite:///C:/Users/ada/attendance.db"


def test_db_option_environment_and_settings_take_a_plain_path(tmp_path, capsys, monkeypatch) -> None:
    """Each form names the same kind of SQLite file; commands on people and events never create one (a mistyped
    path would leave an empty database behind): they say there is none, naming the absolute path understood."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    cfg.write_text("")
    forms = [(("--db", str(tmp_path / "absolute.db")), "absolute.db"), (("--db", "relative.db"), "relative.db"),
             (("--db", f"sqlite:///{tmp_path / 'url.db'}"), "url.db"),
             (("--db", str(tmp_path / "no" / "such" / "folder.db")), "no/such/folder.db")]
    for argv, made in forms:
        for cmd in (("people", "list"), ("export", "events"), ("people", "remove", "#1", "--yes")):
            code, out, err = cli(capsys, *cmd, *argv, "--config", str(cfg))
            assert code == 2 and f"there is no database at {tmp_path / made}" in err, err
        assert not (tmp_path / made).exists() and not (tmp_path / "no").exists()
    from desktop_app.storage import open_engine

    for made in ("relative.db", "from-env.db", "from-settings.db"):
        open_engine(f"sqlite:///{tmp_path / made}").dispose()
    code, out, err = cli(capsys, "people", "list", "--db", "relative.db", "--config", str(cfg))
    assert code == 0 and "nobody enrolled" in out, err
    monkeypatch.setenv("FDFACE_DB", "from-env.db")
    assert cli(capsys, "export", "events", "--config", str(cfg))[0] == 0
    monkeypatch.delenv("FDFACE_DB")
    cfg.write_text(f'[storage]\ndatabase_url = "{tmp_path / "from-settings.db"}"\n')  # hand-edited: a path
    assert cli(capsys, "people", "list", "--config", str(cfg))[0] == 0
    cfg.write_text('[storage]\ndatabase_url = "elsewhere.db"\n')
    code, _, err = cli(capsys, "people", "list", "--config", str(cfg))
    assert code == 2 and f"no database at {tmp_path / 'elsewhere.db'}" in err


def test_db_help_gives_posix_and_windows_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["people", "list", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a SQLite file (/srv/fdface/attendance.db, C:\\fdface\\attendance.db) or a URL" in text


# ------------------------------------------------------------------------------------------------ option values
@pytest.mark.parametrize(("argv", "want"), [
    (("run", "0", "--threads", "-3"), "argument --threads: must be 0 (all cores) or a positive number, not -3"),
    (("enroll", "Ada", "a.jpg", "--threads", "two"), "argument --threads: must be 0 (all cores) or a positive "
                                                     "number, not 'two'"),
    (("detect", "a.jpg", "--threads", "-1"), "argument --threads: must be 0 (all cores)"),
    (("run", "0", "--station", ""), "argument --station: was given no name"),
    (("export", "events", "--station", "  "), "argument --station: was given no name"),
    (("report", "xlsx", "r.xlsx", "--station", ""), "argument --station: was given no name"),
    (("run", "0", "--max-frames", "-1"), "argument --max-frames: must be a positive number of frames, not -1"),
    (("run", "0", "--max-frames", "0"), "argument --max-frames: must be a positive number of frames, not 0"),
    (("identify", "--people", "p", "v.mp4", "--max-frames", "-5"), "argument --max-frames: must be a positive"),
])
def test_option_values_that_make_no_sense_are_refused(argv, want, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and want in err and "Traceback" not in err, err


def test_sensible_option_values_are_taken() -> None:
    from desktop_app.cli import build_parser

    a = build_parser().parse_args(["run", "0", "--threads", "0", "--max-frames", "5", "--station", " door-1 "])
    assert (a.threads, a.max_frames, a.station) == (0, 5, "door-1")
    assert build_parser().parse_args(["detect", "a.jpg", "--threads", "4"]).threads == 4


# ------------------------------------------------------------------------------------------------ plain words
def test_a_settings_file_that_is_not_text_is_said_so(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FDFACE_DB", f"sqlite:///{tmp_path / 'a.db'}")
    cfg = tmp_path / "settings.toml"
    cfg.write_bytes(b"\xff\xfe\x00\x01PK\x03\x04 binary")
    code, out, err = cli(capsys, "people", "list", "--config", str(cfg))
    assert code == 2 and out == ""
    assert err == f"fdface people: settings file {cfg} is not a text file (TOML expected)\n", err


@pytest.mark.parametrize(("url", "want"), [
    ("postgresql+psycopg://kiosk@db-host/attendance",
     "names PostgreSQL, whose driver is not installed: pip install 'fdface-attendance[postgres]'"),
    ("postgresql+psycopg2://kiosk@db-host/attendance", "this app uses psycopg: write the URL as postgresql+psycopg"),
    ("mysql://kiosk@db-host/attendance", "names MySQL, which this app does not support: use a SQLite file"),
])
def test_a_database_whose_driver_is_missing_is_named_in_plain_words(url, want, tmp_path, capsys,
                                                                     monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as where the [postgres] extra is not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    code, out, err = cli(capsys, "people", "list", "--db", url)
    assert code == 2 and want in err and len(err.splitlines()) == 1, err
    assert "No module named" not in err and "MySQLdb" not in err and "(" + "'" not in err, err


def test_run_on_a_database_that_is_not_there_stops_before_making_one(tmp_path, capsys, monkeypatch) -> None:
    """A mistyped --db used to create the folders and an empty database, then run with nobody enrolled."""
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    cfg.write_text("")
    typo = tmp_path / "typo" / "attendence.db"
    code, _, err = cli(capsys, "run", str(tmp_path), "--db", str(typo), "--config", str(cfg))
    assert code == 2 and f"there is no database at {typo}" in err and "Traceback" not in err
    assert not typo.parent.exists()


def test_help_lists_the_everyday_commands_before_the_developers(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()
              if line.startswith("    ") and not line.startswith("     ")]  # a command, not a wrapped help line
    assert listed[:4] == ["enroll", "people", "run", "export"]
    assert max(listed.index(c) for c in ("report", "unknowns", "backup")) < min(
        listed.index(c) for c in ("analyze", "train", "ship"))
