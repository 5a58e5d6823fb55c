"""Error analysis (/errors, dogbot/core/errors.py) on the real database code, SQLite and PostgreSQL:
people's answers say what the model gets wrong, and the rule in force says what the bot does now."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot import texts
from dogbot.core.asking import AskRules
from dogbot.core.errors import analyse_errors
from jobs.charts import errors_png
from storage.db import session as open_session
from storage.tables import Label, Photo, Prediction

VERSION = "lite0-v0"  # the session's model, as make_catalog serves it
_serial = itertools.count()


def answered(engine, breed, confidence, second, said, *, asked=True, days_ago=1) -> None:
    """A photo the model answered ``breed`` about, and a staff member's answer ``said``."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    with open_session(engine) as session:
        photo = Photo(sha256=f"{next(_serial):064x}", source="telegram", received_at=at)
        session.add(photo)
        session.flush()
        prediction = Prediction(
            photo_id=photo.id,
            model_version=VERSION,
            created_at=at,
            is_dog=True,
            dog_probability=0.99,
            breed=breed,
            confidence=confidence,
            top=[{"breed": breed, "p": confidence}, {"breed": second, "p": (1 - confidence) / 2}],
            embedding=b"\0" * 16,
            auto_accepted=not asked,
        )
        session.add(prediction)
        session.flush()
        session.add(
            Label(
                photo_id=photo.id,
                prediction_id=prediction.id,
                breed=said,
                source="staff",
                user_id=2002,
                created_at=at,
            )
        )
        session.commit()


def shelter(engine) -> None:
    """Dalmatians always right; huskies taken for malamutes 8 times in 24; one Chihuahua wrong."""
    for i in range(30):
        answered(engine, "dalmatian", 0.75 + i / 150, "great_dane", "dalmatian")
    for i in range(24):
        answered(
            engine,
            "siberian_husky",
            0.7 + i / 100,
            "malamute",
            "malamute" if i % 3 == 0 else "siberian_husky",
        )
    answered(engine, "chihuahua", 0.9, "toy_terrier", "toy_terrier", asked=False)  # a correction, unasked
    answered(engine, "boxer", 0.9, "bull_mastiff", "bull_mastiff", days_ago=120)  # too long ago


@pytest.fixture
def catalog(make_catalog, database_url):
    return make_catalog(
        database_url, ask_rules=AskRules(target_accuracy=0.95, spot_check_share=0.0, min_answers=40)
    )


def test_the_pairs_it_gets_wrong_most_and_what_the_bot_does_about_each(catalog, tmp_path) -> None:
    intake = catalog.intake
    shelter(intake.engine)
    analysis = analyse_errors(intake.engine, intake.asking, fallback_threshold=0.7, now=datetime.now(UTC))
    assert analysis.mode == "target" and (analysis.checked, analysis.wrong) == (55, 9)
    pairs = [(c.predicted, c.said, c.times) for c in analysis.confusions]
    assert pairs == [("siberian_husky", "malamute", 8), ("chihuahua", "toy_terrier", 1)]
    assert [(b.breed, b.wrong, b.checked) for b in analysis.breeds] == [
        ("siberian_husky", 8, 24),
        ("chihuahua", 1, 1),
    ]
    husky = analysis.confusions[0].accepts_from
    decided = intake.asking.decision()
    dalmatian = min(
        c
        for c in (0.5 + i / 1000 for i in range(500))
        if decided.reliability.probability("dalmatian", c, "great_dane") >= decided.cut
    )
    # A husky hesitating with a malamute needs more confidence than a Dalmatian, or is always asked.
    assert husky is None or husky > dalmatian + 0.05
    if husky is not None:
        assert intake.asking.accepts("siberian_husky", husky, "malamute", fallback=0.7)
        assert not intake.asking.accepts("siberian_husky", husky - 0.01, "malamute", fallback=0.7)

    words = texts.errors(analysis, lambda key: key.replace("_", " ").title())
    assert "people answered otherwise on 9 of 55 photos" in words
    assert "1. I said Siberian Husky, people said Malamute: 8 times. Now: I " in words
    assert "Breeds I get wrong most: Siberian Husky (8 of 24), Chihuahua (1 of 1)." in words
    chart = errors_png(pairs, days=analysis.days, name=lambda key: key.replace("_", " ").title())
    assert chart.startswith(b"\x89PNG")
    (tmp_path / "errors.png").write_bytes(chart)


def test_before_enough_answers_the_global_threshold_applies(catalog) -> None:
    intake = catalog.intake
    for i in range(6):
        answered(intake.engine, "siberian_husky", 0.8, "malamute", "malamute" if i < 3 else "siberian_husky")
    analysis = analyse_errors(intake.engine, intake.asking, fallback_threshold=0.7, now=datetime.now(UTC))
    assert analysis.mode == "fallback"
    assert [(c.said, c.times, c.accepts_from) for c in analysis.confusions] == [("malamute", 3, 0.7)]
    words = texts.errors(analysis, str)
    assert "Now: I ask when under 70 % sure." in words and "the same rule for now" in words


def test_nothing_answered_says_so(catalog) -> None:
    intake = catalog.intake
    analysis = analyse_errors(intake.engine, intake.asking, fallback_threshold=0.7, now=datetime.now(UTC))
    assert analysis.checked == 0 and "nothing to learn from yet" in texts.errors(analysis, str)
