"""ml.training on synthetic embeddings: new breeds are learned, old ones kept, output is one linear head."""

import numpy as np
import pytest
import torch

from ml.head import BreedHead
from ml.training import TrainConfig, evaluate_head, fit_temperature, train_head

DIM = 32


def _clusters(rng, centres: dict[str, np.ndarray], n: int, noise: float = 0.6):
    x, y = [], []
    for key, centre in centres.items():
        x.append(centre + noise * rng.standard_normal((n, DIM)))
        y += [key] * n
    return np.concatenate(x).astype(np.float32), y


@pytest.fixture
def world():
    """Three known breeds the base head separates, two new ones it has no rows for."""
    rng = np.random.default_rng(0)
    centres = {k: rng.normal(0, 2.0, DIM) for k in ("a", "b", "c", "new1", "new2")}
    known = ("a", "b", "c")
    weight = np.stack([centres[k] for k in known]).astype(np.float32)
    bias = -0.5 * (weight**2).sum(axis=1)
    base = BreedHead(list(known), weight, bias, "lite0")
    return rng, centres, base


def test_new_breeds_get_rows_and_are_learned_while_known_ones_stay_right(world):
    rng, centres, base = world
    x, y = _clusters(rng, centres, 12)
    xv, yv = _clusters(rng, centres, 6)
    xt, yt = _clusters(rng, centres, 30)
    head, report = train_head(base, x, y, x_val=xv, y_val=yv)
    assert head.breed_keys == ["a", "b", "c", "new1", "new2"]
    assert report.breeds_added == ["new1", "new2"] and report.n_train == len(y)
    metrics = evaluate_head(head, xt, yt)
    assert metrics.per_breed["new1"]["top1"] > 0.9 and metrics.per_breed["new2"]["top1"] > 0.9
    old, _ = metrics.subset_top1(["a", "b", "c"])
    base_old, _ = evaluate_head(base, xt, yt).subset_top1(["a", "b", "c"])
    assert old >= base_old - 0.01


def test_the_result_is_one_linear_layer_on_raw_embeddings(world):
    rng, centres, base = world
    x, y = _clusters(rng, centres, 8)
    head, _ = train_head(base, x, y, config=TrainConfig(calibrate=False))
    manual = x @ head.weight.T + head.bias
    np.testing.assert_allclose(head.logits(x), manual, atol=1e-4)
    assert head.weight.shape == (5, DIM) and head.backbone == "lite0"


def test_breeds_with_too_few_photos_get_no_row(world):
    rng, centres, base = world
    x, y = _clusters(rng, {k: centres[k] for k in ("a", "b", "new1")}, 5)
    x = np.concatenate([x, centres["new2"][None].astype(np.float32)])
    head, report = train_head(base, x, [*y, "new2"], config=TrainConfig(min_photos=2))
    assert "new2" not in head.breed_keys and report.breeds_too_few == ["new2"]


def test_training_is_deterministic(world):
    rng, centres, base = world
    x, y = _clusters(rng, centres, 6)
    first, _ = train_head(base, x, y)
    second, _ = train_head(base, x, y)
    assert np.array_equal(first.weight, second.weight) and np.array_equal(first.bias, second.bias)


def test_strong_anchor_keeps_old_rows_near_their_start(world):
    rng, centres, base = world
    x, y = _clusters(rng, centres, 6)
    loose, _ = train_head(base, x, y, config=TrainConfig(old_anchor=1e-4))
    tight, _ = train_head(base, x, y, config=TrainConfig(old_anchor=100.0))
    moved = lambda head: float(np.linalg.norm(head.weight[:3] - base.weight))  # noqa: E731
    assert moved(tight) < moved(loose)


def test_temperature_fitting_undoes_overconfidence():
    rng = np.random.default_rng(1)
    y = torch.as_tensor(rng.integers(0, 4, 400))
    logits = torch.as_tensor(rng.normal(0, 1, (400, 4)), dtype=torch.float32)
    logits[torch.arange(400), y] += 1.0
    assert fit_temperature(logits * 5, y) > fit_temperature(logits, y) > 0


def test_evaluation_counts_unknown_breeds_as_misses_and_lists_confusions(world):
    _, centres, base = world
    x = np.stack([centres["a"], centres["a"], centres["new1"]]).astype(np.float32)
    metrics = evaluate_head(base, x, ["a", "b", "new1"])
    assert metrics.n == 3 and metrics.top1 == pytest.approx(1 / 3)
    assert metrics.per_breed["new1"]["top1"] == 0.0
    assert {"truth": "b", "predicted": "a", "n": 1} in metrics.confusions


def test_without_a_validation_split_the_offset_comes_from_cross_fitting(world):
    """At a shelter's pace the first validation photos all go to the golden set: nothing else to use."""
    rng, centres, base = world
    x, y = _clusters(rng, centres, 6)
    head, report = train_head(base, x, y)
    assert report.n_val == len(y)  # every training photo answered by a head that did not learn it
    # The temperature is fitted on validation photos only: people's labels are a biased sample.
    assert report.temperature == 1.0 and head.temperature == 1.0
    _, off = train_head(base, x, y, config=TrainConfig(cross_fit_below=0))
    assert off.n_val == 0 and off.new_bias_offset == 0.0
    # Auto-accepted labels are trained on but never answered: they are the model's own answers.
    people = [i % 3 != 0 for i in range(len(y))]
    _, report = train_head(base, x, y, labelled_by_people=people)
    assert report.n_train == len(y) and report.n_val == sum(people)


def test_a_validation_split_large_enough_is_used_alone_and_a_small_one_with_cross_fitting(world):
    rng, centres, base = world
    x, y = _clusters(rng, centres, 6)
    xv, yv = _clusters(rng, centres, 5)  # 25 photos: at least cross_fit_below (20)
    _, report = train_head(base, x, y, x_val=xv, y_val=yv)
    assert report.n_val == len(yv)
    _, report = train_head(base, x, y, x_val=xv[:10], y_val=yv[:10])
    assert report.n_val == 10 + len(y) and report.temperature != 1.0  # calibrated on the 10


def test_the_offset_may_cost_the_known_breeds_only_against_the_head_with_new_rows_silent():
    """Cross-fitted heads answer the known breeds a little below the warm start before any offset;
    the offset is held to what it costs them itself, not to what adapting their rows did."""
    from ml.training import _choose_offset

    base = BreedHead(["a", "b"], np.eye(2, 4, dtype=np.float32), np.zeros(2, np.float32), "lite0")
    photos = np.concatenate([np.tile(np.eye(2, 4), (5, 1)), np.zeros((2, 4))])
    x = torch.as_tensor(photos, dtype=torch.float32)
    y = torch.as_tensor([0, 1] * 5 + [2, 2])  # 10 photos of known breeds, 2 of the new one
    logits = torch.zeros(12, 3)
    logits[torch.arange(10), y[:10]] = 1.0
    logits[0, 1] = 2.0  # the adapted known rows get one photo wrong that the warm start gets right
    logits[10:, 0] = 1.0
    logits[10:, 2] = 0.5  # the new row comes first on its photos only once raised by 0.5 or more
    offset = _choose_offset(logits, base, x, y, 2, TrainConfig())
    assert offset == 0.75  # the least that names the new breed; from +1.25 it takes known-breed photos
