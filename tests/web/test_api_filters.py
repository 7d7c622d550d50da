"""/api/names: the ends-with, contains and length filters, and the CSV and text downloads."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from app.data.corpus import fold
from app.main import create_app
from app.web import export


@pytest.fixture(scope="module")
def client(tiny_models_folder):
    with TestClient(create_app(tiny_models_folder)) as client:
        yield client


def test_every_name_respects_the_filters(client):
    params = {"n": 8, "seed": 4, "temperature": 1.4, "suffix": "A", "contains": "o",
              "min_length": 5, "max_length": 12}
    body = client.get("/api/names", params=params).json()
    assert body["names"]
    for item in body["names"]:
        key = fold(item["name"])
        assert key.endswith("a") and "o" in key and 5 <= len(item["name"]) <= 12
    assert body["complete"] == (len(body["names"]) == 8)


def test_a_filter_nothing_meets_says_incomplete_within_the_budget(client):
    body = client.get("/api/names", params={"n": 5, "seed": 1, "suffix": "ñuu savi ñuu"}).json()
    assert body["complete"] is False and len(body["names"]) < 5 and body["draws"] <= 256


@pytest.mark.parametrize(("params", "field", "allowed"), [
    ({"min_length": 0}, "min_length", "from 1 to max_length"),
    ({"min_length": 30, "max_length": 20}, "min_length", "from 1 to max_length"),
    ({"suffix": "ø"}, "suffix", "characters the model knows"),
    ({"contains": "x" * 65}, "contains", "characters the model knows"),
])
def test_bad_filters_get_422_naming_the_field(client, params, field, allowed):
    response = client.get("/api/names", params=params)
    assert response.status_code == 422
    (entry,) = [e for e in response.json()["detail"] if e["loc"][-1] == field]
    assert entry["msg"].startswith(f"{field}:") and allowed in entry["msg"]


def test_more_names_with_the_same_seed_keep_the_first_ones(client):
    few = client.get("/api/names", params={"n": 3, "seed": 9, "temperature": 1.2}).json()
    many = client.get("/api/names", params={"n": 12, "seed": 9, "temperature": 1.2}).json()
    assert [x["name"] for x in many["names"][:3]] == [x["name"] for x in few["names"]]


def test_csv_download_parses_and_matches_the_json(client):
    params = {"n": 6, "seed": 5, "temperature": 1.0}
    names = [x["name"] for x in client.get("/api/names", params=params).json()["names"]]
    response = client.get("/api/names", params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="toponimo-lstm-5.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["name"] for r in rows] == names
    assert all(r["novel"] in ("true", "false") and float(r["nll_per_char"]) > 0 for r in rows)


def test_text_by_parameter_or_by_accept_header(client):
    params = {"n": 4, "seed": 2}
    names = [x["name"] for x in client.get("/api/names", params=params).json()["names"]]
    by_param = client.get("/api/names", params={**params, "format": "txt"})
    by_header = client.get("/api/names", params=params, headers={"Accept": "text/plain"})
    for response in (by_param, by_header):
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.splitlines() == names
    assert client.get("/api/names", params=params, headers={"Accept": "text/csv"}).text \
        .startswith("name,novel,")
    assert client.get("/api/names", params={"format": "xml"}).status_code == 422


def test_a_blank_format_means_the_default(client):
    blank = client.get("/api/names", params={"n": 2, "format": ""}, headers={"Accept": "text/csv"})
    assert blank.headers["content-type"].startswith("text/csv")   # as if not given
    assert client.get("/api/names", params={"n": 2, "format": ""}).headers[
        "content-type"].startswith("application/json")


@pytest.mark.parametrize(("accept", "chosen"), [
    ("text/plain;q=0.1, application/json", "json"),   # the client prefers JSON
    ("text/csv;q=0", "json"),                          # CSV refused: the default
    ("text/plain, text/csv;q=0.5", "txt"),
    ("text/*", "csv"), ("*/*", "json"), ("", "json"), ("image/png", "json"),
    ("text/csv, application/json", "csv"),             # a tie: the first named
    ("text/csv;q=0.3, */*;q=0.5", "json"),             # any type, preferred to CSV
])
def test_the_accept_header_is_weighed_by_its_q_values(accept, chosen):
    assert export.wanted_format(None, accept) == chosen
