"""A real browser on the page: Playwright driving Debian's Chromium against a live uvicorn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_models_folder):
    """uvicorn serving the tiny models on a free loopback port."""
    port = free_port()
    env = {**os.environ, "TOPONIMO_MODELS_DIR": str(tiny_models_folder)}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host",
                                "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                               env=env, cwd=Path(__file__).resolve().parent.parent)
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
def page(server):
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("TOPONIMO_REQUIRE_BROWSER"):   # CI: a skipped browser test is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def names_on(page) -> list[str]:
    return page.locator("#nombres .nombre").all_inner_texts()


def test_form_updates_names_in_place(server, page):
    page.goto(server + "/")
    assert page.locator("#nombres li").count() == 10          # rendered by the server
    page.evaluate("window.sinRecarga = true")

    page.get_by_label("Cuántos nombres").fill("7")
    page.get_by_role("button", name="Inventar nombres").click()
    page.wait_for_function("document.querySelectorAll('#nombres li').length === 7")
    first = names_on(page)
    assert all(page.locator("#nombres .insignia").all_inner_texts())
    assert "se parece a:" in page.locator("#nombres li").first.inner_text()

    page.get_by_label("Temperatura").fill("1.5")
    page.wait_for_function("names => JSON.stringify([...document.querySelectorAll("
                           "'#nombres .nombre')].map(e => e.textContent)) !== names",
                           arg=json.dumps(first, ensure_ascii=False, separators=(",", ":")))
    assert page.locator("#temperatura-valor").inner_text() == "1.50"
    assert len(names_on(page)) == 7 and names_on(page) != first
    assert page.evaluate("window.sinRecarga") is True          # no page reload happened
    assert "temperature=1.5" in page.url


def test_script_prefix_is_shown_as_text_in_spanish(server, page):
    page.goto(server + "/")
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.get_by_label("Empieza con").fill("<img src=x onerror=alert(1)>")
    page.get_by_role("button", name="Inventar nombres").click()
    error = page.locator("#errores .error")
    error.wait_for()
    assert "el modelo no conoce estos caracteres" in error.inner_text()
    assert page.locator("#errores img").count() == 0


def test_api_docs_render_without_network(server, page):
    page.goto(server + "/docs")
    page.locator(".opblock-summary-path", has_text="/api/names").first.wait_for()
    assert page.locator(".opblock").count() >= 5
