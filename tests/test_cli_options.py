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
