"""What every response gets from app.web.middleware: HEAD, security headers, gzip, no Host echo,
and load shedding that never trips over the request it reads."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.web.middleware import heavy_count
from app.web.schemas import NamesQuery
from app.web.service import is_heavy


@pytest.fixture(scope="module")
def client(tiny_models_folder):
    with TestClient(create_app(tiny_models_folder)) as client:
        yield client


GET_ROUTES = ["/healthz", "/readyz", "/api/models", "/api/estados", "/api/names?n=1&seed=1",
              "/api/score?name=Tepic", "/api/report", "/", "/comparar", "/docs", "/openapi.json",
              "/static/style.css", "/static/app.js"]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_works_wherever_get_does(client, path):
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code != 405
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize("path", ["/api/names", "/", "/healthz"])
def test_a_method_not_allowed_lists_head_beside_get(client, path):
    refused = client.post(path)
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", [*GET_ROUTES, "/api/names?n=500", "/nowhere",
                                  "/api/names?model=gpt"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    if path != "/docs":
        for rule in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                     "form-action 'self'", "img-src 'self' data:"):
            assert rule in csp, rule
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"]


def test_pages_have_no_inline_script_or_style(client):
    for path in ("/", "/comparar?nombre=Tepic"):
        html = client.get(path).text
        assert " style=" not in html and "<style" not in html, path
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert all('src="' in attrs or 'type="application/json"' in attrs
                   for attrs, _ in scripts), path


@pytest.mark.parametrize("path", ["/api/names/", "/static", "/comparar/", "/docs/"])
def test_no_redirect_echoes_the_host_header(client, path):
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert "evil.example" not in response.headers.get("location", "")
    assert "evil.example" not in response.text


def test_large_responses_are_compressed(client):
    page = client.get("/comparar", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    tiny = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in tiny.headers      # below the minimum size


@pytest.mark.parametrize("n", ["²", "9" * 5000], ids=["superscript-two", "5000-digits"])
def test_a_count_that_is_not_a_plain_number_gets_the_usual_422(client, n):
    # load shedding reads n before validation: '²' passes str.isdigit() and int() refuses it,
    # and int() refuses 5000 digits
    api = client.get("/api/names", params={"n": n})
    assert api.status_code == 422
    assert api.json()["detail"][0]["msg"].startswith("n:") and "1 to 100" in api.text
    page = client.get("/", params={"n": n})
    assert page.status_code == 422
    assert "Cuántos: escribe un número entero del 1 al 100." in page.text


@pytest.mark.parametrize("text", ["100", "0000000100", "+100", " 100 ", "007"])
def test_load_shedding_reads_n_as_validation_does(text):
    n = NamesQuery.model_validate({"n": text}).n
    assert heavy_count(text) == is_heavy(n)

