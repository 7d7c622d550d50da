"""The real list: fast folding agrees with corpus.fold, states, nearest names."""

from __future__ import annotations

from app.corpus import fold
from app.gazetteer import Gazetteer, fold_key, load_gazetteer, read_entries


def test_fold_key_agrees_with_corpus_fold():
    tricky = ["ACÁMBARO", "Acámbaro", "Acámbaro", "  Ñuu Savi ", "İztapalapa", "Straße",
              "San Pedro Mixtepec -Dto. 22 -", "Ü\u0308ber", "a\u0301\u0327"]
    for name in [name for name, _ in read_entries()] + tricky:
        assert fold_key(name) == fold(name), name


def test_real_list_unites_both_files_with_states():
    gazetteer = load_gazetteer()
    assert gazetteer.is_real("acambaro") and gazetteer.is_real("SILAO")
    by_name = dict(zip(gazetteer.names, gazetteer.states, strict=True))
    assert by_name["Acámbaro"] == "Guanajuato"
    assert by_name["Silao"] is None            # only in municipios.txt, no folded match in the CSV


def test_nearest_is_the_minimum_edit_distance_first_in_the_list():
    gazetteer = Gazetteer([("Tepic", "Nayarit"), ("Tapic", "Otro"), ("Colima", "Colima")])
    (near,) = gazetteer.nearest([fold_key("TEPICA")])
    assert (near.name, near.estado, near.distance) == ("Tepic", "Nayarit", 1)
    (tie,) = gazetteer.nearest([fold_key("Tbpic")])
    assert (tie.name, tie.distance) == ("Tepic", 1)
    (same,) = gazetteer.nearest([fold_key("cólima")])
    assert (same.name, same.distance) == ("Colima", 0)
