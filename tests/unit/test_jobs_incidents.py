"""jobs.incidents, pure parts: what an alarm is told with (the shift's start, the photos since, new
breeds, whether the answers suffered) and the words admins read."""

from datetime import datetime, timedelta

import numpy as np

from bot import texts
from jobs.incidents import IncidentFacts, change_point, describe_shift
from jobs.windows import Window
from storage.vocabulary import DriftTest, IncidentKind

DAY1 = datetime(2026, 1, 5, 9, 0)


def _window(brightness, labels=None, shown=None, start_id=1, start=DAY1) -> Window:
    n = len(brightness)
    labels = labels or [None] * n
    shown = shown or [label for label in labels]
    return Window(
        photo_ids=list(range(start_id, start_id + n)),
        embeddings=np.zeros((n, 4), np.float32),
        dog_probability=np.ones(n),
        brightness=np.asarray(brightness, float),
        pixels=np.full(n, 1e6),
        shown_breed=shown,
        people_label=labels,
        received=[start + timedelta(hours=2 * i) for i in range(n)],
        answerable=None,
    )


def test_the_change_point_finds_where_the_photos_turned_dark():
    rng = np.random.default_rng(0)
    before = rng.normal(0.5, 0.05, 200)
    recent = np.concatenate([rng.normal(0.5, 0.05, 150), rng.normal(0.2, 0.05, 50)])
    assert abs(change_point(before, recent) - 150) <= 2
    # The whole recent window changed: the change is at its start.
    assert change_point(before, rng.normal(0.2, 0.05, 100)) == 0


def test_darker_photos_are_told_with_since_when_how_many_and_that_answers_held():
    rng = np.random.default_rng(1)
    reference = _window(
        rng.normal(0.5, 0.05, 200),
        labels=["pug"] * 200,
        shown=["pug"] * 186 + ["boxer"] * 14,  # 7 % changed by staff before the shift
        start=DAY1 - timedelta(days=30),
    )
    labels = ["pug"] * 200
    shown = ["pug"] * 197 + ["boxer"] * 3
    current = _window(
        np.concatenate([rng.normal(0.5, 0.05, 160), rng.normal(0.2, 0.05, 40)]), labels=labels, shown=shown
    )
    hashes = {i: f"h{i}" for i in current.photo_ids}
    facts = describe_shift(
        reference,
        current,
        [DriftTest.BRIGHTNESS, DriftTest.EMBEDDING_AUC],
        known={"pug", "boxer"},
        hashes=hashes,
    )
    assert facts.kind == IncidentKind.SHIFT
    assert 38 <= facts.photos <= 42 and facts.since == current.received[200 - facts.photos]
    assert facts.examples == ["h199", "h200"]  # the two latest of the changed photos
    assert facts.brightness[0] > 0.45 and facts.brightness[1] < 0.25
    assert (
        facts.answers.checked == facts.photos and facts.answers.changed == 3 and facts.answers.worse is False
    )
    text = texts.drift_incident(IncidentFacts.from_json(facts.to_json()), str)
    assert text.startswith(f"📉 Photos are darker since {facts.since:%a %d %b}: {facts.photos} photos")
    assert "as good as before" in text and "what the photos look like to the model" in text


def test_answers_that_suffered_are_told():
    reference = _window([0.5] * 100, labels=["pug"] * 100)
    shown = ["pug"] * 100 + ["boxer"] * 100  # the darker half is named wrong
    current = _window([0.5] * 100 + [0.2] * 100, labels=["pug"] * 200, shown=shown)
    facts = describe_shift(reference, current, [DriftTest.BRIGHTNESS], known={"pug", "boxer"}, hashes={})
    assert facts.answers.worse is True
    assert "The answers got worse" in texts.drift_incident(facts, str)


def test_new_breeds_are_told_as_new_breeds_not_as_a_statistical_alarm():
    labels = [None] * 150 + ["shiba_inu", None, "akita", "shiba_inu", "samoyed"] * 10
    reference = _window([0.5] * 200)
    current = _window([0.5] * 200, labels=labels, shown=[None] * 150 + ["basenji"] * 50)
    alarms = [DriftTest.EMBEDDING_AUC, DriftTest.BREED_DISTRIBUTION]
    facts = describe_shift(reference, current, alarms, known={"basenji", "pug"}, hashes={})
    assert facts.kind == IncidentKind.NEW_BREEDS
    assert facts.new_breeds == ["akita", "samoyed", "shiba_inu"] and facts.new_breed_photos == 40
    assert facts.since == current.received[150]
    text = texts.drift_incident(facts, lambda key: key.replace("_", " ").title())
    assert text.startswith(
        "🐕 3 breeds the model does not know arrived since Sat 17 Jan: Akita, Samoyed, Shiba Inu"
    )
    assert "Drift" not in text and "embedding" not in text
    # The same breeds arriving while the photos also turned dark: a shift, the breeds told beside it.
    dark = describe_shift(reference, current, [DriftTest.BRIGHTNESS], known={"basenji"}, hashes={})
    assert dark.kind == IncidentKind.SHIFT and "Also new to the model" in texts.drift_incident(dark, str)


def test_too_few_checked_answers_say_so():
    facts = describe_shift(
        _window([0.5] * 60), _window([0.2] * 60), [DriftTest.BRIGHTNESS], known=set(), hashes={}
    )
    assert facts.answers.worse is None
    assert "too few to tell" in texts.drift_incident(facts, str)


def test_the_day_a_change_started_is_the_shelters_day():
    from datetime import UTC
    from zoneinfo import ZoneInfo

    # 23:30 on Thursday 31 December in Los Angeles is already Friday 1 January in UTC.
    facts = IncidentFacts(
        kind=IncidentKind.SHIFT,
        changed=[DriftTest.BRIGHTNESS],
        since=datetime(2027, 1, 1, 7, 30),
        photos=40,
        brightness=(0.5, 0.2),
    )
    text = texts.drift_incident(facts, str, ZoneInfo("America/Los_Angeles"))
    assert "since Thu 31 Dec" in text and "1 Jan" not in text
    assert "since Fri 01 Jan" in texts.drift_incident(facts, str, UTC)  # naive: read as UTC
