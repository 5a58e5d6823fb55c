"""dogbot.simulation_pace: the pace keys of the simulation's total, from plain records."""

from dogbot.simulation_pace import (
    DarkPhoto,
    NewBreedPhoto,
    dark_gap,
    new_breed_in_buttons,
    new_breed_learned_day,
)


def test_new_breed_in_buttons_counts_from_each_breeds_third_photo():
    photos = [
        NewBreedPhoto(10, "shiba", False, False),
        NewBreedPhoto(10, "shiba", False, False),
        NewBreedPhoto(11, "akita", False, True),  # an akita's first: not counted
        NewBreedPhoto(11, "shiba", False, True),  # counted, offered
        NewBreedPhoto(12, "shiba", True, False),  # counted, auto-accepted right
        NewBreedPhoto(12, "shiba", False, False),  # counted, missed
    ]
    assert new_breed_in_buttons(photos) == round(2 / 3, 4)
    assert new_breed_in_buttons(photos[:3]) is None


def test_new_breed_learned_day_is_the_first_day_a_serving_model_has_a_row_for_an_arrived_breed():
    arrivals = {"shiba": 10, "akita": 14}
    serving = [(9, {"beagle"}), (12, {"beagle"}), (13, {"beagle", "akita"}), (15, {"beagle", "akita"})]
    assert new_breed_learned_day(serving, arrivals) == 15  # akita's row on day 13 predates akitas
    assert new_breed_learned_day([(d, {"beagle"}) for d in range(1, 31)], arrivals) is None


def test_dark_gap_over_the_last_days_and_none_without_dark_photos():
    photos = [DarkPhoto(20, False, True)] * 4 + [DarkPhoto(27, True, True)] * 3 + [DarkPhoto(28, False, True)]
    assert dark_gap(photos, last_day=30) == 0.25  # days 26-30: 4 of 4 undarkened, 3 of 4 served
    assert dark_gap(photos, last_day=22, days=5) == 1.0
    assert dark_gap([], last_day=30) is None
