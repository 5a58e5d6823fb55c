"""How right the catalog is, estimated from what people checked (issue 28): a number with its range.

The catalog holds two kinds of entries: those a person labelled (the bot asked, or a person checked
an answer), taken as right, and the model's answers accepted without asking, whose accuracy only
the spot checks tell without bias: auto-accepted answers people check at random, whatever the
model's confidence (checks people chose to make, of answers that looked wrong, would understate
it). The share right of the unchecked auto-accepted entries is estimated from the spot checks with
a Wilson score interval (sound at 20 or 60 checks and near 100 %, where the normal approximation
gives ranges above 100 %), and weighted by their share of the catalog.

Staff mistakes are not counted: nothing in the catalog tells them apart from right answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy.engine import Engine

from dogbot.core.intervals import wilson_interval


@dataclass(frozen=True)
class AccuracyEstimate:
    """The catalog's estimated share of right entries, and its range at ``level`` confidence."""

    value: float
    low: float
    high: float
    spot_checks: int
    level: float = 0.95

    def to_json(self) -> dict:
        return asdict(self)


def estimate_accuracy(
    *,
    labelled_by_people: int,
    auto_unchecked: int,
    spot_checks: int,
    spot_checks_right: int,
    level: float = 0.95,
    correction: float = 0.0,
) -> AccuracyEstimate | None:
    """The catalog's accuracy from its counts; None before the first spot check (no estimate).

    ``labelled_by_people``: entries a person labelled (asked, or spot-checked); ``auto_unchecked``:
    entries the model filed without asking that nobody checked; ``spot_checks``: auto-accepted
    answers checked at random, ``spot_checks_right`` of which the person confirmed. ``correction``:
    how much likelier right the model judged the answers it filed than the ones checked
    (:func:`estimate_from_catalog`), added to the checks' share and its range.
    """
    total = labelled_by_people + auto_unchecked
    if spot_checks <= 0 or total <= 0:
        return None
    share, low, high = (
        min(1.0, max(0.0, x + correction))
        for x in wilson_interval(spot_checks_right, spot_checks, level=level)
    )
    auto = auto_unchecked / total
    people = labelled_by_people / total
    return AccuracyEstimate(
        value=people + auto * share,
        low=people + auto * low,
        high=people + auto * high,
        spot_checks=spot_checks,
        level=level,
    )


def estimate_from_catalog(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    level: float = 0.95,
    min_answers: int = 40,
    reliabilities: dict | None = None,
) -> AccuracyEstimate | None:
    """:func:`estimate_accuracy` of the photos received in ``[since, until)``, from the database: what
    ``/status`` says and ``simulate --json`` reports as ``estimated_accuracy``. ``min_answers``: the
    rule's (``AskRules.min_answers``); ``reliabilities``: model version -> its fitted reliability (or
    None), filled here, for callers that estimate several periods (:func:`weekly_estimates`).

    Prediction-powered (Angelopoulos et al., 2023): a dozen spot checks alone leave the share right
    of the answers filed without asking 4-5 points either way, so what people answered about the
    model (its reliability per breed and pair, dogbot/core/asking.py) says how likely right each
    filed answer is, and the spot checks correct that by how far it missed on them:
    share = checks' share right + (mean reliability of the filed answers - mean of the checked
    ones). Unbiased whatever the reliability is worth, since the checks are a random sample of the
    filed answers; without a reliability for every model involved, the checks decide alone.
    """
    from dogbot.core.asking import answers_about, reliability_of
    from dogbot.core.labels import resolve_label
    from storage import asking_repository, repository
    from storage.db import session as open_session
    from storage.vocabulary import LabelSource

    with open_session(engine) as session:
        ids = repository.photo_ids(session=session, since=since, until=until)
        labels = repository.labels_by_photo(ids, session=session)
        checks = asking_repository.spot_checks(session=session, since=since, until=until)
        decided = [resolve_label(labels.get(photo_id, [])) for photo_id in ids]
        filed = [
            d.label.prediction_id for d in decided if d is not None and d.label.source == LabelSource.AUTO
        ]
        accepted = asking_repository.accepted_answers([i for i in filed if i is not None], session=session)
        versions = {row[0] for row in accepted} | {row[0] for _, row in checks}
        reliability = {} if reliabilities is None else reliabilities
        for version in versions - reliability.keys():
            reliability[version] = reliability_of(
                answers_about(version, session=session), min_answers=min_answers
            )
    auto = len(filed)
    people = sum(1 for d in decided if d is not None and d.label.source != LabelSource.AUTO)
    correction = 0.0
    if checks and accepted and all(reliability[version] for version in versions):

        def likely_right(row) -> float:
            version, is_dog, breed, confidence, second = row
            if not is_dog or breed is None:
                return confidence  # "not a dog": how sure the model was of it
            return reliability[version].probability(breed, confidence, second)

        filed_mean = sum(map(likely_right, accepted)) / len(accepted)
        checked_mean = sum(likely_right(row) for _, row in checks) / len(checks)
        correction = filed_mean - checked_mean
    return estimate_accuracy(
        labelled_by_people=people,
        auto_unchecked=auto,
        spot_checks=len(checks),
        spot_checks_right=sum(right for right, _ in checks),
        level=level,
        correction=correction,
    )


def weekly_estimates(
    engine: Engine, *, today: date, tz: tzinfo = UTC, weeks: int = 4, min_answers: int = 40
) -> list[tuple[date, AccuracyEstimate | None]]:
    """The estimate of each of the last ``weeks`` weeks (Monday to Sunday on the shelter's clock, the
    current one last), by the first day of the week: of the photos received that week. Each model's
    reliability is fitted once for all the weeks."""
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]

    def moment(day: date) -> datetime:
        return datetime.combine(day, time(), tz).astimezone(UTC)

    fitted: dict = {}
    return [
        (
            start,
            estimate_from_catalog(
                engine,
                since=moment(start),
                until=moment(start + timedelta(weeks=1)),
                min_answers=min_answers,
                reliabilities=fitted,
            ),
        )
        for start in starts
    ]
