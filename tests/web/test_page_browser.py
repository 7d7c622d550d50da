"""A real browser on the page: Playwright driving Debian's Chromium against a live uvicorn.

One browser for the module. Every page is served with the strict Content-Security-Policy the
service sends (added here too, so this test does not depend on it) and any CSP violation fails.
axe-core is installed from npm for these tests only, never served by the app:

    npm ci --no-audit --no-fund     # package-lock.json -> node_modules/axe-core
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import sync_playwright
from starlette.requests import Request

from app.data.corpus import fold
from app.eval import report
from app.lm.base import load_model
from app.web.middleware import busy_response
from app.web.pages.error import status_page
from tests.conftest import TINY_NAMES, TINY_STATES, free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = Path(os.environ.get("AXE_CORE_JS", ROOT / "node_modules/axe-core/axe.min.js"))
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
SIZES = {"ancho": (1280, 800), "telefono": (390, 844)}
BUSY_TEXT = busy_response("/", "busy").body.decode()

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def models_folder(tiny_state_models_folder, tmp_path_factory):
    """The tiny lstm, rnn and lstm_estado, with a small report (and a judge's verdict per state)."""
    folder = tmp_path_factory.mktemp("browser_models")
    models = {}
    for path in tiny_state_models_folder.glob("*.npz"):
        shutil.copy(path, folder / path.name)
        models[path.stem] = load_model(path)
    built = report.build_report(models, TINY_NAMES, samples=20, progress=False)
    judged = {"n": 30, "accuracy": 0.3, "top3": 0.6, "balanced_accuracy": 0.3}
    built["fidelity"] = {"classifier": "naive Bayes", "chance": 1 / 3, "per_state": 10,
                         "temperature": 0.8, "real_held_out": {**judged, "per_label": {}},
                         "models": [{"name": "lstm_estado", **judged,
                                     "per_label": dict(zip(TINY_STATES, (0.9, 0.2, 0.05),
                                                           strict=True))}]}
    report.write_report(built, folder / "report.json")
    return folder


@pytest.fixture(scope="module")
def server(models_folder):
    """uvicorn serving the tiny models on a free loopback port."""
    port = free_port()
    # a generous deadline: on a busy machine the 0.5 s one could cut a batch (untrained tiny
    # models take many draws to meet a filter) at a different name than its CSV download
    env = {**os.environ, "TOPONIMO_MODELS_DIR": str(models_folder), "TOPONIMO_DEADLINE_SECONDS": "20"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host",
                                "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                               env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("uvicorn did not become ready within 30 s")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("TOPONIMO_REQUIRE_BROWSER"):   # CI: a skipped browser test is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, server):
    """A fresh context per call (size, JavaScript on or off), under the strict CSP."""
    contexts, violations = [], []

    def add_csp(route):
        if route.request.resource_type != "document":   # a policy binds documents only; and a
            route.continue_()   # fetch in flight here (the favicon) can outlive its page
            return
        response = route.fetch(max_redirects=0)   # the browser follows redirects itself
        route.fulfill(response=response,
                      headers={**response.headers, "content-security-policy": CSP})

    def make(path="/", size="ancho", javascript=True, **options):
        width, height = SIZES[size]
        context = browser.new_context(viewport={"width": width, "height": height},
                                      java_script_enabled=javascript, accept_downloads=True,
                                      **options)
        contexts.append(context)
        context.route(f"{server}/**", add_csp)
        page = context.new_page()
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: violations.append(str(e)))
        page.goto(server + path)
        return page

    yield make
    for context in contexts:
        context.close()
    assert violations == []


def names_on(page) -> list[str]:
    return page.locator("#nombres .nombre").all_inner_texts()


def settings(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize("size", SIZES)
def test_button_and_first_names_are_visible_without_scrolling(open_page, size):
    page = open_page("/", size)
    height = SIZES[size][1]
    button = page.get_by_role("button", name="Inventar nombres").bounding_box()
    first = page.locator("#nombres li").first.bounding_box()
    assert button["y"] + button["height"] <= height
    assert first["y"] + first["height"] <= height


def test_on_a_phone_a_new_batch_below_the_options_is_brought_into_view(open_page):
    page = open_page("/?n=3", "telefono")
    page.locator("#mas-opciones summary").click()          # the options push the names down
    page.locator("#suffix").fill("a")
    page.locator("#inventar").click()
    page.wait_for_function("() => location.search.includes('suffix=a')")
    page.wait_for_timeout(300)                              # a smooth scroll, if any, ends
    heading = page.locator("#titulo-resultados").bounding_box()
    assert 0 <= heading["y"] < SIZES["telefono"][1]


def test_each_batch_gets_a_url_that_repeats_it_and_back_returns(open_page, server):
    page = open_page("/?model=lstm&n=6")
    page.evaluate("window.sinRecarga = true")
    opened_url = page.url
    assert "seed" in settings(opened_url)                       # the first batch too
    page.get_by_role("button", name="Inventar nombres").click()
    # the URL read before the click: a fast answer may have changed it before page.url is read
    page.wait_for_function("u => location.href !== u", arg=opened_url)
    first_url, first = page.url, names_on(page)
    assert settings(first_url)["seed"] == page.get_by_label("Semilla").input_value()
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("u => location.href !== u", arg=first_url)
    second_url, second = page.url, names_on(page)
    assert second != first and len(second) == 6
    assert page.evaluate("window.sinRecarga") is True          # no reload happened

    copied = open_page(urlsplit(second_url).path + "?" + urlsplit(second_url).query)
    assert names_on(copied) == second                           # a copied link repeats them

    page.go_back()
    page.wait_for_function("u => location.href === u", arg=first_url)
    assert names_on(page) == first
    assert page.get_by_label("Semilla").input_value() == settings(first_url)["seed"]


def test_back_and_forward_restore_every_field_of_the_batch(open_page):
    """A field a batch's URL leaves out goes back to what the server shows for it."""
    page = open_page("/?model=lstm&n=4")
    first_url, first = page.url, names_on(page)
    page.locator("#mas-opciones summary").click()
    page.get_by_label("Empieza con").fill("Sa")
    page.get_by_label("Contiene").fill("a")
    page.get_by_label("Top-k").fill("5")
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("() => location.search.includes('prefix=Sa')")
    second_url = page.url
    page.go_back()
    page.wait_for_function("u => location.href === u", arg=first_url)
    assert names_on(page) == first
    for field in ("prefix", "contains", "top_k"):
        assert page.locator(f"#{field}").input_value() == "", field
    page.go_forward()
    page.wait_for_function("u => location.href === u", arg=second_url)
    assert [page.locator(f"#{f}").input_value() for f in ("prefix", "contains", "top_k")] == [
        "Sa", "a", "5"]

    # the first page's address may leave out a field that has a default: back to the default
    page = open_page("/?model=lstm&n=0")
    page.get_by_label("Cuántos").fill("3")
    page.locator("#mas-opciones summary").click()
    page.get_by_label("Largo mínimo").fill("2")
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("() => location.search.includes('min_length=2')")
    page.go_back()
    page.wait_for_function("() => location.search === '?model=lstm&n=0'")
    assert page.get_by_label("Cuántos").input_value() == "0"
    assert page.get_by_label("Largo mínimo").input_value() == "1"


def test_a_late_answer_never_replaces_a_newer_batch(open_page):
    """A request still on its way when a newer one starts is dropped, silently."""
    page = open_page("/?model=lstm&n=4")
    first_url, first = page.url, names_on(page)
    held, failed = [], []
    page.route(lambda url: "n=7" in url, lambda route: held.append(route))   # answered later
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.get_by_label("Cuántos").fill("7")
    page.get_by_role("button", name="Inventar nombres").click()
    while not held:
        page.wait_for_timeout(20)
    page.get_by_label("Cuántos").fill("3")
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("() => location.search.includes('n=3')")
    newest_url, newest = page.url, names_on(page)
    held[0].fulfill(response=held[0].fetch())   # the old answer arrives last
    page.wait_for_timeout(500)
    assert page.url == newest_url and names_on(page) == newest and len(newest) == 3
    assert page.get_by_label("Semilla").input_value() == settings(newest_url)["seed"]
    assert page.locator("#errores").inner_text() == ""          # dropping it is no error
    assert page.locator("#formulario").get_attribute("aria-busy") is None
    assert failed == [held[0].request.url]                       # and the server is spared it

    # Back while a batch is on its way: the batch Back returns to stays
    page.get_by_label("Cuántos").fill("7")
    page.get_by_role("button", name="Inventar nombres").click()
    while len(held) < 2:
        page.wait_for_timeout(20)
    page.go_back()
    page.wait_for_function("u => location.href === u", arg=first_url)
    held[1].fulfill(response=held[1].fetch())
    page.wait_for_timeout(500)
    assert page.url == first_url and names_on(page) == first
    assert page.locator("#formulario").get_attribute("aria-busy") is None

    # nor is the slider's request sent if Back comes first: Forward still has the newest batch
    page.go_forward()
    page.wait_for_function("u => location.href === u", arg=newest_url)
    page.get_by_label("Temperatura").press("ArrowLeft")
    page.go_back()
    page.wait_for_timeout(600)                                   # past the slider's rest
    page.go_forward()
    page.wait_for_function("u => location.href === u", arg=newest_url)


def test_slider_reaches_the_apis_range_and_asks_once_per_rest(open_page):
    page = open_page("/?temperature=4.5&n=3&seed=2")
    slider = page.get_by_label("Temperatura")
    assert slider.get_attribute("max") == "5" and slider.input_value() == "4.5"
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/?" in r.url else None)
    slider.focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => location.search.includes('temperature=4.2')")
    page.wait_for_timeout(500)
    assert len(requests) == 1 and settings(page.url)["seed"] == "2"


def test_a_temperature_between_notches_is_sent_again_as_it_was(open_page):
    page = open_page("/?temperature=0.123&n=3&seed=2")
    assert page.locator("#temperatura-valor").text_content() == "0.123"
    page.locator("#mas-opciones summary").click()
    with page.expect_request(lambda r: "/?" in r.url) as asked:
        page.locator("#repetir").click()   # «Usar esta semilla»: the same names, so the same T
    assert settings(asked.value.url)["temperature"] == "0.123"
    page.get_by_label("Temperatura").focus()
    with page.expect_request(lambda r: "/?" in r.url) as moved:
        page.keyboard.press("ArrowRight")   # moved: back on the notches
    temperature = float(settings(moved.value.url)["temperature"])
    assert temperature >= 0.05 and abs(temperature * 20 - round(temperature * 20)) < 1e-9
    assert page.locator("#temperatura-valor").text_content() == f"{temperature:.2f}"


def test_map_chooses_the_state_with_a_click_and_with_the_keyboard(open_page):
    page = open_page("/?model=lstm&n=4")
    page.locator("#por-estado summary").click()
    page.locator('#mapa-estados a[data-estado="Oaxaca"]').click()
    page.wait_for_function("() => location.search.includes('estado=Oaxaca')")
    assert page.locator("#model").input_value() == "lstm_estado"
    assert page.locator("#estado-elegido").input_value() == "Oaxaca"
    assert page.locator("#nombres li", has_text="inventado para Oaxaca").count() == 4

    page.locator('#mapa-estados a[data-estado="Yucatán"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.search.includes('estado=Yucat')")
    assert page.locator("#nombres li", has_text="inventado para Yucatán").count() == 4
    assert page.locator('#mapa-estados a[aria-current="true"]').get_attribute(
        "data-estado") == "Yucatán"


def test_the_map_shows_the_state_of_the_form_whatever_changed_it(open_page):
    def marked(page):
        return page.eval_on_selector_all("#mapa-estados .elegido",
                                         "shapes => shapes.map(s => s.closest('a').dataset.estado)")

    page = open_page("/?model=lstm_estado&estado=Oaxaca&n=2")
    assert page.locator("#por-estado").get_attribute("open") is not None   # a state was asked for
    assert marked(page) == ["Oaxaca"]
    page.locator('#mapa-estados a[data-estado="Sonora"]').click()       # the map
    page.wait_for_function("() => location.search.includes('estado=Sonora')")
    page.locator("#inventar").focus()                                  # focus leaves the map
    assert marked(page) == ["Sonora"]
    page.select_option("#estado-elegido", "Yucatán")                   # the list
    assert marked(page) == ["Yucatán"]
    page.locator("#inventar").click()
    page.wait_for_function("() => location.search.includes('estado=Yucat')")
    page.go_back()                                                     # the history
    page.wait_for_function("() => location.search.includes('estado=Sonora')")
    assert marked(page) == ["Sonora"]
    page.select_option("#model", "lstm")                               # a model without states
    assert marked(page) == []


def test_the_keyboard_passes_the_map_in_one_tab(open_page):
    page = open_page("/?model=lstm_estado&estado=Oaxaca&n=2")
    page.locator("#estado-elegido").focus()
    page.keyboard.press("Tab")
    skip = page.locator("a.saltar")
    assert page.evaluate("document.activeElement.className") == "saltar" and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#titulo-resultados"


def test_filters_errors_and_csv_download(open_page):
    page = open_page("/?model=lstm&n=5")
    page.locator("#mas-opciones summary").click()
    page.get_by_label("Termina en").fill("a")
    page.get_by_label("Largo mínimo").fill("4")
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("() => location.search.includes('suffix=a')")
    names = names_on(page)
    assert names and all(fold(n).endswith("a") and len(n) >= 4 for n in names)

    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert [r["name"] for r in rows] == names

    page.get_by_label("Cuántos").fill("500")
    page.get_by_label("Contiene").fill("ø")
    page.get_by_role("button", name="Inventar nombres").click()
    page.locator("#error-n").wait_for()
    assert names_on(page) == []                                  # old names are gone
    for field in ("n", "contains"):
        assert page.locator(f"#{field}").get_attribute("aria-invalid") == "true"
        assert page.locator(f"#error-{field}").is_visible()
    assert "del 1 al 100" in page.locator("#error-n").inner_text()


def test_without_javascript_everything_but_copying_works(open_page, server):
    page = open_page("/?model=lstm&n=4", javascript=False)
    with page.expect_navigation():
        page.get_by_role("button", name="Inventar nombres").click()
    assert "seed" in settings(page.url) and len(names_on(page)) == 4
    first_url, first = page.url, names_on(page)
    page.locator("#mas-opciones summary").click()
    page.get_by_label("Termina en").fill("a")
    with page.expect_navigation():
        page.get_by_role("button", name="Inventar nombres").click()
    assert settings(page.url)["suffix"] == "a" and names_on(page)
    assert all(fold(n).endswith("a") for n in names_on(page))
    page.go_back()
    assert names_on(page) == first and page.url == first_url
    # every error at once, each beside its field
    page.goto(server + "/?n=0&temperature=9&suffix=%C3%B8")
    for field in ("n", "temperature", "suffix"):
        assert page.locator(f"#{field}").get_attribute("aria-invalid") == "true"
        assert page.locator(f"#error-{field}").is_visible()
    # the map is made of links
    page.goto(server + "/?model=lstm&n=3")
    page.locator("#por-estado summary").click()
    with page.expect_navigation():
        page.locator('#mapa-estados a[data-estado="Sonora"]').click()
    assert settings(page.url)["estado"] == "Sonora"
    assert page.locator("#nombres li", has_text="inventado para Sonora").count() == 3
    assert page.locator("#descargar-txt").get_attribute("href").startswith("/api/names?")
    assert page.locator("button", has_text="Copiar").count() == 0
    # and the list: a model by state and a state, chosen in the form from a plain model's page
    page.goto(server + "/?model=lstm&n=3")
    page.locator("#por-estado summary").click()
    page.select_option("#model", "lstm_estado")
    page.select_option("#estado-elegido", "Yucatán")
    with page.expect_navigation():
        page.get_by_role("button", name="Inventar nombres").click()
    assert page.locator("#nombres li", has_text="inventado para Yucatán").count() == 3


def test_copy_and_favourites(open_page):
    page = open_page("/?model=lstm&n=3&seed=5", permissions=["clipboard-read",
                                                              "clipboard-write"])
    name = names_on(page)[0]
    page.get_by_role("button", name=f"Copiar {name}").click()
    page.locator("#aviso").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == name
    page.get_by_role("button", name=f"Guardar {name} en favoritos").click()
    assert page.locator("#favoritos").is_visible()
    page.reload()
    assert page.locator("#lista-favoritos a").all_inner_texts() == [name]


def real_answer(response) -> dict:
    """A response of the app as ``route.fulfill`` takes it."""
    return {"status": response.status_code, "body": response.body,
            "content_type": response.headers["content-type"]}


FAILURES = {
    # load shedding (or the scheduler) turns the page's request away: its own words are shown
    "busy": (real_answer(busy_response("/", "busy")), BUSY_TEXT),
    # a proxy's 503 in English: the page says it in Spanish
    "busy_proxy": ({"status": 503, "body": "<h1>503 Service Unavailable</h1>",
                    "content_type": "text/html"}, "muy ocupado"),
    # a bug: the Spanish error page is not the results part
    "fault": (real_answer(status_page(Request({"type": "http", "method": "GET", "path": "/",
                                               "query_string": b"", "headers": [],
                                               "server": ("toponimo", 80),
                                               "scheme": "http"}), 500)),
              "Algo falló en el servidor"),
    "network": (None, "No se pudo hablar con el servidor"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_request_says_why_and_keeps_the_batch(open_page, failure):
    answer, expected = FAILURES[failure]
    page = open_page("/?model=lstm&n=4")
    opened_url, first, entries = page.url, names_on(page), page.evaluate("history.length")
    seed = page.get_by_label("Semilla").input_value()
    page.route(lambda url: "nueva=1" in url,
               lambda route: route.fulfill(**answer) if answer else route.abort())
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("() => document.getElementById('errores').textContent.trim()")
    assert expected in page.locator("#errores").inner_text()
    assert names_on(page) == first and page.get_by_label("Semilla").input_value() == seed
    assert page.url == opened_url and page.evaluate("history.length") == entries
    assert page.locator("#formulario").get_attribute("aria-busy") is None

    page.unroute_all()   # the server answers again: the next batch replaces the message
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("u => location.href !== u", arg=opened_url)
    assert page.locator("#errores").inner_text() == "" and len(names_on(page)) == 4


@pytest.mark.parametrize("stored", ["{}", '"abc"', "5", "[null]",
                                    '[{"nombre": 3, "enlace": "/nombre/x"}, '
                                    '{"nombre": "Malo", "enlace": "javascript:alert(1)"}, '
                                    '{"nombre": "Bueno", "enlace": "/nombre/Bueno?model=lstm"}]'],
                         ids=["object", "string", "number", "null", "mixed"])
def test_corrupt_favourites_never_stop_the_names(open_page, stored):
    """Whatever this browser kept under the favourites' key, only well-formed ones are shown."""
    page = open_page("/?model=lstm&n=3")
    page.evaluate("s => localStorage.setItem('toponimo:favoritos', s)", stored)
    opened_url = page.url
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("u => location.href !== u", arg=opened_url)
    kept = ["Bueno"] if "Bueno" in stored else []
    assert len(names_on(page)) == 3 and page.locator("#errores").inner_text() == ""
    assert page.locator("#lista-favoritos a").all_inner_texts() == kept
    name = names_on(page)[0]
    page.get_by_role("button", name=f"Guardar {name} en favoritos").click()
    page.reload()                                                # the first batch is drawn too
    assert len(names_on(page)) == 3
    assert page.locator("#lista-favoritos a").all_inner_texts() == [*kept, name]


@pytest.mark.parametrize("path", ["/?model=lstm_estado&n=5&estado=Oaxaca", "/comparar?nombre=Tulum",
                                  "/nombre/Tulum?model=lstm", "/no-existe"])
def test_axe_finds_no_violations(open_page, path):
    if not AXE.exists():
        missing = f"axe-core not found at {AXE} (npm ci installs it from package-lock.json)"
        if os.environ.get("TOPONIMO_REQUIRE_BROWSER"):   # CI: a skipped check is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    page = open_page(path, "telefono", bypass_csp=True)   # axe is injected as a script
    page.add_script_tag(path=str(AXE))
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]] == []


def test_api_docs_render_without_network(open_page):
    page = open_page("/docs", bypass_csp=True)   # Swagger UI is not the page: svc's CSP covers it
    page.locator(".opblock-summary-path", has_text="/api/names").first.wait_for()
    assert page.locator(".opblock").count() >= 5
