"""ml.exemplars: nearest labelled photos of breeds the model cannot name become buttons and a veto."""

import dataclasses

import numpy as np
import pytest
from conftest import default_settings

from dogbot.app import exemplar_rules
from ml.exemplars import ExemplarIndex

DIM = 24
RULES = exemplar_rules(default_settings())  # the deployment's rules


@pytest.fixture
def world():
    """Like the backbone's pooled features: all positive, a large shared part, breeds in the rest."""
    rng = np.random.default_rng(1)
    shared = rng.uniform(4.0, 6.0, DIM)
    centres = {k: shared + rng.normal(0, 1.0, DIM) for k in ("beagle", "pug", "shiba", "akita")}

    def photos(breed, n):
        return np.abs(centres[breed] + 0.3 * rng.standard_normal((n, DIM))).astype(np.float32)

    return photos


def _index(photos):
    labelled = {"beagle": 6, "pug": 6, "shiba": 2, "akita": 1}
    x = np.concatenate([photos(b, n) for b, n in labelled.items()])
    y = [b for b, n in labelled.items() for _ in range(n)]
    stored = np.concatenate([x, photos("beagle", 20), photos("pug", 20)])  # the catalog's photos
    return ExemplarIndex.build(x, y, centre=stored.mean(axis=0))


def test_a_breed_named_once_is_offered_on_its_next_look_alike_and_stops_an_auto_accept(world):
    index = _index(world)
    advice = index.advise(world("akita", 1)[0], known={"beagle", "pug"}, shown=["beagle", "pug"], rules=RULES)
    assert advice.extra_buttons[0] == "akita" and len(advice.extra_buttons) <= 2
    assert set(advice.extra_buttons) <= {"akita", "shiba"}
    assert advice.veto and advice.nearest_new_breed == "akita" and advice.similarity >= 0.5


def test_a_photo_that_looks_like_known_breeds_is_left_alone(world):
    advice = _index(world).advise(world("beagle", 1)[0], known={"beagle", "pug"}, rules=RULES)
    assert advice.extra_buttons == () and not advice.veto and advice.nearest_new_breed is None


def test_a_model_that_names_the_breed_itself_is_not_vetoed_by_its_exemplars(world):
    advice = _index(world).advise(
        world("akita", 1)[0], known={"beagle", "pug"}, predicted="akita", rules=RULES
    )
    assert not advice.veto and advice.nearest_new_breed == "akita"


def test_once_the_model_has_a_row_for_the_breed_the_exemplars_stop_advising(world):
    advice = _index(world).advise(
        world("shiba", 1)[0], known={"beagle", "pug", "shiba", "akita"}, rules=RULES
    )
    assert advice.extra_buttons == () and not advice.veto


def test_buttons_already_shown_are_not_repeated_and_thresholds_hold(world):
    index = _index(world)
    photo = world("shiba", 1)[0]
    advice = index.advise(photo, known={"beagle", "pug"}, shown=["shiba"], rules=RULES)
    assert "shiba" not in advice.extra_buttons
    strict = index.advise(
        photo,
        known={"beagle", "pug"},
        rules=dataclasses.replace(RULES, button_similarity=1.01, veto_similarity=1.01),
    )
    assert strict.extra_buttons == () and not strict.veto and strict.nearest_new_breed == "shiba"


def test_centring_is_what_makes_neighbours_mean_something(world):
    index = _index(world)
    x = world("beagle", 3)
    raw = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert (raw @ raw.T).min() > 0.95  # raw cosines crowd near 1 ...
    centred = [s for _, s in index.nearest(world("akita", 1)[0], len(index))]
    assert centred[0] > 0.5 and centred[-1] < 0.0  # ... centred ones spread out
    assert centred == sorted(centred, reverse=True)


def test_an_empty_index_advises_nothing_and_grows_without_changing(world):
    empty = ExemplarIndex.build(np.zeros((0, DIM)), [], centre=np.full(DIM, 5.0))
    assert empty.advise(world("akita", 1)[0], known=set(), rules=RULES).extra_buttons == ()
    grown = empty.with_exemplars(world("akita", 2), ["akita", "akita"])
    assert len(empty) == 0 and len(grown) == 2
    assert grown.advise(world("akita", 1)[0], known=set(), rules=RULES).extra_buttons == ("akita",)
