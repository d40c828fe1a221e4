"""Text to number: words from num2words, the 169/200/630 split, tokens, extrapolation set."""
from types import SimpleNamespace

import numpy as np
import pytest
from num2words import num2words

from models import registry
from tasks import text_to_number as ttn
from tasks.base import TaskError
from tasks.text_to_number import TextToNumber, corpus, segment, table_words, tokens, words

AVAILABLE = [f for f in registry.FRAMEWORKS if registry.framework_missing(f) is None]


@pytest.mark.parametrize("language", ttn.LANGUAGES)
def test_split_sizes_disjoint_and_covering(language):
    split = TextToNumber(language=language).split()
    sizes = {k: len(split[k]) for k in ("train", "validation", "test")}
    assert sizes == {"train": 169, "validation": 200, "test": 630}
    every = np.concatenate([split["train"], split["validation"], split["test"]])
    assert sorted(every) == list(range(1, 1000))  # disjoint and covering 1..999
    assert set(range(1, 20)) <= set(split["train"])
    np.testing.assert_array_equal(np.sort(np.r_[split["interpolation"], split["extrapolation"]]),
                                  split["test"])


@pytest.mark.parametrize("language", ttn.LANGUAGES)
def test_training_set_holds_every_token(language):
    task = TextToNumber(language=language)
    seen = {t for n in task.split()["train"] for t in corpus(language)[n - 1]}
    assert seen == set(task.vocabulary)
    ids, lengths = task.encoded()
    assert ids.max() == len(task.vocabulary) and (ids[:, 0] > 0).all()
    assert ((ids > 0).sum(1) == lengths).all()


def test_split_is_fixed_by_its_seed():
    a, b = TextToNumber().split(), TextToNumber(split_seed=0).split()
    c = TextToNumber(split_seed=1).split()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["train"], c["train"])
    assert set(range(1, 20)) <= set(c["train"])


def test_english_words_are_the_library_s():
    assert words(712, "en") == num2words(712, lang="en") == "seven hundred and twelve"
    assert tokens(712, "en") == ("seven", "hundred", "and", "twelve")
    assert tokens(77, "en") == ("seventy", "seven")  # split at the hyphen
    assert tokens(97, "fr") == ("quatre", "vingt", "dix", "sept")
    assert tokens(777, "es") == ("setecientos", "setenta", "y", "siete")
    assert len(TextToNumber().vocabulary) == 29  # 1..19, 8 tens, hundred, and


@pytest.mark.parametrize("language", ttn.COMPOUND_LANGUAGES)
def test_compounds_split_into_the_library_s_table_words(language):
    table = table_words(language)
    for n in range(1, 1000):
        pieces = tokens(n, language)
        assert "".join(pieces) == words(n, language).replace(" ", "").replace("-", "")
    # almost every piece is a word of num2words' own table; the rest is its glue
    vocab = TextToNumber(language=language).vocabulary
    assert sum(t in table for t in vocab) >= len(vocab) - 3


def test_german_compounds():
    assert words(712, "de") == "siebenhundertzwölf"
    assert tokens(712, "de") == ("sieben", "hundert", "zwölf")
    assert tokens(77, "de") == ("sieben", "und", "siebzig")
    assert tokens(21, "de") == ("einund", "zwanzig")  # the merge's glue stays one token
    assert tokens(100, "de") == ("ein", "hundert")
    assert segment("dreihundertdrei", table_words("de")) == ["drei", "hundert", "drei"]
    assert max(len(s) for s in corpus("de")) <= 6


@pytest.mark.parametrize("language", ["en", "fr", "de", "nl", "sv", "da", "id"])
def test_extrapolation_set_is_held_out_and_needs_no_new_token(language):
    task = TextToNumber(language=language)
    split = task.split()
    assert task.held_hundreds == (8, 9)
    np.testing.assert_array_equal(split["extrapolation"], np.arange(800, 1000))
    assert split["train"].max() < 800 and split["validation"].max() < 800
    train_tokens = {t for n in split["train"] for t in corpus(language)[n - 1]}
    assert {t for n in split["extrapolation"] for t in corpus(language)[n - 1]} <= train_tokens


def test_languages_with_a_word_per_hundred_have_no_extrapolation_set():
    task = TextToNumber(language="es")
    assert task.held_hundreds == () and len(task.split()["extrapolation"]) == 0
    with pytest.raises(TaskError, match="novecientos"):
        TextToNumber(language="es", extrapolation_hundreds=[9])
    held = TextToNumber(language="en", extrapolation_hundreds=[5]).split()
    np.testing.assert_array_equal(held["extrapolation"], np.arange(500, 600))
    assert not np.isin(held["train"] // 100, [5]).any()


def test_prefix_targets_read_the_number_as_it_goes():
    task = TextToNumber()
    y, mask = task.prefix_targets()
    assert y[727].tolist() == [7, 700, 700, 720, 728] and mask[727].all()
    assert y[11, 0] == 12 and mask[11].tolist() == [True] + [False] * 4
    y, mask = TextToNumber(language="de").prefix_targets()
    assert y[20, 1] == 21 and not mask[20, 0]  # "einund" alone is no number


@pytest.mark.parametrize("bad,match", [
    ({"language": "xx"}, "known: en, fr, es, de"),
    ({"hidden_size": 0}, "hidden_size"),
    ({"scale": -1.0}, "scale"),
    ({"extrapolation_hundreds": [0]}, "extrapolation_hundreds"),
    ({"prefix_loss": "maybe"}, "prefix_loss"),
    ({"readout": "first"}, "readout 'first'; expected one of every, last"),
    ({"readout": "last", "prefix_loss": True}, "prefix_loss needs .* readout=every"),
    ({"forget_bias": "one"}, "forget_bias"),
    ({"setting": "paper"}, "unknown setting 'paper'; known: suite, nalu-authors"),
    ({"setting": "nalu-authors", "hidden_size": 20}, "sets hidden_size=10; got hidden_size=20"),
])
def test_bad_parameters_name_the_value(bad, match):
    with pytest.raises(TaskError, match=match):
        TextToNumber(**bad)


def test_check_model_names_the_accepted_ones():
    task = TextToNumber()
    for unit in ("linear", "nac", "nalu", "nau"):
        task.check_model(unit)
    with pytest.raises(TaskError, match="'nau-nmu'.*known: linear"):
        task.check_model("nau-nmu")


def _seed(pred, selected_step, diverged, untrained=(np.nan, np.nan)):
    """What the loop hands a task's metrics (models.engine.SeedFit), as far as they read it;
    ``untrained``: the interpolation and extrapolation MSE at step 0."""
    errors = {"interpolation": np.array([untrained[0], 1.0]),
              "extrapolation": np.array([untrained[1], 1.0])}
    return SimpleNamespace(best={"pred": pred}, selected_step=selected_step, diverged=diverged,
                           errors=errors)


def test_metrics_from_predictions():
    task = TextToNumber()
    values = np.arange(1, 1000, dtype=float)
    perfect = task.metrics(_seed(values + 0.4, 5, False))
    assert perfect["success"] and perfect["accuracy_test"] == 1.0
    assert perfect["mae_train"] == pytest.approx(0.4)
    assert perfect["interpolation_mse"] == pytest.approx(0.16)
    off = values.copy()
    off[899] += 3  # 900 is in the extrapolation set
    m = task.metrics(_seed(off, 5, False))
    assert not m["success"] and m["accuracy_extrapolation"] == pytest.approx(199 / 200)
    assert m["extrapolation_mse"] == pytest.approx(9 / 200) and m["interpolation_mse"] == 0
    assert task.metrics(_seed(values, 0, True))["success"] is False


def test_normalised_error_scales_by_step_0():
    task = TextToNumber()
    values = np.arange(1, 1000, dtype=float)
    exact = task.metrics(_seed(values, 5, False, untrained=(2e5, 8e5)))
    assert exact["interpolation_normalised"] == 0 and exact["extrapolation_normalised"] == 0
    off = task.metrics(_seed(values + 3, 5, False, untrained=(2e5, 9.0)))
    assert off["interpolation_normalised"] == pytest.approx(100 * 9 / 2e5)
    assert off["extrapolation_normalised"] == pytest.approx(100.0)
    none = TextToNumber(language="es").metrics(_seed(values, 5, False, untrained=(1.0, np.nan)))
    assert none["extrapolation_mse"] is None and np.isnan(none["extrapolation_normalised"])


@pytest.mark.parametrize("framework", AVAILABLE[:1])
def test_untrained_network_scores_100(framework):
    """lr 0: the selected network is the untrained one, so both normalised errors are 100;
    a trained one is scaled by the same step-0 MSE that its curve starts at."""
    from benchmarks import runner, suite

    def run(lr):
        budget = suite.Budget("tiny", steps=20, eval_interval=10, seeds=2, description="tests",
                              batch_size=16, lr=lr)
        specs = suite.expand(["text_to_number"], ["nau"], [framework], [0, 1], budget,
                             {"hidden_size": [8], "embedding_size": [4]})
        return runner.run_group(specs)

    for record in run(0.0):
        assert record["metrics"]["interpolation_normalised"] == pytest.approx(100.0)
        assert record["metrics"]["extrapolation_normalised"] == pytest.approx(100.0)
    for record in run(1e-1):
        m, curve = record["metrics"], record["curve"]
        for name in ("interpolation", "extrapolation"):
            assert m[f"{name}_normalised"] == pytest.approx(
                100 * m[f"{name}_mse"] / curve[name][0])


def test_nalu_authors_setting_fixes_the_network():
    task = TextToNumber(setting="nalu-authors")
    assert {k: task.params[k] for k in ("embedding_size", "hidden_size", "forget_bias",
                                        "readout", "setting")} == {
        "embedding_size": 256, "hidden_size": 10, "forget_bias": 1.0, "readout": "last",
        "setting": "nalu-authors"}
    assert task.layers(("nalu", "nalu")) == [("nalu", 10, 1)]
    # its own values may be repeated; the rest of the task is unchanged
    same = TextToNumber(setting="nalu-authors", hidden_size=10, language="de")
    assert same.params["hidden_size"] == 10 and same.params["language"] == "de"
    # the task rebuilt from a spec's parameters is the same task
    assert TextToNumber(**task.params).params == task.params


def test_defaults_leave_the_new_options_out_of_the_spec():
    """Records made before readout, forget_bias and setting existed keep their ids."""
    params = TextToNumber().params
    assert not {"readout", "forget_bias", "setting"} & set(params)
    assert set(params) == set(TextToNumber.parameters) - {"readout", "forget_bias", "setting"}
    assert TextToNumber(readout="last").params["readout"] == "last"
    assert TextToNumber(readout="last").param("forget_bias") == 0.0
