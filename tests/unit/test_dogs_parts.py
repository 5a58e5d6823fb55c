"""Pure parts of dogs: combining photos' answers, the puppy line of the drift report, callback data."""

import numpy as np
import pytest

from dogbot.lifecycle_text import puppies_in_words
from ml.combine import combine_outputs, combine_probabilities
from ml.predictor import ModelOutput


def output(probabilities, dog=0.9, version="lite0-v0") -> ModelOutput:
    p = np.asarray(probabilities, dtype=np.float32)
    return ModelOutput(np.ones(4, np.float32), dog, p, ("a", "b", "c"), version)


def test_both_ways_of_combining_sum_to_one_and_agree_with_one_photo():
    rows = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    for how in ("mean", "log_mean"):
        combined = combine_probabilities(rows, how)
        assert combined.sum() == pytest.approx(1.0, abs=1e-6)
        assert combine_probabilities(rows[:1], how) == pytest.approx(rows[0], abs=1e-6)
    assert combine_probabilities(rows, "mean") == pytest.approx([0.4, 0.4, 0.2])
    with pytest.raises(ValueError):
        combine_probabilities(rows, "median")


def test_log_mean_is_the_normalised_geometric_mean_and_a_zero_vetoes():
    rows = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1]])
    geometric = np.prod(rows, axis=0) ** (1 / 3)
    assert combine_probabilities(rows, "log_mean") == pytest.approx(geometric / geometric.sum(), abs=1e-6)
    # A breed one photo rules out (probability 0) cannot win, however sure the others are of it.
    vetoed = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.0, 0.5, 0.5]])
    assert int(np.argmax(combine_probabilities(vetoed, "log_mean"))) == 1
    assert int(np.argmax(combine_probabilities(vetoed, "mean"))) == 0


def test_combined_output_keeps_the_model_and_averages_the_dog_probability():
    combined = combine_outputs(
        [output([0.7, 0.2, 0.1], dog=0.9), output([0.5, 0.4, 0.1], dog=0.5)], "log_mean"
    )
    assert combined.top(1)[0][0] == "a" and combined.dog_probability == pytest.approx(0.7)
    assert combined.model_version == "lite0-v0"
    with pytest.raises(ValueError):
        combine_outputs([output([1, 0, 0]), output([1, 0, 0], version="lite0-v1")], "mean")


def test_puppies_are_told_in_words_against_the_reference():
    more = puppies_in_words(
        {"current": {"puppy": 6, "adult": 4, "unknown": 9}, "reference": {"puppy": 1, "adult": 19}}
    )
    assert more == (
        "Puppies: 6 of the 10 recent dogs with an age (60%), against 1 of 20 (5%) before: "
        "many more puppies than before."
    )
    same = puppies_in_words({"current": {"puppy": 1, "adult": 9}, "reference": {"puppy": 2, "senior": 18}})
    assert same.endswith("about as many as before.")
    assert "no age to compare" in puppies_in_words({"current": {"puppy": 2}, "reference": {"unknown": 5}})
    assert puppies_in_words({"current": {"unknown": 3}, "reference": {"puppy": 3}}) is None
    assert puppies_in_words(None) is None


def test_dog_buttons_fit_telegrams_64_bytes_and_need_their_argument():
    from bot.callbacks import Action, CallbackCodec, Press

    codec = CallbackCodec(b"secret")
    for press in (
        Press(2**31, Action.SAME_DOG, str(2**31)),
        Press(2**31, Action.MIX_PRIMARY, "american_staffordshire_terrier_with_a_long_name"),
        Press(2**31, Action.SEX, "female"),
    ):
        data = codec.encode(press)
        assert len(data.encode()) <= 64
        decoded = codec.decode(data)
        assert decoded.action is press.action and decoded.prediction_id == press.prediction_id
    body = codec.encode(Press(1, Action.NEW_DOG))
    assert codec.decode(body) == Press(1, Action.NEW_DOG)


def test_error_analysis_by_age_group_needs_enough_photos_of_a_group():
    from jobs.retrain import MIN_AGE_GROUP_PHOTOS, Labeled, _by_age_group
    from ml.head import BreedHead

    head = BreedHead(["a", "b"], np.eye(2, dtype=np.float32), np.zeros(2, np.float32), "lite0")
    n = MIN_AGE_GROUP_PHOTOS
    x = np.array([[1.0, 0.0]] * n + [[0.0, 1.0]] * n + [[1.0, 0.0]] * 3, np.float32)
    y = ["a"] * n + ["a"] * (n // 2) + ["b"] * (n - n // 2) + ["a"] * 3
    ages = ["adult"] * n + ["puppy"] * n + ["senior"] * 3
    assert _by_age_group(head, Labeled(x, y, ages)) == {
        "adult": {"n": n, "top1": 1.0},
        "puppy": {"n": n, "top1": round((n - n // 2) / n, 4)},
    }  # three seniors are too few to say anything
    assert _by_age_group(head, Labeled(x, y)) == {}
