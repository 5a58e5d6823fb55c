"""When to ask, from what the database holds (dogbot/core/asking.py, storage/asking_repository.py)."""

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dogbot.core.accuracy import estimate_from_catalog
from dogbot.core.asking import AskPolicy, AskRules
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import ModelVersion
from storage.repository import embedding_to_bytes
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import LabelSource, ModelStatus

NOW = datetime(2026, 3, 1, tzinfo=UTC)
RULES = AskRules(target_accuracy=0.95, spot_check_share=0.05, min_answers=40)
_serial = itertools.count(1)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _answer(
    engine,
    *,
    breed: str,
    confidence: float,
    second: str,
    said: str | None,
    model: str = "lite0-v0",
    auto: bool = False,
    spot_check: bool = False,
    source: str = LabelSource.STAFF,
) -> None:
    """One photo the model answered, and what a person said of it (None: nobody)."""
    with open_session(engine) as session:
        photo = Photo(sha256=f"{next(_serial):064x}", received_at=NOW, source="test")
        session.add(photo)
        session.flush()
        prediction = Prediction(
            photo_id=photo.id,
            model_version=model,
            created_at=NOW,
            is_dog=True,
            dog_probability=0.99,
            breed=breed,
            confidence=confidence,
            top=[{"breed": breed, "p": confidence}, {"breed": second, "p": 1 - confidence}],
            embedding=embedding_to_bytes(np.ones(4, np.float32)),
            auto_accepted=auto,
            spot_check=spot_check,
        )
        session.add(prediction)
        session.flush()
        if auto:
            session.add(
                Label(photo_id=photo.id, prediction_id=prediction.id, breed=breed, source=LabelSource.AUTO)
            )
        if said is not None:
            session.add(
                Label(photo_id=photo.id, prediction_id=prediction.id, breed=said, source=source, user_id=7)
            )
        session.commit()


def _policy(engine, model="lite0-v0", rules=RULES):
    return AskPolicy(engine, rules, model_version=lambda: model, clock=lambda: NOW + timedelta(days=1))


def _history(engine, *, dalmatians=30, staffordshires=20):
    """Dalmatians are right even at 75 %; Staffordshires named over the American one are not."""
    for _ in range(dalmatians):
        _answer(engine, breed="dalmatian", confidence=0.75, second="pointer", said="dalmatian")
    for _ in range(staffordshires):
        _answer(
            engine,
            breed="staffordshire_bullterrier",
            confidence=0.9,
            second="american_staffordshire_terrier",
            said="american_staffordshire_terrier",
        )


def test_before_enough_answers_the_fixed_confidence_decides(engine):
    _history(engine, dalmatians=10, staffordshires=5)
    policy = _policy(engine)
    assert policy.decision().mode == "fallback" and policy.decision().answers == 15
    assert policy.accepts("staffordshire_bullterrier", 0.9, "american_staffordshire_terrier", fallback=0.7)
    assert not policy.accepts("dalmatian", 0.65, "pointer", fallback=0.7)


def test_the_answers_people_gave_decide_per_breed_and_pair(engine):
    _history(engine)
    # Corrections nobody asked for, of answers accepted without asking, are left out: chosen because
    # they looked wrong, they would make Dalmatians look unreliable.
    for _ in range(30):
        _answer(engine, breed="dalmatian", confidence=0.95, second="pointer", said="beagle", auto=True)
    policy = _policy(engine)
    decision = policy.decision()
    assert decision.mode == "target" and decision.answers == 50
    assert policy.accepts("dalmatian", 0.75, "pointer", fallback=0.7)
    assert not policy.accepts(
        "staffordshire_bullterrier", 0.95, "american_staffordshire_terrier", fallback=0.7
    )
    # "Ask about everything" (a threshold above 1) still means it, whatever the answers say.
    assert not policy.accepts("dalmatian", 0.99, "pointer", fallback=1.01)
    # Another model's answers are not this one's: a newly promoted model starts from its own.
    assert _policy(engine, model="lite0-v1").decision().mode == "fallback"


def test_a_promoted_model_starts_from_its_judged_answers(engine):
    judged = [["dalmatian", 0.75, "pointer", True]] * 30 + [
        ["staffordshire_bullterrier", 0.9, "american_staffordshire_terrier", False]
    ] * 20
    with open_session(engine) as session:
        session.add(
            ModelVersion(
                version="lite0-v1",
                backbone="lite0",
                created_at=NOW,
                breed_keys=["dalmatian"],
                status=ModelStatus.PROMOTED,
                metrics={"judged_answers": judged},
            )
        )
        session.commit()
    policy = _policy(engine, model="lite0-v1")
    assert policy.decision().mode == "target"
    assert not policy.accepts(
        "staffordshire_bullterrier", 0.95, "american_staffordshire_terrier", fallback=0.7
    )


def test_spot_checks_below_the_target_make_the_bot_ask_more(engine):
    _history(engine)
    for right in [True] * 12 + [False] * 8:
        _answer(
            engine,
            breed="dalmatian",
            confidence=0.8,
            second="pointer",
            said="dalmatian" if right else "pointer",
            auto=True,
            spot_check=True,
        )
    policy = _policy(engine)
    decision = policy.decision()
    assert decision.mode == "strict" and decision.cut == RULES.target_accuracy
    # The catalog's estimate counts the same spot checks: 12 of 20 confirmed.
    estimate = estimate_from_catalog(engine)
    assert estimate is not None and estimate.spot_checks == 20


def test_the_spot_check_slice_is_random_but_fixed_per_photo(engine):
    policy = _policy(engine, rules=AskRules(target_accuracy=0.95, spot_check_share=0.2))
    picks = [policy.spot_check(f"{i:064x}", "lite0-v0") for i in range(2000)]
    assert 0.17 < sum(picks) / len(picks) < 0.23
    assert picks == [policy.spot_check(f"{i:064x}", "lite0-v0") for i in range(2000)]
    assert not any(_policy(engine, rules=AskRules(0.95, 0.0)).spot_check(f"{i:064x}", "x") for i in range(50))


def test_the_estimate_corrects_the_spot_checks_by_how_sure_the_model_was(engine):
    """Prediction-powered: checks that happened to land on the model's less sure answers are not
    taken as the share right of everything it filed."""
    _history(engine)
    for _ in range(20):  # unsure answers are often wrong: the surer, the likelier right
        _answer(engine, breed="beagle", confidence=0.3, second="harrier", said="harrier")
    for right in [True] * 8 + [False] * 2:  # checked: Dalmatians at 75 %
        said = "dalmatian" if right else "pointer"
        _answer(
            engine,
            breed="dalmatian",
            confidence=0.75,
            second="pointer",
            said=said,
            auto=True,
            spot_check=True,
        )
    for _ in range(30):  # filed, unchecked: Dalmatians at 99 %
        _answer(engine, breed="dalmatian", confidence=0.99, second="pointer", said=None, auto=True)
    estimate = estimate_from_catalog(engine)
    reliability = _policy(engine).decision().reliability
    filed = reliability.probability("dalmatian", 0.99, "pointer")
    checked = reliability.probability("dalmatian", 0.75, "pointer")
    people = 70 + 10  # answered questions and the checks; the 30 filed answers are the model's
    expected = (people + 30 * min(1.0, 0.8 + filed - checked)) / (people + 30)
    assert estimate.spot_checks == 10 and estimate.value == pytest.approx(expected)
    assert estimate.value > (people + 30 * 0.8) / (people + 30)  # more than the checks alone say
    assert estimate.low <= estimate.value <= estimate.high
