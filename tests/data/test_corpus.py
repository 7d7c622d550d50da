"""Reading names, the vocabulary, the split and padded batches."""

import re

import numpy as np
import pytest

from app.data.corpus import (
    DataError,
    Vocabulary,
    fold,
    length_bucketed_batches,
    make_batch,
    read_corpus,
    read_names,
    split_names,
)


def test_read_names_normalises_to_nfc_and_skips_blank_lines(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Abala\u0301\n\n  \nSan Pedro Mártir  \n", encoding="utf-8")
    assert read_names(path) == ["Abalá", "San Pedro Mártir"]


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"", "contains no names"),
    (b"\n \n", "contains no names"),
    (b"Abal\xe1\n", "not UTF-8"),
])
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "names.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_names(path)


def test_split_is_deterministic_and_repeats_never_straddle_it():
    names = [f"Nombre {i}" for i in range(200)] + ["Abasolo"] * 5
    a = split_names(names, 0.2, seed=0)
    b = split_names(list(reversed(names)), 0.2, seed=0)
    assert set(a.val) == set(b.val)
    assert not set(a.train) & set(a.val)
    assert len(a.train) + len(a.val) == len(names)
    assert 20 <= len(set(a.val)) <= 60
    assert set(split_names(names, 0.2, seed=1).val) != set(a.val)


def test_too_few_names_to_split_is_an_error():
    with pytest.raises(DataError, match="too few distinct names"):
        split_names(["Ures", "Ures", "Opodepe"], 0.1)


def test_vocabulary_round_trip_and_unknown_characters():
    vocab = Vocabulary.from_names(["Ñuu", "Tepic"])
    assert vocab.decode(vocab.encode("Tepic")) == "Tepic"
    assert vocab.encode("Ñ")[0] != 0  # id 0 is the boundary token
    assert vocab.unknown("Zapopán") == ["Z", "a", "o", "á", "n"]
    assert vocab.unknown("Tep\nic") == ["\n"]   # the boundary token is no character of a name


def test_fold_ignores_case_and_accents():
    assert fold("ACÁMBARO") == fold("acambaro")
    assert fold("Peñón") == "penon"


def test_batch_frames_each_name_with_the_boundary_token():
    batch = make_batch([[5, 6, 7], [9]])
    np.testing.assert_array_equal(batch.inputs[:, 0], [0, 5, 6, 7])
    np.testing.assert_array_equal(batch.targets[:, 0], [5, 6, 7, 0])
    np.testing.assert_array_equal(batch.mask[:, 1], [1, 1, 0, 0])
    assert batch.n_tokens == 6


def test_bucketed_batches_cover_every_name_once():
    encoded = [[1] * n for n in (3, 9, 4, 1, 7, 2, 8)]
    batches = length_bucketed_batches(encoded, 3, np.random.default_rng(0))
    assert sum(b.inputs.shape[1] for b in batches) == len(encoded)
    assert sum(b.n_tokens for b in batches) == sum(n + 1 for n in (3, 9, 4, 1, 7, 2, 8))


def test_csv_corpus_gives_states_and_codes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("cve_ent,estado,cve_mun,municipio\n26,Sonora,001,Aconchi\n31,Yucatán,001,Abalá\n",
                    encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.names == ["Aconchi", "Abalá"]
    assert corpus.states == ["Sonora", "Yucatán"]
    assert corpus.state_codes == {"Sonora": "26", "Yucatán": "31"}


def test_csv_without_the_needed_columns_is_an_error(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("nombre\nAconchi\n", encoding="utf-8")
    with pytest.raises(DataError, match="estado and municipio"):
        read_corpus(path)


def test_stratified_split_holds_out_a_share_of_every_stratum():
    names = [f"Norte {i}" for i in range(100)] + [f"Sur {i}" for i in range(20)] + ["Compartido"] * 2
    strata = ["Norte"] * 100 + ["Sur"] * 20 + ["Norte", "Sur"]
    split = split_names(names, 0.1, seed=0, strata=strata)
    held = [strata[i] for i in split.val_index]
    assert 10 <= held.count("Norte") <= 12 and 2 <= held.count("Sur") <= 4
    assert not set(split.train) & set(split.val)  # a name in two states stays on one side


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    text = tmp_path / "names.txt"
    text.write_bytes("\ufeffAbalá\nUres\n".encode())
    table = tmp_path / "names.csv"
    table.write_bytes("\ufeffestado,municipio\nSonora,Ures\n".encode())
    assert read_names(text) == ["Abalá", "Ures"]
    assert read_corpus(table).names == ["Ures"]


@pytest.mark.parametrize("line, why", [
    ("Aba\x00lá", "control character U+0000"),
    ("Ures\x1bOpodepe", "control character U+001B"),
    ("Ures\x0bOpodepe", "control character U+000B"),   # no line break: one bad line
    ("Ures\u200bOpodepe", "control character U+200B"),  # invisible
    ("A" * 101, "101 characters"),
])
def test_bad_lines_are_refused_with_their_line_numbers(tmp_path, line, why):
    path = tmp_path / "names.txt"
    path.write_text(f"Abalá\n\n{line}\nUres\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"1 line\(s\) cannot be used .*: line 3: {re.escape(why)}$"):
        read_names(path)


def test_many_huge_names_are_counted_not_loaded(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(["x" * 10_000] * 200), encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_names(path)
    message = str(error.value)
    assert "200 line(s) cannot be used" in message and "at most 100 characters" in message
    assert "line 1: 10,000 characters" in message and "line 5:" in message
    assert "line 6:" not in message and "and 195 more" in message


def test_a_csv_with_a_control_character_names_its_line(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("estado,municipio\nSonora,Ures\nSonora,Opo\x07depe\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3: control character U\\+0007"):
        read_corpus(path)
