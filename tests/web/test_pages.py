"""The Spanish page without JavaScript: names first, links that repeat a batch, every error at
once beside its field, filters, the state map, each name's own page (/nombre/...), and what
every page answers when no model is loaded."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.data.corpus import fold
from app.data.gazetteer import load_gazetteer
from app.main import create_app
from app.web.pages import compare, home, nombre, textos
from app.web.pages.textos import MENSAJES, faltantes, mensaje
from app.web.registry import serve_model
from tests.fakes import ListModel


@pytest.fixture(scope="module")
def client(tiny_models_folder):
    with TestClient(create_app(tiny_models_folder)) as client:
        yield client


@pytest.fixture(scope="module")
def state_client(tiny_state_models_folder):
    with TestClient(create_app(tiny_state_models_folder)) as client:
        yield client


def listed(html: str) -> list[str]:
    section = html.split('<ol id="nombres">')[1].split("</ol>")[0]
    return re.findall(r'<a class="nombre" href="[^"]*">([^<]*)</a>', section)


def test_page_renders_names_server_side_with_credibility_and_permalinks(client):
    response = client.get("/", params={"n": 4, "seed": 9, "model": "rnn", "novel": "true"})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    html = response.text
    assert '<html lang="es">' in html and "Inventar nombres" in html
    assert len(listed(html)) == 4 and "semilla 9" in html
    assert '<option value="rnn" data-por-estado="no" selected>RNN simple</option>' in html
    assert "LSTM (recomendado)" in html
    assert html.count('class="credibilidad nivel-') == 4
    assert re.search(r'href="/nombre/[^"?]+\?model=rnn"', html)
    assert 'id="seed" name="seed" type="number" min="0" max="4294967295" value="9"' in html


def test_new_batch_redirects_to_a_url_that_holds_every_setting_and_the_seed(client):
    form = {"model": "rnn", "n": "3", "temperature": "1.3", "prefix": "", "suffix": "a",
            "min_length": "3", "max_length": "20", "novel": "true", "seed": "", "nueva": "1"}
    response = client.get("/", params=form, follow_redirects=False)
    assert response.status_code == 303
    settings = parse_qs(urlsplit(response.headers["location"]).query)
    assert {k: v[0] for k, v in settings.items()} == {
        "model": "rnn", "n": "3", "temperature": "1.3", "suffix": "a", "min_length": "3",
        "max_length": "20", "novel": "true", "seed": settings["seed"][0]}
    first = client.get(response.headers["location"]).text
    again = client.get(response.headers["location"]).text
    assert listed(first) == listed(again) and listed(first)
    assert all(fold(name).endswith("a") and 3 <= len(name) <= 20 for name in listed(first))
    assert f'href="/?{urlsplit(response.headers["location"]).query.replace("&", "&amp;")}"' in first


def test_more_names_with_the_same_seed_keep_the_first(client):
    few = listed(client.get("/", params={"n": 3, "seed": 21, "temperature": 1.2}).text)
    many = listed(client.get("/", params={"n": 9, "seed": 21, "temperature": 1.2}).text)
    assert many[:3] == few


def test_download_links_repeat_the_batch_on_screen(client):
    html = client.get("/", params={"n": 5, "seed": 3}).text
    href = re.search(r'id="descargar-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    text_href = href.replace("format=csv", "format=txt")
    assert client.get(text_href).text.splitlines() == listed(html)


def test_novel_checkbox_without_javascript(client):
    unticked = client.get("/?n=2&novel=false").text
    ticked = client.get("/?n=2&novel=false&novel=true").text
    assert 'id="novel" name="novel" type="checkbox" value="true"  ' in unticked
    assert 'id="novel" name="novel" type="checkbox" value="true" checked' in ticked


def test_every_error_shows_at_once_beside_its_field_and_clears_the_names(client):
    response = client.get("/", params={"n": 500, "temperature": 9, "prefix": "<script>",
                                       "suffix": "ø", "min_length": 50, "seed": "x"})
    assert response.status_code == 422
    html = response.text
    assert "<script>" not in html and "&lt;script&gt;" in html
    for field, text in [("n", "Cuántos: escribe un número entero del 1 al 100."),
                        ("temperature", "Temperatura: un número mayor que 0 y como máximo 5."),
                        ("prefix", "el modelo no conoce estos caracteres: «&lt;», «&gt;»"),
                        ("suffix", "Termina en: el modelo no conoce estos caracteres: «ø»."),
                        ("min_length", "Largo mínimo: no puede pasar del largo máximo (40)."),
                        ("seed", "Semilla: escribe un número entero")]:
        slot = re.search(rf'<p class="error-campo" id="error-{field}">([^<]*)</p>', html)
        assert slot and text in slot.group(1), field
        field_tag = re.search(rf'<(?:input|select) id="{field}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in field_tag and f"error-{field}" in field_tag
    assert listed(html) == [] and 'id="mas-opciones" open' in html


def test_a_prefix_no_name_starts_with_is_explained_in_spanish(client):
    response = client.get("/", params={"prefix": " San", "n": 2})
    assert response.status_code == 422
    assert "ningún nombre empieza con un espacio ni tiene dos seguidos" in response.text


def test_a_lowercase_prefix_is_explained_with_the_capital_to_write(client):
    response = client.get("/", params={"prefix": "san ", "n": 2})
    assert response.status_code == 422
    assert "todo municipio empieza con mayúscula; escribe «San »" in response.text


def test_an_ending_of_only_a_hyphen_asks_for_the_ending(client):
    response = client.get("/", params={"suffix": "-", "n": 2})
    assert response.status_code == 422 and "escribe la terminación después del guion" in response.text


def test_a_temperature_between_the_sliders_notches_is_kept_as_asked(client):
    html = client.get("/", params={"temperature": "0.123", "n": 2, "seed": 1}).text
    slider = re.search(r'<input id="temperature"[^>]*>', html).group(0)
    assert 'step="any"' in slider and 'value="0.123"' in slider
    assert '<output id="temperatura-valor" for="temperature">0.123</output>' in html
    assert home.temperature_slider("0.8") == {"step": "0.05", "min": "0.05", "shown": "0.80"}
    assert home.temperature_slider("0.01")["step"] == "any"   # below the first notch
    assert home.temperature_slider("abc")["shown"] == "abc"   # refused, shown as written


def test_unknown_model_is_a_404_in_spanish(client):
    missing = client.get("/?model=gpt")
    assert missing.status_code == 404 and "Modelo: elige uno" in missing.text


def test_a_model_name_too_long_is_a_422_saying_the_limit(client):
    response = client.get("/", params={"model": "a" * 101})
    assert response.status_code == 422
    slot = re.search(r'<p class="error-campo" id="error-model">([^<]*)</p>', response.text)
    assert slot.group(1) == ("Modelo: el nombre de un modelo tiene como máximo 100 caracteres; "
                             "elige uno de los cargados (lstm, rnn).")


def test_a_message_missing_a_value_fails_instead_of_showing_its_placeholder():
    with pytest.raises(KeyError, match="disponibles"):
        mensaje("model")
    assert mensaje("model", disponibles="lstm, rnn") == (
        "Modelo: elige uno de los modelos cargados (lstm, rnn).")


def test_an_invisible_character_is_named_by_its_code_point():
    assert mensaje("prefix", "prefix_unknown_chars", unknown=["\u200f", "<", "\n", "\x00"]) == (
        "Empieza con: el modelo no conoce estos caracteres: U+200F, «<», U+000A, U+0000.")


def test_budget_running_out_says_how_many_were_found_and_of_what(client):
    html = client.get("/", params={"n": 5, "seed": 1, "suffix": "ñuu savi ñuu"}).text
    assert listed(html) == []   # this seed finds none: the sentence says so, and of what
    assert "no se encontró ninguno de 5 que terminen en «ñuu savi ñuu»; prueba otra" in html


def test_no_names_no_downloads(client):
    html = client.get("/", params={"n": 5, "seed": 1, "contains": "ñuu savi ñuu tulum"}).text
    assert "no se encontró ninguno de 5" in html
    assert "Descargar CSV" not in html and "Enlace a estos nombres" not in html


def test_a_real_name_says_so_instead_of_resembling_itself(client):
    registry = client.app.state.registry
    registry.models["lista"] = serve_model("lista", ListModel(["Tepic"]), load_gazetteer())
    try:
        html = client.get("/", params={"model": "lista", "n": 1, "novel": "false", "seed": 0}).text
    finally:
        del registry.models["lista"]
    assert listed(html) == ["Tepic"]
    assert "es un municipio real de Nayarit" in html and "se parece a Tepic" not in html


def test_partial_answer_is_the_results_section_only(client):
    response = client.get("/", params={"n": 2, "seed": 4}, headers={"Toponimo-Parcial": "1"})
    assert response.text.lstrip().startswith('<section id="resultados"')
    assert 'data-semilla="4"' in response.text and "<form" not in response.text
    # a new batch is answered at once, its URL (with the new seed) in the section
    fresh = client.get("/", params={"n": 2, "nueva": 1}, headers={"Toponimo-Parcial": "1"},
                       follow_redirects=False)
    assert fresh.status_code == 200
    url = "/?" + re.search(r'data-consulta="([^"]+)"', fresh.text).group(1).replace("&amp;", "&")
    assert "seed=" in url and listed(client.get(url).text) == listed(fresh.text)


def test_state_selector_and_map(state_client, client):
    html = state_client.get("/", params={"model": "lstm_estado", "n": 3, "seed": 1,
                                         "estado": "31"}).text
    assert '<option value="Yucatán" selected>' in html and "· Yucatán ·" in html
    assert html.count("inventado para Yucatán") == 3
    select = re.search(r'<select id="estado-elegido"[^>]*>', html).group(0)
    assert "disabled" not in select
    # a link per state the model knows, choosing it with that model; the others are greyed
    links = re.findall(r'<a href="([^"]+)" aria-label="([^"]+)" data-estado', html)
    assert sorted(label for _, label in links) == ["Oaxaca", "Sonora", "Yucatán"]
    oaxaca = parse_qs(urlsplit(dict((b, a) for a, b in links)["Oaxaca"].replace("&amp;", "&")).query)
    assert oaxaca["estado"] == ["Oaxaca"] and oaxaca["model"] == ["lstm_estado"] and "nueva" in oaxaca
    assert html.count('class="estado fuera"') == 29 and 'aria-current="true"' in html
    # an unconditioned model: the list still works without JavaScript (the script disables
    # it), since the form may switch to a model by state; no conditioned model at all: no list
    plain = state_client.get("/", params={"model": "lstm"}).text
    assert "disabled" not in re.search(r'<select id="estado-elegido"[^>]*>', plain).group(0)
    assert "estado-elegido" not in client.get("/").text
    wrong = state_client.get("/", params={"model": "lstm", "estado": "Oaxaca"})
    assert wrong.status_code == 422 and "no distingue estados" in wrong.text
    assert "LSTM por estado" in wrong.text


def test_a_names_own_page(client):
    response = client.get("/nombre/Tulum", params={"model": "lstm"})
    assert response.status_code == 200
    html = response.text
    assert "<h1>Tulum</h1>" in html and "Es un municipio real." in html
    strip = html.split('<ol class="tira"')[1].split("</ol>")[0]
    assert strip.count('<li class="celda sorpresa-') == len("Tulum") + 1     # letters and the end
    assert re.search(r'<span class="prob">[<\d.]+[^<]* %</span>', html)      # written, not hover
    assert "<strong>Tulum</strong> (Quintana Roo) · igual" in html
    assert "¿De qué estado suena?" in html and 'id="mapa-nombre"' in html
    assert html.count('class="estado marcado"') >= 1
    assert 'href="/nombre/Tulum?model=rnn"' in html


def test_the_map_keeps_the_likeliest_state_visible_where_a_near_name_lies_too():
    gazetteer = load_gazetteer()
    near = [{"name": "Ocotepec", "distance": 2, "estados": ["Chiapas", "Puebla"]}]
    svg = str(nombre.where_map(near, [("Puebla", 0.56), ("México", 0.26)], gazetteer)[0])
    states = dict(re.findall(r'<path class="estado ?([^"]*)" d="[^"]*"><title>([^<]*)</title>', svg))
    by_name = {title.split(":")[0]: css for css, title in states.items()}
    assert by_name["Puebla"] == "marcado suena" and by_name["Chiapas"] == "marcado"
    assert "Puebla: suena a este estado (56 %); ahí está Ocotepec" in svg
    apart = str(nombre.where_map(near, [("Oaxaca", 0.4)], gazetteer)[0])
    assert 'class="estado suena"' in apart and "marcado suena" not in apart


def test_sounds_like_never_says_0_or_100_percent(client):
    html = client.get("/nombre/Marachi", params={"model": "lstm"}).text
    listed = re.findall(r"<li>[^<:]+: ([^<]+)</li>", html.split("¿De qué estado suena?")[1])
    assert listed and "0 %" not in listed and "100 %" not in listed
    assert [textos.porcentaje(p) for p in (0.0004, 0.004, 0.006, 0.5, 0.994, 0.996)] == [
        "menos de 1 %", "menos de 1 %", "1 %", "50 %", "99 %", "más de 99 %"]


def test_the_maps_legend_names_only_the_colours_on_it(client):
    html = client.get("/nombre/Tulum", params={"model": "lstm"}).text
    legend = html.split('<ul class="leyenda-mapa">')[1].split("</ul>")[0]
    for css in ("marcado", "suena", "marcado suena"):
        assert (f'class="estado {css}"' in html) == (f'class="muestra {css}"' in legend)


def test_a_state_names_page_scores_it_for_its_state_as_the_list_did(state_client):
    page = state_client.get("/", params={"model": "lstm_estado", "n": 4, "seed": 5,
                                         "estado": "Yucatán"}).text
    links = re.findall(r'<a class="nombre" href="([^"]*)">', page)
    assert links and all("estado=Yucat%C3%A1n" in link.replace("&amp;", "&") for link in links)
    own = state_client.get(links[0].replace("&amp;", "&")).text
    assert "para Yucatán" in own and "(el estado en que mejor suena)" not in own
    wrong = state_client.get(links[0].replace("&amp;", "&").replace("Yucat%C3%A1n", "Narnia"))
    assert wrong.status_code == 422 and "Narnia" in wrong.text


def test_a_names_page_never_rounds_its_percentile_up_past_what_it_is(client):
    # "more Mexican than 75 %" beside «creíble» (under 75) would contradict itself: the page
    # writes the whole percent below the score
    rounded_down = 0
    for name in ("Tulum", "Tepic", "Oaxaca", "Colima", "Bacum", "Guaymas", "Navojoa", "Jalpa",
                 "Ahome", "Durango"):
        score = client.get("/api/score", params={"name": name, "model": "lstm"}).json()
        page = client.get(f"/nombre/{name}", params={"model": "lstm"}).text
        assert f"suena más mexicano que el {int(score['percentile'])} % de los" in page
        rounded_down += score["percentile"] % 1 >= 0.5
    assert rounded_down   # at least one where rounding to nearest would have said more


def test_a_real_name_written_otherwise_links_to_its_spelling(client):
    html = client.get("/nombre/tepic", params={"model": "lstm"}).text
    assert 'Es un municipio real, que se escribe «<a href="/nombre/Tepic?model=lstm">Tepic</a>»' in html
    assert "se escribe" not in client.get("/nombre/Tepic", params={"model": "lstm"}).text


def test_every_page_names_an_icon_that_is_served(client):
    for path in ("/", "/comparar", "/nombre/Tulum", "/no-existe"):
        icon = re.search(r'<link rel="icon" href="([^"]+)"', client.get(path).text).group(1)
        served = client.get(icon)
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg")


def test_a_names_page_keeps_the_state_asked_for_in_its_links_and_only_that(state_client):
    def links(html):
        return [a.replace("&amp;", "&") for a in re.findall(r'<a href="(/nombre/[^"]*)"', html)]

    asked = state_client.get("/nombre/tepic", params={"model": "lstm_estado", "estado": "Sonora"})
    spelt = [a for a in links(asked.text) if a.startswith("/nombre/Tepic?")]
    assert spelt == ["/nombre/Tepic?model=lstm_estado&estado=Sonora"]
    others = [a for a in links(asked.text) if a.startswith("/nombre/tepic?")]
    assert "/nombre/tepic?model=lstm" in others                      # a plain model: no state
    unasked = state_client.get("/nombre/tepic", params={"model": "lstm_estado"}).text
    assert "para " in unasked and "(el estado en que mejor suena)" in unasked
    assert not [a for a in links(unasked) if "estado=" in a]         # the likeliest is not asked


def test_a_names_page_says_what_to_do_with_a_state_it_cannot_use(state_client):
    plain = state_client.get("/nombre/Tepic", params={"model": "lstm", "estado": "Sonora"})
    assert plain.status_code == 422 and "quita el estado de la dirección" in plain.text
    assert "todos los estados" not in plain.text
    unknown = state_client.get("/nombre/Tepic", params={"model": "lstm_estado", "estado": "Narnia"})
    assert unknown.status_code == 422 and "«Narnia» no es un estado" in unknown.text
    assert "todos los estados" not in unknown.text
    assert re.search(r"escribe uno de los suyos: [^.]*Yucatán", unknown.text)   # which they are


def test_a_names_own_page_explains_bad_input(client):
    unknown = client.get("/nombre/T%C3%B8", params={"model": "lstm"})
    assert unknown.status_code == 422 and "El modelo no conoce «ø»." in unknown.text
    missing = client.get("/nombre/Tulum", params={"model": "gpt"})
    assert missing.status_code == 404 and "No hay un modelo «gpt»" in missing.text
    slash = client.get("/nombre/Tulum/Tepic")
    assert slash.status_code == 422 and "El modelo no conoce «/»." in slash.text
    long = client.get("/nombre/" + "a" * 5000)
    assert long.status_code == 422 and "como máximo 100 caracteres" in long.text
    assert "a" * 100 + "…" in long.text and "a" * 101 not in long.text   # not echoed back whole


def test_a_names_page_caps_the_model_as_the_api_does(client):
    longest = client.get("/nombre/Tulum", params={"model": "x" * 100})
    assert longest.status_code == 404 and "No hay un modelo «" + "x" * 100 + "»" in longest.text
    over = client.get("/nombre/Tulum", params={"model": "x" * 5000})
    assert over.status_code == 422 and "x" * 101 not in over.text
    assert ("Modelo: el nombre de un modelo tiene como máximo 100 caracteres; elige uno de los "
            "cargados (lstm, rnn).") in over.text


@pytest.mark.parametrize("path", ["/", "/nombre/Tepic", "/comparar", "/comparar?nombre=Tepic"])
def test_without_any_model_every_page_says_so_with_a_503(tmp_path, path):
    with TestClient(create_app(tmp_path)) as empty:
        page = empty.get(path)
    assert page.status_code == 503 and MENSAJES["sin_modelos"] in page.text


@pytest.mark.parametrize(("method", "path", "status", "text"), [
    ("GET", "/nope", 404, "No hay nada en esta dirección"),
    ("GET", "/comparar/", 404, "No hay nada en esta dirección"),
    ("POST", "/", 405, "Esta dirección solo se consulta (GET); no acepta POST."),
    ("DELETE", "/nombre/Tepic", 405, "no acepta DELETE."),
], ids=["unknown-page", "trailing-slash", "post", "delete"])
def test_a_mistyped_address_or_method_gets_a_spanish_page(client, method, path, status, text):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="es">' in response.text and text in response.text
    if status == 405:
        assert "GET" in response.headers["allow"]


def test_the_api_and_the_probes_keep_answering_unknown_addresses_and_methods_in_json(client):
    missing = client.get("/api/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    for path in ("/api/names", "/healthz", "/readyz"):
        posted = client.post(path)
        assert posted.status_code == 405 and posted.json() == {"detail": "Method Not Allowed"}


def test_a_bug_gets_a_spanish_page_or_json_with_the_security_headers(tiny_models_folder,
                                                                    monkeypatch):
    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(compare, "load_report", broken)
    with TestClient(create_app(tiny_models_folder), raise_server_exceptions=False) as buggy:
        page, api = buggy.get("/comparar"), buggy.get("/api/report")
    assert page.status_code == 500 and '<html lang="es">' in page.text
    assert "Algo falló de nuestro lado" in page.text
    assert api.status_code == 500 and api.json() == {"detail": "internal server error"}
    for response in (page, api):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_names_found_short_come_with_advice_for_why_sampling_stopped():
    values = {"suffix": "tepec"}
    for stopped in ("budget", "deadline"):
        assert faltantes(2, 5, values, stopped) == ("solo se encontraron 2 de 5 que terminen en "
                                                    "«-tepec»; prueba otra temperatura o "
                                                    "condiciones menos estrictas")
    assert faltantes(2, 5, {}, "shutdown").endswith("vuelve a pedirlos en unos segundos")
    # in number with what was found, and every condition that narrowed the draws named
    assert faltantes(1, 10, {}, "budget").startswith("solo se encontró 1 de 10;")
    assert faltantes(0, 10, {}, "budget").startswith("no se encontró ninguno de 10;")
    narrow = {"prefix": "Zz", "suffix": "-tepec", "min_length": "5", "max_length": "5", "top_k": "1"}
    assert faltantes(0, 10, narrow, "budget") == (
        "no se encontró ninguno de 10 que empiecen con «Zz», que terminen en «-tepec» y de "
        "exactamente 5 caracteres, eligiendo siempre la letra más probable; prueba un top-k mayor "
        "o condiciones menos estrictas")
    assert "de exactamente 1 carácter;" in faltantes(0, 3, {"min_length": "1", "max_length": "1"},
                                                   "budget")
    assert "de 3 caracteres o menos" in faltantes(2, 10, {"max_length": "3"}, "budget")
    assert "de 4 a 9 caracteres" in faltantes(2, 10, {"min_length": "4", "max_length": "9"}, "budget")
    assert "entre las 3 letras más probables" in faltantes(2, 10, {"top_k": "3"}, "deadline")
    # a hyphen marks a word's ending, never an ending of several words (spaces count as characters)
    assert "que terminen en «de Juárez»" in faltantes(0, 3, {"suffix": "de Juárez"}, "budget")
