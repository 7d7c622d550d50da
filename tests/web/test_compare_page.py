"""The /comparar page, /api/report and the per-character probabilities of /api/score."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import cv
from app.eval import report
from app.lm import checkpoint
from app.lm.markov import MarkovLM
from app.main import create_app
from app.web import published
from app.web.pages import compare
from app.web.pages.charts import Series, line_chart, nice_ticks
from app.web.pages.sorpresa import cell_class
from app.web.registry import ServedModel
from tests.conftest import TINY_NAMES, make_tiny_model


def tiny_markov(names=TINY_NAMES) -> MarkovLM:
    model = make_tiny_model("lstm")
    markov = MarkovLM.fit([model.vocab.encode(n) for n in names], 3, model.vocab)
    markov.metadata = {
        "split": "plain",
        "metrics": {"val_nll": 2.2, "train_seconds": 0.01, "chars_per_second": 5e5},
        "history": [{"order": k, "train_nll": 2.0 - 0.1 * k, "val_nll": 2.6 - 0.1 * k}
                    for k in (2, 3, 4)],
        "ngram_sizes": [len(markov.arrays[f"k{k}.keys"]) for k in (1, 2, 3)],
    }
    return markov


@pytest.fixture(scope="module")
def compare_folder(tmp_path_factory):
    """Tiny lstm, rnn (with training histories) and markov checkpoints, and their report."""
    folder = tmp_path_factory.mktemp("compare_models")
    models = {}
    for kind, start in (("rnn", 3.0), ("lstm", 2.8)):
        model = make_tiny_model(kind)
        model.metadata["history"] = [{"epoch": e, "train_nll": start - 0.3 * e,
                                      "val_nll": start - 0.2 * e} for e in (1, 2, 3)]
        model.metadata["split"] = "by state" if kind == "rnn" else "plain"
        models[kind] = model
    models["markov"] = tiny_markov()
    for name, model in models.items():
        checkpoint.save(folder / f"{name}.npz", model.checkpoint(model.metadata))
    real = TINY_NAMES + [f"{a} de {b}" for a, b in zip(TINY_NAMES, TINY_NAMES[::-1], strict=True)]
    built = report.build_report(models, real, samples=30, progress=False)
    judged = {"n": 60, "accuracy": 0.1, "top3": 0.3, "balanced_accuracy": 0.08}
    built["fidelity"] = {"classifier": "naive Bayes", "chance": 0.25, "per_state": 15,
                         "temperature": 0.8, "real_held_out": {**judged, "accuracy": 0.4},
                         "models": [{"name": "lstm", **judged}]}
    report.write_report(built, folder / "report.json")
    for label, mean in (("servido", 1.49), ("anterior", 1.54)):
        cv.publish({"label": label, "data": "municipios.txt", "folds": 5, "seed": 0,
                    "train_flags": "", "models": {"lstm": {"mean": mean, "sd": 0.03, "folds": [
                        {"nll": mean + d} for d in (-0.02, -0.01, 0.0, 0.01, 0.02)]}}},
                   folder / "cv.json", served=label == "servido")
    return folder


@pytest.fixture(scope="module")
def client(compare_folder):
    with TestClient(create_app(compare_folder)) as client:
        yield client


def test_score_gives_each_characters_probability(client):
    body = client.get("/api/score", params={"name": "Tulum", "model": "markov"}).json()
    assert [c["char"] for c in body["characters"]] == list("Tulum")
    probabilities = [c["probability"] for c in body["characters"]] + [body["end_probability"]]
    assert all(0.0 < p <= 1.0 for p in probabilities)
    # the NLL per char is the mean of -log of exactly these probabilities
    assert body["nll_per_char"] == pytest.approx(-sum(map(math.log, probabilities)) / 6)


def test_page_renders_the_report_table_and_svg_charts(client):
    page = client.get("/comparar")
    assert page.status_code == 200
    html = page.text
    assert 'id="tabla-modelos"' in html and 'id="tabla-muestras"' in html
    for label in ("LSTM (recomendado)", "Cadena de Márkov"):   # named as the form names them
        assert f'<th scope="row">{label}</th>' in html
    # validated on another split: marked, with the note saying why
    assert '<th scope="row">RNN simple*</th>' in html and "otra partición" in html
    # training curves, n-gram order, novelty and length against temperature
    assert html.count("<svg") == 4
    for title in ("NLL por carácter durante el entrenamiento", "según el orden del n-grama",
                  "Nombres nuevos según la temperatura", "Longitud media según la temperatura"):
        assert title in html
    assert "LSTM (recomendado) validación" in html   # legend entries
    assert "LSTM (recomendado) entrenamiento" in html
    assert "temperatura</text>" in html and "época</text>" in html     # axis labels
    assert "La LSTM predice la siguiente letra" in html                  # the written comparison
    assert 'id="tabla-fidelidad"' in html and "<td>60</td>" in html and "40.0 %" in html
    assert "Bayes ingenuo" in html and "naive Bayes" not in html   # the judge, in Spanish


def test_the_models_table_shows_the_published_cross_validation_not_the_checkpoints_figure(
        client, compare_folder):
    table = client.get("/comparar").text.split('id="tabla-modelos"')[1].split("</table>")[0]
    rows = dict(re.findall(r'<th scope="row">([^<*]+)\*?</th>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>',
                           table))
    own = json.loads((compare_folder / "report.json").read_text())
    markov = next(m for m in own["models"] if m["name"] == "markov")
    assert rows["LSTM (recomendado)"] == "1.490"           # the served row of cv.json
    assert rows["Cadena de Márkov"] == f"{markov['val_nll']:.3f}"   # no CV published: its own


def test_try_a_name_names_the_models_as_the_page_does_and_asks_for_a_name(client):
    html = client.get("/comparar", params={"nombre": "Tulum"}).text
    headings = re.findall(r'<li class="puntaje">\s*<h3><a href="[^"]*">([^<]*)</a></h3>', html)
    assert headings == ["LSTM (recomendado)", "RNN simple", "Cadena de Márkov"]   # as the form lists them
    page = client.get("/comparar").text
    examples = page[page.index("<h3>Ejemplos</h3>"):]
    assert re.findall(r"<summary>([^<]*)</summary>", examples)[:3] == [
        "RNN simple", "LSTM (recomendado)", "Cadena de Márkov"]   # the report's order
    blank = client.get("/comparar", params={"nombre": "   "})
    assert blank.status_code == 422 and "Escribe un nombre." in blank.text
    # its limit counts characters as written, as /nombre and /api/score count them
    accented = client.get("/comparar", params={"nombre": unicodedata.normalize("NFD", "é" * 40)})
    assert "como máximo" not in accented.text


def test_try_a_name_scores_it_with_every_model(client):
    html = client.get("/comparar", params={"nombre": "Tulum"}).text
    assert html.count('class="puntaje"') == 3
    strips = re.findall(r'<ol class="tira"[^>]*>(.*?)</ol>', html, re.S)
    assert len(strips) == 3
    for strip in strips:
        # every letter and the end, each with its probability written out (no hover needed)
        assert len(re.findall(r'<li class="celda sorpresa-[0-5]', strip)) == len("Tulum") + 1
        assert strip.count('<span class="prob">') == len("Tulum") + 1
        assert strip.count(" fin") == 1
    assert 'style="' not in html                      # shades are classes (strict CSP)
    assert "nats por carácter" in html and "nombres reales" in html
    assert "prueba" in html.split('id="tabla-modelos"')[0]   # "prueba un nombre" comes first


def test_try_a_name_with_unknown_characters_or_markup_says_it_once(client):
    html = client.get("/comparar", params={"nombre": "<script>ø</script>"}).text
    assert "<script>ø" not in html and "&lt;script&gt;" in html
    assert html.count("no conoce") == 1
    assert "Ningún modelo puede calificarlo: no conoce «&lt;»" in html and "«ø»" in html


@pytest.mark.parametrize(("nombre", "error"), [
    ("a" * 101, "El nombre puede tener como máximo 100 caracteres."),
    ("😀", "Ningún modelo puede calificarlo: no conoce «😀»."),
], ids=["101-characters", "emoji"])
def test_a_name_no_model_can_score_is_a_422(client, nombre, error):
    response = client.get("/comparar", params={"nombre": nombre})
    assert response.status_code == 422 and error in response.text
    assert 'aria-invalid="true"' in response.text


def test_surprise_shades_step_down_with_probability():
    assert [cell_class(p) for p in (1.0, 0.2, 0.05, 0.01, 1e-9)] == [
        "sorpresa-0", "sorpresa-1", "sorpresa-3", "sorpresa-5", "sorpresa-5"]


def test_training_chart_fits_its_axes_to_the_data():
    svg = line_chart([Series("a", [(1, 4.0), (2, 1.6), (3, 1.5)], "#0072B2")], "t", "x", "y",
                     integer_x=True, y_range=(1.4, 2.4), chart_id="c")
    x_ticks = re.findall(r'text-anchor="middle">(\d+)</text>', svg)
    assert x_ticks == ["1", "2", "3"]                 # the axis ends where the data end
    y_ticks = [float(t) for t in re.findall(r'text-anchor="end">([\d.]+)</text>', svg)]
    assert min(y_ticks) >= 1.4 and max(y_ticks) <= 2.4
    assert 'clip-path="url(#c-marco)"' in svg         # the first epoch is clipped, not drawn off


def test_api_report_serves_the_report_and_the_main_page_links_here(client, compare_folder):
    body = client.get("/api/report").json()
    assert [m["name"] for m in body["models"]] == ["rnn", "lstm", "markov"]
    # each val_nll says where it comes from: the served row of cv.json, or the checkpoint
    held_out = {m["name"]: (m["val_nll"], m["val_nll_source"]) for m in body["models"]}
    assert held_out["lstm"] == (1.49, "cross_validation")
    assert held_out["markov"][1] == "checkpoint"
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert (models["lstm"]["val_nll"], models["lstm"]["val_nll_source"]) == held_out["lstm"]
    assert (models["markov"]["val_nll"], models["markov"]["val_nll_source"]) == held_out["markov"]
    assert body["temperatures"] == [0.5, 0.8, 1.0, 1.2]
    assert 'href="/comparar"' in client.get("/").text


def test_cross_validation_table_comes_first_best_recipe_first(client):
    page = client.get("/comparar").text
    table = page[page.index('id="tabla-cv"'):page.index("</table>", page.index('id="tabla-cv"'))]
    assert page.index('id="tabla-cv"') < page.index('id="tabla-modelos"')
    # what is served, first; every other recipe measured, folded away below it
    assert "servido" in table and "anterior" not in table
    assert '<th scope="row">LSTM (recomendado)</th>' in table   # a served model, as the page names it
    history = page[page.index('id="tabla-cv-historial"'):]
    assert "anterior" in history.split("</table>")[0]
    assert page.rindex("<details", 0, page.index('id="tabla-cv-historial"')) > page.index('id="tabla-cv"')
    assert "1.490 ± 0.030" in table and "1.470 · 1.480 · 1.490 · 1.500 · 1.510" in table
    # the commentary quotes the served recipe's cross-validation, not the checkpoint's own 3.0
    assert "La LSTM predice la siguiente letra de un nombre que nunca vio con 1.490" in page


@pytest.mark.parametrize("text", ["[1, 2]", '{"temperatures": []}', "{"])
def test_a_malformed_report_never_makes_a_500(tmp_path, text):
    model = make_tiny_model("lstm")
    checkpoint.save(tmp_path / "lstm.npz", model.checkpoint(model.metadata))
    (tmp_path / "report.json").write_text(text)
    with TestClient(create_app(tmp_path)) as client:
        assert client.get("/api/report").status_code in (200, 404)
        assert client.get("/comparar").status_code == 200


def test_without_a_report_the_page_says_how_to_make_one(tmp_path):
    model = make_tiny_model("lstm")
    checkpoint.save(tmp_path / "lstm.npz", model.checkpoint(model.metadata))
    with TestClient(create_app(tmp_path)) as client:
        assert client.get("/api/report").status_code == 404
        page = client.get("/comparar")
        assert page.status_code == 200 and "python -m app.evaluate --report" in page.text


def test_nice_ticks_cover_the_data_with_round_steps():
    assert nice_ticks(0.5, 1.2) == [0.4, 0.6, 0.8, 1.0, 1.2]
    assert nice_ticks(1, 3, 6, integer=True) == [1, 2, 3]
    ticks = nice_ticks(1.37, 3.21)
    assert ticks[0] <= 1.37 and ticks[-1] >= 3.21 and len(ticks) <= 8


def test_the_commentary_tells_a_student_from_the_networks_its_mezcla_is_made_of():
    def model(name, val_nll, **extra):
        return {"name": name, "kind": name, "val_nll": val_nll, "n_params": 1,
                "train_seconds": None, "sampling": [], **extra}

    served = {"real": {"mean_length": 13.5, "over_three_words": 0.1}, "models": [
        model("lstm", 1.461, distilled_from="mezcla"), model("markov", 1.511),
        model("mezcla", 1.441, gated=True), model("rnn", 1.608)]}
    text = " ".join(compare.comentario(served))
    assert "de un conjunto de LSTM y del n-grama" in text and "0.070 menos que el n-grama" in text
    assert ("queda 0.020 por encima de la de la mezcla servida y 0.050 por debajo de la del "
            "n-grama") in text
    assert "producto" not in text
    served["models"][2]["product"] = True    # the mezcla also multiplies its two sides
    text = " ".join(compare.comentario(served))
    assert "y una parte de su producto" in text and "esa mezcla sin su parte del producto, la que más copia" in text
    assert "sin haberlo visto" not in text
    served["models"][0]["out_of_fold"] = True   # it learned what the mezcla says of unseen names
    assert "lo que la mezcla diría sin haberlo visto" in " ".join(compare.comentario(served))
    served["models"][0]["val_nll"] = None   # no published CV for the student: no figure to quote
    text = " ".join(compare.comentario(served))
    assert "0.070 menos que el n-grama" in text and "Su NLL queda" not in text
    served["models"][0] = model("lstm", 1.489)   # the lstm is one of the mezcla's two sides
    text = " ".join(compare.comentario(served))
    assert "0.048 menos que el mejor de los dos" in text and "destilación" not in text


def test_a_students_training_curve_says_it_measures_the_distance_to_its_teacher():
    student = make_tiny_model("lstm")
    student.metadata = {**student.metadata, "distillation": {"teacher_kind": "mezcla"},
                        "history": [{"epoch": e, "train_nll": 2.0, "val_nll": 1.9} for e in (1, 2)]}
    registry = SimpleNamespace(models={"lstm": ServedModel("lstm", student, np.array([]))},
                               default="lstm")
    svg = compare.training_chart(registry)
    assert "LSTM (recomendado) contra su maestra" in svg   # its epochs' distance to it


def test_a_students_own_figure_is_never_shown_as_an_nll():
    models = [{"name": "lstm", "val_nll": 1.64, "distilled_from": "mezcla"},
              {"name": "markov", "val_nll": 1.51}]
    rows = [{"model": "alumno", "served_as": "lstm", "mean": 1.449, "served": True}]
    assert [m["val_nll"] for m in published.with_cross_validation({"models": models}, rows)["models"]] \
        == [1.449, 1.51]
    assert [m["val_nll"] for m in published.with_cross_validation({"models": models}, [])["models"]] \
        == [None, 1.51]


def test_a_cv_row_published_before_served_as_existed_is_named_by_its_model(tmp_path):
    # as the committed rnn-7 row is written: served, with no served_as key
    (tmp_path / "cv.json").write_text(json.dumps({"rows": [
        {"label": "rnn-7", "model": "rnn", "served": True, "mean": 1.608, "sd": 0.02}]}))
    (row,) = published.cv_rows(tmp_path)
    assert row["served_as"] == "rnn"
    assert published.held_out_nll("rnn", 1.7, False, [row]) == (1.608, "cross_validation")


def test_only_figures_from_another_validation_than_the_lstms_are_starred():
    cv_figure = {"val_nll_source": "cross_validation"}
    models = [{"name": "lstm", "split": "distilled from mezcla.npz", **cv_figure},
              {"name": "rnn", "split": "7-fold cross-fitting", **cv_figure},
              {"name": "markov", "split": "7-fold cross-fitting", "val_nll_source": "checkpoint"},
              {"name": "lstm_estado", "split": "stratified by state", "val_nll_source": "checkpoint"}]
    # the same published folds make lstm's and rnn's figures comparable whatever their checkpoints
    assert compare.other_validation(models) == {"markov", "lstm_estado"}
    own = [{**m, "val_nll_source": "checkpoint"} for m in models]
    assert compare.other_validation(own) == {"rnn", "markov", "lstm_estado"}
