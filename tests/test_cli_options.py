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
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[storage]\ndatabase_url = "sqlite:///{tmp_path / "from-config.db"}"\n')
    monkeypatch.delenv("FDFACE_DB", raising=False)
    code, out, _ = cli(capsys, "people", "list", "--config", str(cfg))
    assert code == 0 and "nobody enrolled" in out and (tmp_path / "from-config.db").exists()
