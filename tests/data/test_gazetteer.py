"""The real list: folding, states, nearest names."""

from __future__ import annotations

import unicodedata

from app.data.corpus import fold
from app.data.gazetteer import PARALLEL_QUERIES, Gazetteer, load_gazetteer, read_entries


def _fold_whole_string(name: str) -> str:
    """The definition: NFD of the case-folded NFC name, combining marks dropped."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFC", name.strip()).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_per_character_fold_agrees_with_folding_the_whole_string():
    tricky = ["ACÁMBARO", "Acámbaro", "Acámbaro", "  Ñuu Savi ", "İztapalapa", "Straße",
              "San Pedro Mixtepec -Dto. 22 -", "Ü\u0308ber", "a\u0301\u0327"]
    for name in [name for name, _ in read_entries()] + tricky:
        assert fold(name) == _fold_whole_string(name), name


def test_real_list_unites_both_files_with_states():
    gazetteer = load_gazetteer()
    assert (gazetteer.spelling("acambaro"), gazetteer.spelling("SILAO")) == ("Acámbaro", "Silao")
    by_name = dict(zip(gazetteer.names, gazetteer.states, strict=True))
    assert by_name["Acámbaro"] == "Guanajuato"
    assert by_name["Silao"] is None            # only in municipios.txt, no folded match in the CSV


def test_nearest_is_the_minimum_edit_distance_first_in_the_list():
    gazetteer = Gazetteer([("Tepic", "Nayarit"), ("Tapic", "Otro"), ("Colima", "Colima")])
    (near,) = gazetteer.nearest([fold("TEPICA")])
    assert (near.name, near.estado, near.distance) == ("Tepic", "Nayarit", 1)
    (tie,) = gazetteer.nearest([fold("Tbpic")])
    assert (tie.name, tie.distance) == ("Tepic", 1)
    (same,) = gazetteer.nearest([fold("cólima")])
    assert (same.name, same.distance) == ("Colima", 0)


def test_states_come_from_the_csv_with_codes_and_counts():
    estados = load_gazetteer().estados
    assert len(estados) == 32 and [e.code for e in estados] == [f"{i:02d}" for i in range(1, 33)]
    assert sum(e.municipios for e in estados) == 2458
    assert (estados[30].name, estados[30].municipios) == ("Yucatán", 106)


def test_a_state_is_found_by_name_or_code_ignoring_case_accents_and_spacing():
    gazetteer = load_gazetteer()
    for text in ["Yucatán", "yucatan", "YUCATÁN", " Yucatan ", "31"]:
        assert gazetteer.find_estado(text).name == "Yucatán", text
    for text in ["Ciudad de México", "ciudad de mexico", "CIUDAD  DE MÉXICO", "Ciudad-de-Mexico",
                 "09", "9", "CDMX"]:
        assert gazetteer.find_estado(text).code == "09", text
    assert gazetteer.find_estado("México").code == "15"
    assert gazetteer.find_estado("veracruz").name == "Veracruz de Ignacio de la Llave"
    assert gazetteer.find_estado("michoacan de ocampo").code == "16"
    for text in ["Narnia", "33", "0", "", "Yuca"]:
        assert gazetteer.find_estado(text) is None, text


def test_nearest_prefers_the_same_state_unless_the_name_is_real_elsewhere():
    gazetteer = Gazetteer([("Tepic", "Nayarit"), ("Teopisca", "Chiapas"), ("Guadalupe", "Nuevo León"),
                           ("Guadalupe", "Zacatecas"), ("Fresnillo", "Zacatecas")])
    keys = [fold(k) for k in ["Tepicx", "Tepicx", "Tepic", "Guadalupo", "Guadalupo"]]
    near = gazetteer.nearest(keys, [None, "Chiapas", "Chiapas", "Zacatecas", None])
    assert [(n.name, n.estado, n.distance) for n in near] == [
        ("Tepic", "Nayarit", 1), ("Teopisca", "Chiapas", 3), ("Tepic", "Nayarit", 0),
        ("Guadalupe", "Zacatecas", 1), ("Guadalupe", "Nuevo León", 1)]
    # a name shared by several states counts for each (Zacatecas' Guadalupe is not dropped)
    assert gazetteer.by_state["Zacatecas"][1] == ["Guadalupe", "Fresnillo"]
    assert [gazetteer.spelling(t) for t in ("guadalupe", "TEPIC", "Tépic", "Tepico")] == [
        "Guadalupe", "Tepic", "Tepic", None]
    # and a real name asked for a state that has it is that state's, not the first one listed
    exact = gazetteer.nearest([fold("Guadalupe")] * 3, ["Zacatecas", "Nuevo León", "Chiapas"])
    assert [(n.name, n.estado, n.distance) for n in exact] == [
        ("Guadalupe", "Zacatecas", 0), ("Guadalupe", "Nuevo León", 0), ("Guadalupe", "Nuevo León", 0)]


def test_a_big_batch_searched_on_every_core_finds_what_small_batches_find():
    gazetteer = load_gazetteer()
    # real names with a letter dropped: near, but not exactly, a real name
    queries = [key[:i] + key[i + 1:] for key in gazetteer.keys[:300] for i in (1, 3)]
    assert len(queries) >= PARALLEL_QUERIES
    in_small_batches = [near for start in range(0, len(queries), 100)
                        for near in gazetteer.nearest(queries[start:start + 100])]
    assert gazetteer.nearest(queries) == in_small_batches
