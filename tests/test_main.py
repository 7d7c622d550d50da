"""``python -m app`` and the app's start-up: bad flags and settings are refused before any model loads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import app.main
from app import __main__ as serve
from app.web.registry import MODELS_DIR_ENV
from app.web.scheduler import DEADLINE_ENV


@pytest.fixture
def started(monkeypatch, tiny_models_folder) -> list[dict]:
    """The keyword arguments of every uvicorn.run that ``python -m app`` makes (none serves)."""
    calls: list[dict] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda target, **kwargs: calls.append(kwargs))
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_folder))
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    return calls


def test_the_flags_reach_uvicorn(started):
    serve.main(["--port", "8123", "--workers", "2"])
    assert [(c["port"], c["workers"]) for c in started] == [(8123, 2)]


@pytest.mark.parametrize("argv, message", [
    (["--port", "99999"], "--port must be in [1, 65535], got 99999"),
    (["--port", "0"], "--port must be in [1, 65535], got 0"),
    (["--workers", "0"], "--workers must be in [1, inf), got 0"),
    (["--host", ""], "--host must be an address or a host name"),   # "" would listen everywhere
    (["--host", "999.1.1.1"], "--host: cannot listen on '999.1.1.1'"),
])
def test_a_bad_flag_exits_2_without_starting(started, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        serve.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert started == []


def test_an_unreadable_models_folder_exits_2_without_starting(started, monkeypatch, capsys,
                                                             tmp_path):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(serve.os, "access", lambda path, mode: False)   # as if mode 000
    with pytest.raises(SystemExit) as exit_:
        serve.main([])
    assert exit_.value.code == 2 and f"cannot read the models folder {tmp_path}" in capsys.readouterr().err
    assert started == []


@pytest.mark.parametrize("name, value, message", [
    (DEADLINE_ENV, "abc", "TOPONIMO_DEADLINE_SECONDS must be a positive number of seconds, got 'abc'"),
    (DEADLINE_ENV, "0", "TOPONIMO_DEADLINE_SECONDS must be a positive number of seconds, got '0'"),
    (MODELS_DIR_ENV, "/nonexistent/models", "no such models folder: /nonexistent/models ($TOPONIMO_MODELS_DIR"),
])
def test_a_bad_setting_exits_2_without_starting(started, monkeypatch, capsys, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        serve.main([])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert started == []


def test_the_app_started_another_way_refuses_a_bad_deadline_before_loading_models(
        monkeypatch, tiny_models_folder):
    """As under ``uvicorn app.main:app``: the lifespan checks the setting first."""
    monkeypatch.setenv(DEADLINE_ENV, "abc")
    loaded = []
    monkeypatch.setattr(app.main, "load_registry", lambda *args: loaded.append(args))
    refused = pytest.raises(ValueError, match="TOPONIMO_DEADLINE_SECONDS must be a positive number")
    with refused, TestClient(app.main.create_app(tiny_models_folder)):
        pass
    assert loaded == []
