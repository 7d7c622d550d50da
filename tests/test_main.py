"""``python -m app``: bad flags are refused before uvicorn starts."""

from __future__ import annotations

import pytest

from app import __main__ as serve


@pytest.fixture
def started(monkeypatch) -> list[dict]:
    """The keyword arguments of every uvicorn.run that ``python -m app`` makes (none serves)."""
    calls: list[dict] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda target, **kwargs: calls.append(kwargs))
    return calls


def test_the_flags_reach_uvicorn(started):
    serve.main(["--port", "8123", "--workers", "2"])
    assert [(c["port"], c["workers"]) for c in started] == [(8123, 2)]


@pytest.mark.parametrize("argv, message", [
    (["--port", "99999"], "--port must be in [1, 65535], got 99999"),
    (["--port", "0"], "--port must be in [1, 65535], got 0"),
    (["--workers", "0"], "--workers must be in [1, inf), got 0"),
])
def test_a_bad_flag_exits_2_without_starting(started, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        serve.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert started == []

