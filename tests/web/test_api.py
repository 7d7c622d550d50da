"""API and page contracts through TestClient (lifespan included), with tiny models only."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import unicodedata
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.data.corpus import fold
from app.data.gazetteer import load_gazetteer
from app.main import create_app
from app.web import api, scheduler, service
from app.web.registry import serve_model
from tests.fakes import ListModel

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def client(tiny_models_folder):
    with TestClient(create_app(tiny_models_folder)) as client:
        yield client


def detail_for(response, field: str) -> str:
    assert response.status_code == 422, response.text
    messages = [e["msg"] for e in response.json()["detail"] if e["loc"][-1] == field]
    assert messages, response.json()
    return messages[0]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "reason": None, "models": ["lstm", "rnn"], "busy": 0,
                            "capacity": scheduler.CAPACITY, "failures": []}


def test_api_docs_are_served_by_the_app_itself(client):
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "'/openapi.json'" in html


def test_only_query_parameters_may_be_empty_in_the_schema(client):
    spec = client.get("/openapi.json").json()
    empty = {"type": "string", "maxLength": 0}
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/names"]["get"]["parameters"]}
    assert empty in params["seed"]["anyOf"] and empty in params["n"]["anyOf"]
    assert "empty" not in json.dumps(spec["components"]["schemas"]["NameOut"])
    assert spec["components"]["schemas"]["NameOut"]["properties"]["novel"]["type"] == "boolean"


def test_models_describe_each_loaded_model(client):
    body = client.get("/api/models").json()
    assert body["default"] == "lstm"
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"lstm", "rnn"}
    lstm = by_name["lstm"]
    assert lstm["kind"] == "lstm" and lstm["hyperparameters"]["hidden"] == 16
    assert lstm["n_params"] > 0 and lstm["vocab_size"] > 20
    assert lstm["val_nll"] == 3.0 and lstm["val_nll_source"] == "checkpoint"   # no cv.json here
    assert lstm["train_seconds"] == 0.1
    assert lstm["data_sha256"] == "0" * 64 and lstm["description"]


def test_names_default_request(client):
    response = client.get("/api/names", params={"seed": 1})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["model"], body["temperature"], body["seed"], body["n_requested"]) == (
        "lstm", 0.8, 1, 10)
    assert 1 <= len(body["names"]) <= 10 and body["elapsed_ms"] >= 0
    first = body["names"][0]
    assert set(first) == {"name", "novel", "nll_per_char", "nearest", "estado"}
    assert first["estado"] is None and body["estado"] is None   # an unconditioned model
    assert set(first["nearest"]) == {"name", "estado", "distance"}
    assert math.isfinite(first["nll_per_char"])


def test_names_are_reproducible_with_a_seed_and_report_a_random_one(client):
    params = {"model": "rnn", "n": 5, "seed": 42, "temperature": 1.2}
    first = client.get("/api/names", params=params).json()["names"]
    assert client.get("/api/names", params=params).json()["names"] == first
    unseeded = client.get("/api/names", params={"n": 3}).json()
    replay = client.get("/api/names", params={"n": 3, "seed": unseeded["seed"]}).json()
    assert replay["names"] == unseeded["names"]


def test_prefix_is_kept_and_blank_options_mean_defaults(client):
    query = "/api/names?model=lstm&n=5&temperature=0.8&prefix=Ta&seed=&top_k=&max_length=&novel=true"
    body = client.get(query).json()
    assert body["names"] and all(n["name"].startswith("Ta") for n in body["names"])


def test_novel_filter_excludes_real_names(client):
    # a model that only knows two real names and one invented one
    registry = client.app.state.registry
    registry.models["lista"] = serve_model("lista", ListModel(["Tepic", "Colima", "Tepiquillo"]),
                                           load_gazetteer())
    try:
        novel = client.get("/api/names", params={"model": "lista", "n": 3, "seed": 0}).json()
        assert [n["name"] for n in novel["names"]] == ["Tepiquillo"]
        assert novel["complete"] is False
        everything = client.get("/api/names", params={"model": "lista", "n": 3, "novel": False})
        assert {(n["name"], n["novel"]) for n in everything.json()["names"]} == {
            ("Tepic", False), ("Colima", False), ("Tepiquillo", True)}
    finally:
        del registry.models["lista"]


def test_names_in_one_response_are_distinct(client):
    body = client.get("/api/names", params={"model": "rnn", "n": 100, "seed": 3,
                                            "novel": "false"}).json()
    keys = [fold(n["name"]) for n in body["names"]]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(("params", "field", "allowed"), [
    ({"n": 0}, "n", "1 to 100"),
    ({"n": 101}, "n", "1 to 100"),
    ({"n": "ten"}, "n", "1 to 100"),
    ({"temperature": 0}, "temperature", "greater than 0 and at most 5"),
    ({"temperature": -1}, "temperature", "greater than 0"),
    ({"temperature": 5.01}, "temperature", "at most 5"),
    ({"temperature": "nan"}, "temperature", "at most 5"),
    ({"temperature": "inf"}, "temperature", "at most 5"),
    ({"temperature": "warm"}, "temperature", "at most 5"),
    ({"max_length": 65}, "max_length", "1 to 64"),
    ({"max_length": 0}, "max_length", "1 to 64"),
    ({"seed": -1}, "seed", "0 to 4294967295"),
    ({"seed": "1.5"}, "seed", "0 to 4294967295"),
    ({"top_k": 0}, "top_k", "1 to 1000"),
    ({"novel": "maybe"}, "novel", "true or false"),
])
def test_bad_parameters_get_422_naming_field_and_range(client, params, field, allowed):
    message = detail_for(client.get("/api/names", params=params), field)
    assert message.startswith(f"{field}:") and allowed in message


def test_a_huge_input_is_not_echoed_back_whole(client):
    message = detail_for(client.get("/api/names", params={"n": "9" * 5000}), "n")
    assert "1 to 100" in message and "9" * 70 + "…" in message and "9" * 80 not in message


def test_prefix_with_unknown_characters_names_them(client):
    response = client.get("/api/names", params={"prefix": "Ta<$"})
    message = detail_for(response, "prefix")
    assert "'<'" in message and "'$'" in message
    assert response.json()["detail"][0]["ctx"] == {"unknown": ["<", "$"]}


def test_prefix_longer_than_max_length(client):
    message = detail_for(client.get("/api/names", params={"prefix": "Tulum", "max_length": 4}),
                         "prefix")
    assert "max_length (4)" in message


@pytest.mark.parametrize("prefix", [" ", " San", "San  Juan"])
def test_prefix_no_name_could_start_with_is_refused(client, prefix):
    message = detail_for(client.get("/api/names", params={"prefix": prefix}), "prefix")
    assert "space" in message


@pytest.mark.parametrize(("path", "field"), [("/api/names?prefix=San%0A", "prefix"),
                                             ("/api/names?contains=a%0Ab", "contains"),
                                             ("/api/score?name=San%0AJuan", "name")])
def test_a_line_break_is_no_letter(client, path, field):
    assert "'\\n'" in detail_for(client.get(path), field)


def test_a_lowercase_prefix_is_refused_suggesting_the_capital(client):
    message = detail_for(client.get("/api/names", params={"prefix": "san "}), "prefix")
    assert "lowercase" in message and "'San '" in message


def test_unknown_model_is_404_listing_available(client):
    for url in ("/api/names?model=gpt", "/api/score?name=Tepic&model=gpt"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["available"] == ["lstm", "rnn"]
        assert "lstm, rnn" in response.json()["detail"]


def test_score_places_name_among_real_ones(client):
    body = client.get("/api/score", params={"name": " Tepic ", "model": "rnn"}).json()
    assert body["name"] == "Tepic" and body["model"] == "rnn"
    assert body["nll_per_char"] > 0 and 0 <= body["percentile"] <= 100
    assert body["n_reference"] > 100


def test_limits_count_characters_as_written_not_their_decomposed_code_points(client):
    name = "Hué" * 33                                     # 99 characters, 132 code points in NFD
    decomposed = unicodedata.normalize("NFD", name)
    scored = client.get("/api/score", params={"name": decomposed, "model": "lstm"})
    assert scored.status_code == 200 and scored.json()["name"] == name
    names = client.get("/api/names", params={"n": 1, "seed": 1, "max_length": 64,
                                             "contains": unicodedata.normalize("NFD", "é" * 40)})
    assert names.status_code == 200
    too_long = client.get("/api/score", params={"name": decomposed + "xx", "model": "lstm"})
    assert "at most 100 characters" in detail_for(too_long, "name")


def test_the_longest_real_name_can_be_scored(client):
    gazetteer = load_gazetteer()
    longest = max(gazetteer.names, key=len)   # 76 characters
    registry = client.app.state.registry
    registry.models["lista"] = serve_model("lista", ListModel([longest]), gazetteer)
    try:
        scored = client.get("/api/score", params={"name": longest, "model": "lista"})
        assert scored.status_code == 200 and scored.json()["name"] == longest
    finally:
        del registry.models["lista"]


def test_score_errors(client):
    assert "'#'" in detail_for(client.get("/api/score", params={"name": "Te#pic"}), "name")
    assert "required" in detail_for(client.get("/api/score"), "name").lower()
    assert "1 to 100" in detail_for(client.get("/api/score", params={"name": "a" * 101}), "name")
    assert "empty" in detail_for(client.get("/api/score", params={"name": "   "}), "name")


def test_startup_skips_a_corrupt_checkpoint_beside_a_good_one(tmp_path, tiny_models_folder):
    (tmp_path / "lstm.npz").write_bytes((tiny_models_folder / "lstm.npz").read_bytes())
    (tmp_path / "broken.npz").write_bytes(b"not a checkpoint")
    (tmp_path / "cut.npz").write_bytes((tiny_models_folder / "rnn.npz").read_bytes()[:300])
    with TestClient(create_app(tmp_path)) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["models"] == ["lstm"]
        assert {f["file"] for f in ready["failures"]} == {"broken.npz", "cut.npz"}
        assert all("not an npz archive" in f["reason"] for f in ready["failures"])
        assert client.get("/api/names", params={"n": 2}).status_code == 200


def test_startup_without_any_model_still_serves_and_says_why(tmp_path):
    with TestClient(create_app(tmp_path / "missing")) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failures"][0]["reason"] == "models folder not found"
        names = client.get("/api/names")   # no model at all: another worker may have one
        assert names.status_code == 503 and names.headers["Retry-After"] == "1"
        assert "none (see /readyz)" in names.json()["detail"]
        page = client.get("/")
        assert page.status_code == 503 and "No hay ningún modelo cargado" in page.text


@pytest.mark.skipif(not any(MODELS.glob("*.npz")), reason="no committed models/*.npz yet")
def test_committed_models_load():
    with TestClient(create_app(MODELS)) as client:
        ready = client.get("/readyz").json()
        assert ready["failures"] == []
        assert ready["models"] == sorted(path.stem for path in MODELS.glob("*.npz"))


@pytest.fixture(scope="module")
def state_client(tiny_state_models_folder):
    with TestClient(create_app(tiny_state_models_folder)) as client:
        yield client


@pytest.mark.parametrize("estado", ["Yucatán", "yucatan", "YUCATAN", "31", " yucatán "])
def test_names_for_a_state_by_name_or_code(state_client, estado):
    body = state_client.get("/api/names", params={"model": "lstm_estado", "n": 5, "seed": 4,
                                                  "estado": estado}).json()
    assert body["estado"] == "Yucatán" and len(body["names"]) == 5
    assert all(n["estado"] == "Yucatán" and n["nearest"]["estado"] == "Yucatán"
               for n in body["names"])


def test_without_estado_a_conditioned_model_says_each_names_state(state_client):
    params = {"model": "lstm_estado", "n": 40, "seed": 8, "estado": ""}
    body = state_client.get("/api/names", params=params).json()
    assert body["estado"] is None
    assert {n["estado"] for n in body["names"]} <= {"Oaxaca", "Sonora", "Yucatán"}
    assert "Oaxaca" in {n["estado"] for n in body["names"]}     # 570 of 748 municipalities
    assert state_client.get("/api/names", params=params).json()["names"] == body["names"]


def test_a_state_models_score_is_for_the_state_asked_for_as_its_names_are(state_client):
    body = state_client.get("/api/names", params={"model": "lstm_estado", "n": 6, "seed": 3,
                                                  "estado": "Sonora"}).json()
    for item in body["names"]:
        score = state_client.get("/api/score", params={"name": item["name"], "model": "lstm_estado",
                                                       "estado": "sonora"}).json()
        assert score["estado"] == "Sonora"
        assert score["nll_per_char"] == pytest.approx(item["nll_per_char"], rel=1e-5)
    # without estado, the likeliest state, and which one it was
    name = body["names"][0]["name"]
    best = state_client.get("/api/score", params={"name": name, "model": "lstm_estado"}).json()
    each = {e: state_client.get("/api/score", params={"name": name, "model": "lstm_estado",
                                                      "estado": e}).json()["nll_per_char"]
            for e in ("Oaxaca", "Sonora", "Yucatán")}
    assert best["estado"] == min(each, key=each.get)
    assert best["nll_per_char"] == pytest.approx(min(each.values()))
    plain = state_client.get("/api/score", params={"name": name, "model": "lstm"}).json()
    assert plain["estado"] is None


def test_a_score_for_a_state_checks_the_state_as_names_does(state_client):
    unknown = state_client.get("/api/score", params={"name": "Tepic", "model": "lstm_estado",
                                                     "estado": "Narnia"})
    assert "20 Oaxaca, 26 Sonora, 31 Yucatán" in detail_for(unknown, "estado")
    plain = state_client.get("/api/score", params={"name": "Tepic", "model": "lstm",
                                                   "estado": "Sonora"})
    assert "not conditioned" in detail_for(plain, "estado")


@pytest.mark.parametrize("estado", ["Narnia", "33", "Jalisco"])
def test_unknown_state_gets_422_listing_the_valid_ones(state_client, estado):
    response = state_client.get("/api/names", params={"model": "lstm_estado", "estado": estado})
    message = detail_for(response, "estado")
    assert repr(estado) in message or "'Jalisco'" in message
    assert "20 Oaxaca, 26 Sonora, 31 Yucatán" in message
    assert response.json()["detail"][0]["ctx"]["valid"] == ["Oaxaca", "Sonora", "Yucatán"]


def test_estado_on_an_unconditioned_model_names_the_conditioned_ones(state_client):
    response = state_client.get("/api/names", params={"model": "rnn", "estado": "Oaxaca"})
    message = detail_for(response, "estado")
    assert "'rnn' is not conditioned" in message and "models that are: lstm_estado" in message
    assert response.json()["detail"][0]["type"] == "not_conditioned"


def test_estados_lists_the_states_of_the_data(state_client, client):
    body = state_client.get("/api/estados").json()
    assert body["conditioned_models"] == ["lstm_estado"] and body["total_municipios"] == 2458
    assert len(body["estados"]) == 32
    assert body["estados"][19] == {"code": "20", "name": "Oaxaca", "municipios": 570}
    # from the data, not from a model: the same with no conditioned model loaded
    plain = client.get("/api/estados").json()
    assert plain["estados"] == body["estados"] and plain["conditioned_models"] == []


def test_scoring_runs_off_the_event_loop_on_the_compute_thread(client, monkeypatch):
    threads = []

    def recording(*args):
        threads.append(threading.current_thread().name)
        return service.score_name(*args)

    monkeypatch.setattr(api, "score_name", recording)
    assert client.get("/api/score", params={"name": "Tepic"}).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("toponimo-compute")


async def hang_up_at_once(app, path: str, query: str) -> list[dict]:
    """What ``app`` sends back for a GET whose client hangs up as soon as it has sent it (the
    server then answers every receive() with http.disconnect)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": [(b"host", b"testserver")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    request = iter([{"type": "http.request", "body": b"", "more_body": False}])
    sent = []

    async def receive() -> dict:
        return next(request, {"type": "http.disconnect"})

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("path", ["/api/names", "/"])
def test_the_work_of_a_client_that_hung_up_is_dropped(client, path):
    sent = client.portal.call(hang_up_at_once, client.app, path,
                              "model=rnn&n=100&temperature=0.01&seed=1")
    assert sent[0]["status"] == 503                     # dropped, not sampled and rendered
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""
    assert client.app.state.sampling_turn.busy == 0


@pytest.fixture
def own_client(tiny_models_folder):
    """A client whose app's scheduler a test may replace."""
    with TestClient(create_app(tiny_models_folder)) as client:
        yield client


def test_a_saturated_worker_answers_503_at_once_and_is_not_ready(own_client):
    own_client.app.state.sampling_turn = scheduler.Scheduler(capacity=0)
    busy = own_client.get("/api/names", params={"n": 1})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "busy" in busy.json()["detail"]
    page = own_client.get("/")
    assert page.status_code == 503 and "inténtalo de nuevo" in page.text
    ready = own_client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"].startswith("saturated")
    assert own_client.get("/healthz").status_code == 200      # liveness only


def test_past_its_deadline_a_request_returns_what_it_has_and_why(own_client):
    own_client.app.state.sampling_turn = scheduler.Scheduler(deadline_seconds=1e-9)
    body = own_client.get("/api/names", params={"n": 100, "seed": 1}).json()
    assert body["complete"] is False and body["stopped"] == "deadline"
    assert len(body["names"]) < 100
    own_client.app.state.sampling_turn = scheduler.Scheduler()
    full = own_client.get("/api/names", params={"n": 2, "seed": 1}).json()
    assert full["complete"] is True and full["stopped"] is None


def test_a_draining_worker_refuses_new_requests_and_is_not_ready(own_client):
    own_client.app.state.sampling_turn.drain()
    refused = own_client.get("/api/names", params={"n": 1})
    assert refused.status_code == 503 and "shutting down" in refused.json()["detail"]
    assert own_client.get("/readyz").json()["reason"] == "shutting down"


def test_the_schema_documents_why_sampling_stopped(client):
    spec = client.get("/openapi.json").json()
    stopped = spec["components"]["schemas"]["NamesResponse"]["properties"]["stopped"]
    assert {"budget", "deadline", "shutdown"} <= set(json.dumps(stopped).replace('"', " ").split())
    assert "503" in spec["paths"]["/api/names"]["get"]["responses"]


def test_the_schema_describes_every_error_body_the_api_sends(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path in ("/api/names", "/api/score"):
        responses = spec["paths"][path]["get"]["responses"]
        bodies = {code: responses[code]["content"]["application/json"]["schema"]["$ref"]
                  for code in ("404", "422", "503")}
        assert bodies == {"404": "#/components/schemas/UnknownModelError",
                          "422": "#/components/schemas/InvalidRequest",
                          "503": "#/components/schemas/Unavailable"}
    error = schemas["FieldError"]["properties"]
    assert {"loc", "msg", "type", "ctx"} <= set(error)
    # and the bodies sent are those: the field named, then what is allowed
    sent = client.get("/api/score", params={"name": "Tepic", "model": "x" * 200}).json()
    assert set(sent) == {"detail"} and set(sent["detail"][0]) <= set(error)
    assert set(client.get("/api/score", params={"name": "Tepic", "model": "gpt"}).json()) == set(
        schemas["UnknownModelError"]["properties"])


def test_an_empty_models_folder_makes_readyz_say_why(tmp_path):
    with TestClient(create_app(tmp_path)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"].startswith("no model")
        assert ready.json()["failures"] == [{"file": str(tmp_path),
                                             "reason": "no *.npz checkpoint in the models folder"}]


def test_the_default_model_is_the_registrys_everywhere(tmp_path, tiny_models_folder):
    (tmp_path / "rnn.npz").write_bytes((tiny_models_folder / "rnn.npz").read_bytes())
    with TestClient(create_app(tmp_path)) as client:
        assert client.get("/api/models").json()["default"] == "rnn"
        names = client.get("/api/names", params={"n": 2})
        assert names.status_code == 200 and names.json()["model"] == "rnn"
        score = client.get("/api/score", params={"name": "Tepic"})
        assert score.status_code == 200 and score.json()["model"] == "rnn"
        assert client.get("/api/names", params={"n": 2, "model": ""}).json()["model"] == "rnn"
        spec = client.get("/openapi.json").json()
        for path in ("/api/names", "/api/score"):
            model = next(p for p in spec["paths"][path]["get"]["parameters"]
                         if p["name"] == "model")
            assert model["schema"]["default"] == "rnn" and "default" in model["description"]


def test_a_request_cut_by_shutdown_before_any_name_is_a_503_a_proxy_can_retry(tiny_models_folder):
    from app.data.gazetteer import load_gazetteer
    from app.generation.sampling import SampleResult
    from app.web.registry import load_registry
    from app.web.schemas import NamesQuery

    class CutByShutdown:   # the scheduler's answer when SIGTERM stops a started request
        async def run(self, make_steps, client_gone, heavy):
            return SampleResult(requested=3, stopped="shutdown"), 0.01

    registry = load_registry(tiny_models_folder, load_gazetteer())
    with pytest.raises(scheduler.Overloaded, match="shutting down"):
        asyncio.run(service.generate_names(registry, NamesQuery(model="lstm", n=3),
                                           CutByShutdown()))


def test_scoring_beyond_the_compute_queue_is_a_fast_503(client, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_score(*args):
        started.set()
        release.wait(10)
        return "done"

    monkeypatch.setattr(service, "COMPUTE_QUEUE_LIMIT", 1)

    async def scenario():
        first = asyncio.ensure_future(service.on_compute_thread(slow_score))
        while not started.is_set():
            await asyncio.sleep(0.01)
        with pytest.raises(scheduler.Overloaded, match="already queued"):
            await service.on_compute_thread(slow_score)
        release.set()
        return await first

    assert asyncio.run(scenario()) == "done"
    assert service.COMPUTE_QUEUE.pending == 0
    monkeypatch.setattr(service.COMPUTE_QUEUE, "pending", 1)
    answer = client.get("/api/score", params={"name": "Tepic"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
