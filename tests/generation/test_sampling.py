"""The sampling engine: options, reproducibility, novelty, limits, budget and scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from app.data.corpus import fold
from app.data.gazetteer import load_gazetteer
from app.generation.deadline import Deadline
from app.generation.drawing import TINY, _pick, draw, padded_rows
from app.generation.sampling import (
    DRAWS_PER_NAME,
    MIN_DRAWS,
    Filters,
    SamplingError,
    draw_conditions,
    option_errors,
    resolve_estado,
    sample_names,
    sample_steps,
)
from app.lm.base import load_model, names_nll
from app.paths import ROOT
from tests.conftest import make_tiny_model, make_tiny_state_model
from tests.fakes import ListModel


class EndsSoon:
    """Wraps a model and pushes its end token up a little more at every step."""

    def __init__(self, model, push: float = 1.5):
        self.model, self.push = model, push
        self.vocab, self.kind, self.conditions = model.vocab, model.kind, model.conditions
        self.metadata = model.metadata

    def initial_state(self, n, cond=None):
        return self.model.initial_state(n, cond), np.zeros(n)

    def next_logits(self, ids, state):
        inner, steps = state
        logits, inner = self.model.next_logits(ids, inner)
        logits = logits.copy()
        logits[:, 0] += self.push * steps
        return logits, (inner, steps + 1)

    def select(self, state, keep):
        return self.model.select(state[0], keep), state[1][keep]


class Ticking:
    """Wraps a model; each step advances a fake clock by ``step`` seconds (no real waiting)."""

    def __init__(self, model, step: float = 0.1):
        self.model, self.step, self.now = model, step, 0.0
        self.vocab, self.kind, self.metadata = model.vocab, model.kind, model.metadata
        self.steps = 0

    def clock(self) -> float:
        return self.now

    def initial_state(self, n, cond=None):
        return self.model.initial_state(n, cond)

    def next_logits(self, ids, state):
        self.now += self.step
        self.steps += 1
        return self.model.next_logits(ids, state)

    def select(self, state, keep):
        return self.model.select(state, keep)


def greedy_name(model, prefix: str = "", max_length: int = 64) -> str | None:
    """The argmax name, one step at a time (independent of app.generation.sampling)."""
    state = model.initial_state(1)
    ids, text = [0, *model.vocab.encode(prefix)], prefix
    for token in ids[:-1]:
        _, state = model.next_logits(np.array([token]), state)
    token = ids[-1]
    while len(text) <= max_length:
        logits, state = model.next_logits(np.array([token]), state)
        token = int(logits[0].argmax())
        if token == 0:
            return text
        text += model.vocab.chars[token]
    return None


def test_same_seed_same_names_other_seed_other_names(tiny_lstm):
    first = sample_names(tiny_lstm, 8, np.random.default_rng(5), temperature=1.0)
    again = sample_names(tiny_lstm, 8, np.random.default_rng(5), temperature=1.0)
    other = sample_names(tiny_lstm, 8, np.random.default_rng(6), temperature=1.0)
    assert [s.name for s in first.names] == [s.name for s in again.names]
    assert [s.name for s in first.names] != [s.name for s in other.names]


def test_batches_are_padded_to_a_multiple_of_four_rows_except_one():
    assert [padded_rows(n) for n in (1, 2, 3, 4, 5, 8, 9, 1001)] == [1, 4, 4, 4, 8, 8, 12, 1004]


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_filler_rows_never_reach_the_names(kind, tiny_lstm, tiny_rnn):
    """5 draws run as 8 rows, 3 of them fillers; 8 draws have none: the first 5 agree."""
    model = tiny_lstm if kind == "lstm" else tiny_rnn
    five, five_nll = draw(model, 5, "", 20, 1.0, None, np.random.default_rng(3))
    eight, eight_nll = draw(model, 8, "", 20, 1.0, None, np.random.default_rng(3))
    assert five == eight[:5]
    np.testing.assert_allclose(five_nll, eight_nll[:5], rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_tiny_temperature_gives_the_argmax_name(kind, tiny_lstm, tiny_rnn):
    model = EndsSoon(tiny_lstm if kind == "lstm" else tiny_rnn)
    expected = greedy_name(model)
    assert expected
    result = sample_names(model, 1, np.random.default_rng(0), temperature=1e-6, novel=False)
    assert [s.name for s in result.names] == [expected]
    # an absurdly small temperature is no division by zero, still the argmax
    result = sample_names(model, 1, np.random.default_rng(0), temperature=1e-300, novel=False)
    assert [s.name for s in result.names] == [expected]
    # top_k=1 is the argmax at any temperature
    result = sample_names(model, 1, np.random.default_rng(1), temperature=2.0, top_k=1,
                          novel=False)
    assert [s.name for s in result.names] == [expected]


def test_prefix_is_kept_and_continued_greedily(tiny_lstm):
    model = EndsSoon(tiny_lstm)
    names = sample_names(model, 6, np.random.default_rng(2), prefix="Ta", temperature=1.0).names
    assert names and all(s.name.startswith("Ta") for s in names)
    greedy = sample_names(model, 1, np.random.default_rng(0), prefix="Ñu", temperature=1e-6,
                          novel=False)
    assert [s.name for s in greedy.names] == [greedy_name(model, "Ñu")]


def test_top_k_only_uses_the_k_best_characters(tiny_lstm):
    model = EndsSoon(tiny_lstm)
    names = sample_names(model, 10, np.random.default_rng(0), top_k=2, temperature=1.0).names
    first_logits, _ = model.next_logits(np.zeros(1, dtype=np.int64), model.initial_state(1))
    allowed = {model.vocab.chars[i] for i in np.argsort(first_logits[0])[-2:]}
    assert names and {s.name[0] for s in names} <= allowed


def test_novel_filter_excludes_real_names_and_reports_shortfall():
    model = ListModel(["Tepic", "Colima", "Tepiquillo"])
    gazetteer = load_gazetteer()
    assert gazetteer.spelling("Tepic") and gazetteer.spelling("COLIMA")
    assert gazetteer.spelling("Tepiquillo") is None
    result = sample_names(model, 3, np.random.default_rng(0), temperature=1.0)
    assert [s.name for s in result.names] == ["Tepiquillo"]
    assert not result.complete and result.draws == max(MIN_DRAWS, DRAWS_PER_NAME * 3)
    everything = sample_names(model, 3, np.random.default_rng(0), temperature=1.0, novel=False)
    assert sorted((s.name, s.novel) for s in everything.names) == [
        ("Colima", False), ("Tepic", False), ("Tepiquillo", True)]


def test_names_are_never_repeated_even_by_case_or_accents():
    model = ListModel(["Xochi", "XOCHI", "Xóchi", "Zapa"])
    result = sample_names(model, 4, np.random.default_rng(0), temperature=1.0)
    keys = [fold(s.name) for s in result.names]
    assert sorted(keys) == ["xochi", "zapa"]


def test_names_with_a_run_of_spaces_are_dropped():
    model = ListModel(["San  Juan", "San Juan", " Tepic", "Tepic "])
    result = sample_names(model, 4, np.random.default_rng(0), temperature=1.0, novel=False)
    assert [s.name for s in result.names] == ["San Juan"] and result.draws > 4


def test_names_with_a_digit_are_dropped():
    # the course list's four «-Dto. 08 -» district notes teach the models digits, which no
    # municipality's name has: «Chav2c» or «Zapotl08» are drawn now and then, never given
    model = ListModel(["Chav2c", "Tepic", "San Juan Mixtepec -Dto. 22 -", "Zapotl08"])
    result = sample_names(model, 4, np.random.default_rng(0), temperature=1.0, novel=False)
    assert [s.name for s in result.names] == ["Tepic"] and result.draws > 4


def test_a_digit_in_a_prefix_or_filter_is_refused_up_front():
    # the served models know digits (from those notes), so this is not an unknown character
    vocab = load_model(ROOT / "models" / "lstm.npz").vocab
    errors = option_errors(vocab, 0.8, None, "San 2", 40, filters=Filters(suffix="08", contains="26"))
    assert [(e.field, e.code) for e in errors] == [
        ("prefix", "prefix_digit"), ("suffix", "suffix_digit"), ("contains", "contains_digit")]


def test_max_length_drops_long_names_instead_of_cutting():
    model = ListModel(["Abcdefghij", "Abc"])
    result = sample_names(model, 2, np.random.default_rng(0), max_length=5, temperature=1.0)
    assert [s.name for s in result.names] == ["Abc"]
    exact = sample_names(model, 2, np.random.default_rng(0), max_length=10, temperature=1.0)
    assert sorted(s.name for s in exact.names) == ["Abc", "Abcdefghij"]


def test_every_name_respects_max_length(tiny_rnn):
    result = sample_names(tiny_rnn, 20, np.random.default_rng(3), max_length=6, temperature=1.5)
    assert result.names and all(len(s.name) <= 6 for s in result.names)


def test_nll_per_char_matches_scoring_the_name(tiny_lstm):
    result = sample_names(tiny_lstm, 5, np.random.default_rng(4), prefix="Ma", temperature=0.7)
    scored = names_nll(tiny_lstm, [s.name for s in result.names])
    assert np.allclose([s.nll_per_char for s in result.names], [x.mean() for x in scored],
                       rtol=1e-4)


def test_nearest_real_name_with_state():
    result = sample_names(ListModel(["Tepicc"]), 1, np.random.default_rng(0), temperature=1.0)
    (sampled,) = result.names
    assert (sampled.nearest.name, sampled.nearest.estado, sampled.nearest.distance) == (
        "Tepic", "Nayarit", 1)


@pytest.mark.parametrize(("options", "field", "code"), [
    ({"prefix": "T<"}, "prefix", "prefix_unknown_chars"),
    ({"prefix": "San\n"}, "prefix", "prefix_unknown_chars"),
    ({"filters": Filters(contains="a\nb")}, "contains", "contains_unknown_chars"),
    ({"filters": Filters(suffix="a\nb")}, "suffix", "suffix_unknown_chars"),
    ({"prefix": "Tulum", "max_length": 3}, "prefix", "prefix_too_long"),
    ({"prefix": " "}, "prefix", "prefix_spacing"),
    ({"prefix": " San"}, "prefix", "prefix_spacing"),
    ({"prefix": "San  "}, "prefix", "prefix_spacing"),
    ({"prefix": "san "}, "prefix", "prefix_lowercase"),
    ({"filters": Filters(suffix="-")}, "suffix", "suffix_hyphen_only"),
    ({"filters": Filters(suffix=" -- ")}, "suffix", "suffix_hyphen_only"),
    ({"prefix": "tla"}, "prefix", "prefix_lowercase"),
    ({"temperature": 0.0}, "temperature", "out_of_range"),
    ({"temperature": float("nan")}, "temperature", "out_of_range"),
    ({"temperature": 5.5}, "temperature", "out_of_range"),
    ({"max_length": 65}, "max_length", "out_of_range"),
    ({"top_k": 0}, "top_k", "out_of_range"),
])
def test_bad_options_name_the_field(tiny_lstm, options, field, code):
    with pytest.raises(SamplingError) as caught:
        sample_names(tiny_lstm, 3, np.random.default_rng(0), **options)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert field in str(caught.value)


def test_a_lowercase_prefix_is_refused_with_the_capitalised_one_to_try(tiny_lstm):
    with pytest.raises(SamplingError) as caught:
        sample_names(tiny_lstm, 3, np.random.default_rng(0), prefix="san ")
    assert caught.value.context == {"suggestion": "San "}


def test_state_conditioned_model_samples_with_a_random_state_per_name():
    model = make_tiny_state_model()
    result = sample_names(EndsSoon(model), 5, np.random.default_rng(0), prefix="Te")
    assert len(result.names) == 5 and all(s.name.startswith("Te") for s in result.names)


def test_states_are_drawn_in_proportion_to_their_municipalities_reproducibly():
    model = make_tiny_state_model()
    model.metadata["condition_counts"] = [1, 0, 9]
    draws = draw_conditions(model, 5000, np.random.default_rng(7))
    assert np.array_equal(draws, draw_conditions(model, 5000, np.random.default_rng(7)))
    shares = np.bincount(draws, minlength=3) / len(draws)
    assert shares[1] == 0 and abs(shares[2] - 0.9) < 0.02 and abs(shares[0] - 0.1) < 0.02
    assert (draw_conditions(model, 4, np.random.default_rng(0), estado=1) == 1).all()
    assert draw_conditions(make_tiny_model("lstm"), 4, np.random.default_rng(0)) is None


def test_each_name_says_its_state_and_a_seed_repeats_names_and_states():
    model = make_tiny_state_model()
    model.metadata["condition_counts"] = [0, 1, 1]     # never Oaxaca

    def run(**options):
        result = sample_names(EndsSoon(model), 30, np.random.default_rng(11), **options)
        return [(s.name, s.estado) for s in result.names]

    mixed = run()
    assert len(mixed) == 30 and mixed == run()
    assert {estado for _, estado in mixed} == {"Sonora", "Yucatán"}
    assert {estado for _, estado in run(estado=0)} == {"Oaxaca"}


def test_nearest_real_name_is_sought_in_the_state_asked_for():
    gazetteer = load_gazetteer()
    result = sample_names(EndsSoon(make_tiny_state_model()), 20, np.random.default_rng(2),
                          estado=2, gazetteer=gazetteer)
    assert result.names
    for s in result.names:
        assert s.estado == "Yucatán" and s.novel
        assert s.nearest.estado == "Yucatán"
        yucatan_keys = gazetteer.by_state["Yucatán"][0]
        assert s.nearest.distance == min(Levenshtein.distance(fold(s.name), k) for k in yucatan_keys)


def test_estado_is_checked_against_the_model():
    with pytest.raises(SamplingError) as unconditioned:
        sample_names(make_tiny_model("lstm"), 3, np.random.default_rng(0), estado=0)
    assert (unconditioned.value.field, unconditioned.value.code) == ("estado", "not_conditioned")
    with pytest.raises(SamplingError) as out_of_range:
        sample_names(make_tiny_state_model(), 3, np.random.default_rng(0), estado=3)
    assert out_of_range.value.code == "out_of_range" and "0 to 2" in str(out_of_range.value)
    model = make_tiny_state_model()
    assert resolve_estado(model, "yucatan")[1] == 2 and resolve_estado(model, "20")[1] == 0
    with pytest.raises(SamplingError) as not_trained:
        resolve_estado(model, "Jalisco")
    assert not_trained.value.code == "unknown_state" and "20 Oaxaca" in str(not_trained.value)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.6, None), (1.7, 3)])
def test_picked_tokens_follow_the_tempered_softmax(temperature, top_k):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0, -np.inf], dtype=np.float32)
    draws = 200_000
    uniform = np.random.default_rng(0).random((draws, len(logits)), dtype=np.float32) + TINY
    picked = _pick(np.tile(logits, (draws, 1)), temperature, top_k, uniform)
    z = logits.astype(np.float64) / temperature
    if top_k:
        z[np.argsort(z)[:-top_k]] = -np.inf
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    observed = np.bincount(picked, minlength=len(logits)) / draws
    # binomial standard error is at most 0.0012 here: 5 of them
    np.testing.assert_allclose(observed, expected, atol=0.006)


class ZeroUniforms:
    """A generator whose every uniform is 0: the one value whose log the noise must not take."""

    def random(self, out, dtype):
        out[...] = 0.0
        return out


def test_uniforms_of_zero_are_floored_before_the_noise_is_drawn():
    model = make_tiny_model("lstm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # log(0) would warn
        names, nll = draw(model, 3, "", 12, 0.8, None, ZeroUniforms())
    # the same noise on every token: each step picks the most likely one, as T -> 0 does
    greedy, _ = draw(model, 3, "", 12, 1e-20, None, np.random.default_rng(0))
    assert names == greedy
    assert np.isfinite(nll[[name is not None for name in names]]).all()


@pytest.mark.parametrize("temperature", [1e30, 1e39])
def test_a_huge_temperature_never_picks_a_masked_token(temperature):
    logits = np.tile(np.array([2.0, 1.0, 0.0, -np.inf], np.float32), (20_000, 1))
    uniform = np.random.default_rng(0).random(logits.shape, dtype=np.float32) + TINY
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no overflow either
        picked = _pick(logits, temperature, 2, uniform)
    counts = np.bincount(picked, minlength=4) / len(picked)
    # top 2 of 4 at an endless temperature: the two kept tokens alike, the others never
    np.testing.assert_allclose(counts, [0.5, 0.5, 0.0, 0.0], atol=0.02)


@pytest.mark.parametrize("make", [lambda: make_tiny_model("rnn"), make_tiny_state_model])
def test_asking_for_more_names_keeps_the_first_ones(make):
    """Same seed, larger n: the names (and states) for n are the start of the longer list, though
    the rounds are sized differently."""
    model = make()

    def names(n):
        result = sample_names(model, n, np.random.default_rng(3), temperature=1.3, max_length=12)
        return [(s.name, s.estado) for s in result.names]

    five, thirty = names(5), names(30)
    assert len(five) == 5 and len(thirty) == 30
    assert thirty[:5] == five and names(12)[:5] == five


def test_filters_hold_for_every_name_and_the_budget_is_kept():
    model = make_tiny_model("lstm")
    filters = Filters(suffix="A", contains="o", min_length=4)
    result = sample_names(model, 15, np.random.default_rng(0), temperature=1.5, filters=filters,
                          max_length=9)
    assert result.names, "an untrained model over these letters does end some names in a"
    for s in result.names:
        key = fold(s.name)
        assert key.endswith("a") and "o" in key and 4 <= len(s.name) <= 9
    assert result.draws <= max(MIN_DRAWS, DRAWS_PER_NAME * 15)
    # what cannot be met spends the whole budget and says so
    hopeless = sample_names(model, 3, np.random.default_rng(0), filters=Filters(contains="ñuu"))
    assert not hopeless.complete and hopeless.draws == MIN_DRAWS


def test_an_ending_written_as_the_page_writes_it_means_the_same():
    # the page says «que terminen en «-tepec»»: typed back with its hyphen, it is that ending
    for name in ("Tepetlixpa", "Ocotepec", "Tecámac", "Mineral de la Reforma -Dto. 26 -"):
        key = fold(name)
        assert Filters(suffix="-tepec").accepts(name, key) == Filters(suffix="tepec").accepts(name, key)
    assert Filters(suffix="-tepec").accepts("Ocotepec", "ocotepec")
    assert Filters(suffix=" -").accepts("San Juan -Dto. 26 -", fold("San Juan -Dto. 26 -"))


def test_an_ending_with_the_pages_hyphen_is_accepted_by_a_model_that_never_saw_one(tiny_lstm):
    assert "-" not in tiny_lstm.vocab.chars
    assert option_errors(tiny_lstm.vocab, 0.8, None, "", 40, filters=Filters(suffix="-a")) == []
    result = sample_names(tiny_lstm, 3, np.random.default_rng(0), filters=Filters(suffix="-a"))
    assert all(fold(s.name).endswith("a") for s in result.names)


@pytest.mark.parametrize(("filters", "field", "code"), [
    (Filters(suffix="ø"), "suffix", "suffix_unknown_chars"),
    (Filters(contains="7"), "contains", "contains_digit"),   # a digit, known or not
    (Filters(contains="x" * 41), "contains", "contains_too_long"),
    (Filters(min_length=41), "min_length", "min_over_max"),
])
def test_bad_filters_name_the_field(tiny_lstm, filters, field, code):
    with pytest.raises(SamplingError) as caught:
        sample_names(tiny_lstm, 3, np.random.default_rng(0), filters=filters)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_option_errors_lists_every_problem_at_once(tiny_lstm):
    errors = option_errors(tiny_lstm.vocab, 9.0, None, "T<", 40, filters=Filters(suffix="ø"))
    assert [e.field for e in errors] == ["temperature", "prefix", "suffix"]


FEW = ["Xochi", "Zapa", "Tlaco"]   # a model that knows three names makes 50 a lost cause


def test_a_deadline_stops_sampling_with_what_it_found_and_says_why():
    unbounded = Ticking(ListModel(FEW))
    everything = sample_names(unbounded, 50, np.random.default_rng(0), novel=False)
    assert everything.stopped == "budget" and everything.draws == DRAWS_PER_NAME * 50
    ticking = Ticking(ListModel(FEW), step=0.5)
    result = sample_names(ticking, 50, np.random.default_rng(0), novel=False,
                          deadline=Deadline(2.0, ticking.clock))
    assert result.stopped == "deadline" and not result.complete
    assert 2.0 <= ticking.now <= 2.0 + 2 * ticking.step     # stopped at the step that crossed it
    assert ticking.steps < unbounded.steps
    assert {s.name for s in result.names} <= {s.name for s in everything.names}


def test_time_spent_paused_between_steps_does_not_count():
    ticking = Ticking(ListModel(FEW), step=0.5)
    steps = sample_steps(ticking, 50, np.random.default_rng(0), novel=False, deadline=Deadline(2.0, ticking.clock))
    resumed = 0
    with pytest.raises(StopIteration) as done:
        while True:
            next(steps)
            ticking.now += 100.0          # the caller serves others for a long while
            resumed += 1
    assert done.value.value.stopped == "deadline"
    assert resumed >= 2.0 / ticking.step - 1


def test_a_stopped_deadline_ends_sampling_at_the_next_step():
    deadline = Deadline()
    steps = sample_steps(ListModel(FEW), 50, np.random.default_rng(0), novel=False,
                         deadline=deadline)
    next(steps)
    deadline.stop("shutdown")
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value.stopped == "shutdown" and not done.value.value.complete


def test_a_complete_result_has_no_stop_reason(tiny_lstm):
    result = sample_names(tiny_lstm, 3, np.random.default_rng(0), deadline=Deadline(60.0))
    assert result.complete and result.stopped is None
