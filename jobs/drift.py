"""Drift job: are the photos arriving now unlike the ones the serving model was trained on?

The reference window is the champion's training photos (a seeded sample of at most
``reference_max``), or, while the zero-shot model serves, the first ``window`` photos ever
received. The current window is the last ``window`` photos. Both are re-scored with the serving
head from their stored embeddings (no images needed), then compared on: the embeddings themselves
(a domain classifier's AUC), predicted breeds (chi-squared), breed confidence, brightness and image
size (Kolmogorov-Smirnov), and how often staff corrected the model (Fisher exact). The head's own
answers (breeds, confidence) are compared with the photos of its dataset it did not train on (the
validation split): on its training photos any head is over-confident. Thresholds come from
settings; which tests raise the alarm too; the report is stored with a chart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from jobs import charts, incidents
from jobs.incidents import NewNormal
from jobs.windows import Window
from ml import drift as stats
from ml.head import BreedHead
from ml.predictor import backbone_of, is_dog
from storage import dog_repository, repository
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.lifecycle_tables import DriftReport
from storage.vocabulary import NOT_A_DOG, PEOPLE, SKIP, DriftTest, Split

NEW_NORMAL = "new_normal"  # the reference kind after an admin accepted recent photos as normal


@dataclass(frozen=True)
class DriftThresholds:
    """Alarm levels (their defaults, measured on the dev photos, are in ``dogbot.settings``)."""

    auc: float  # domain classifier AUC above this (and significant) alarms
    # The chance that a check of two same-distribution windows alarms at all (family-wise): each
    # alarming test is held to p_value / their number (Bonferroni). Held to p_value each, five
    # tests checked daily alarmed on same-distribution photos about once a month (issue 11).
    p_value: float
    min_photos: int  # fewer photos in either window: no verdict
    # Tests that raise the alarm; the others are still computed, stored and drawn.
    alarm_tests: tuple[str, ...]
    min_labeled: int = 20  # fewer people-labeled photos: no correction-rate verdict

    @property
    def per_test_p_value(self) -> float:
        """The level each test is held to, so that any of them alarming stays below ``p_value``."""
        return self.p_value / max(len(self.alarm_tests), 1)


@dataclass
class DriftResult:
    drift: bool
    tests: list[dict]
    reference_n: int
    current_n: int
    reference: str  # training | first_window | new_normal
    model_version: str
    report_id: int | None = None
    chart: str | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``dogbot drift --json`` contract: drift, tests, reference_n, current_n (+ details)."""
        return asdict(self)


def check_drift(
    engine: Engine,
    *,
    head: BreedHead,
    model_version: str,
    now: datetime,
    window: int,
    reference_max: int,
    thresholds: DriftThresholds,
    dog_threshold: float,
    chart_dir: Path | None = None,
    trigger: str = "schedule",
    seed: int = 0,
    name: Callable[[str], str] = str,
    words: Callable[[], charts.ChartWords] = charts.ChartWords,
) -> DriftResult:
    """Compare the last ``window`` photos with the reference; store and return the report.

    ``words()`` gives the chart's words, read when it is drawn (in the language of whoever asked)."""
    with open_session(engine) as session:
        normal = incidents.new_normal(session=session)
        reference_ids, held_out_ids, reference_kind = _reference_ids(
            model_version, window, reference_max, seed, session, normal
        )
        # Against a new normal, only photos received since it was set: a window reaching further
        # back mixes the old normal with the new one and alarms at the shift already told.
        since = normal.set_at if normal is not None else None
        current_ids = repo.recent_photo_ids(window, session=session, until=now, since=since)
    recent = set(current_ids)
    if reference_kind != NEW_NORMAL:
        # Photos accepted as the new normal stay in the reference while they are recent too: the
        # admin said they are what normal looks like, so comparing them with themselves is right.
        reference_ids = [i for i in reference_ids if i not in recent]
    current = _load(engine, current_ids, head.backbone)
    reference = _load(engine, reference_ids, head.backbone)
    held_out = None
    if held_out_ids is not None:
        held_out = _load(engine, [i for i in held_out_ids if i not in recent], head.backbone)
    result = DriftResult(False, [], len(reference), len(current), reference_kind, model_version)
    with open_session(engine) as session:
        # The seed's own example of drift is puppies arriving: the age groups staff gave, told beside
        # the tests (a share of a few dogs is not a test; people read it).
        result.extra["age_groups"] = {
            "current": dog_repository.age_groups_of_photos(current.photo_ids, session=session),
            "reference": dog_repository.age_groups_of_photos(reference.photo_ids, session=session),
        }
    result.extra["min_photos"] = thresholds.min_photos  # what "not enough photos" means, for people
    if len(reference) < thresholds.min_photos or len(current) < thresholds.min_photos:
        result.reason = (
            f"not enough photos to compare ({len(reference)} reference, {len(current)} recent; "
            f"need {thresholds.min_photos} each)"
        )
    else:
        tests, pictures = compare(
            reference,
            current,
            head=head,
            thresholds=thresholds,
            dog_threshold=dog_threshold,
            seed=seed,
            held_out=held_out,
        )
        result.tests = [t.to_json() for t in tests]
        result.drift = any(t.alarm for t in tests)
        alarms = [t.name for t in tests if t.alarm]
        result.reason = f"drift in {', '.join(alarms)}" if alarms else "no drift"
        if result.drift:
            with open_session(engine) as session:
                hashes = {
                    i: p.sha256 for i, p in repo.photos_by_id(current.photo_ids, session=session).items()
                }
            facts = incidents.describe_shift(
                reference, current, alarms, known=set(head.breed_keys), hashes=hashes
            )
            result.extra["facts"] = facts.to_json()
        if chart_dir is not None:
            path = Path(chart_dir) / f"drift-{now:%Y%m%d-%H%M%S}.png"
            said = words()
            verdict = said.drift_no if result.drift else said.drift_yes
            before = said.before_training if reference_kind == "training" else said.before_first
            result.chart = str(
                charts.drift_png(
                    path,
                    title=said.drift_title.format(n=len(current), before=before, verdict=verdict),
                    tests=result.tests,
                    name=name,
                    before_label=before,
                    words=said,
                    **pictures,
                )
            )
    with open_session(engine) as session:
        row = DriftReport(
            created_at=now,
            drift=result.drift,
            model_version=model_version,
            reference=reference_kind,
            reference_n=len(reference),
            current_n=len(current),
            current_from=current.received[0] if len(current) else None,
            current_to=current.received[-1] if len(current) else None,
            tests=result.tests,
            chart=result.chart,
            trigger=trigger,
        )
        session.add(row)
        session.commit()
        result.report_id = row.id
    return result


def compare(
    reference: Window,
    current: Window,
    *,
    head: BreedHead,
    thresholds: DriftThresholds,
    dog_threshold: float,
    seed: int = 0,
    held_out: Window | None = None,
) -> tuple[list[stats.DriftTest], dict]:
    """The drift tests on two windows (pure: no database), and the arrays the chart draws.

    ``held_out``: reference photos the serving head was not trained on (its dataset's validation
    split). The tests of the head's own answers (confidence, predicted breeds) compare against
    those: a head is more confident on its training photos than on any new ones, so comparing
    with them would alarm after every retrain (measured in the simulation). None: the reference
    was never trained on (the first window) and serves for every test.
    """
    p = thresholds.per_test_p_value
    answers_reference = reference if held_out is None else held_out
    ref_breed, ref_conf = _rescore(head, answers_reference, dog_threshold)
    cur_breed, cur_conf = _rescore(head, current, dog_threshold)
    if len(answers_reference) >= thresholds.min_photos:
        answer_tests = [
            stats.category_test(DriftTest.BREED_DISTRIBUTION, ref_breed, cur_breed, p_threshold=p),
            stats.ks_test(DriftTest.CONFIDENCE, ref_conf, cur_conf, p_threshold=p, what="breed confidence"),
        ]
    else:
        few = (
            f"only {len(answers_reference)} reference photos the model was not trained on "
            f"(need {thresholds.min_photos})"
        )
        answer_tests = [
            stats.DriftTest(name, None, None, p, False, few)
            for name in (DriftTest.BREED_DISTRIBUTION, DriftTest.CONFIDENCE)
        ]
    tests = [
        stats.embedding_test(
            DriftTest.EMBEDDING_AUC,
            reference.embeddings,
            current.embeddings,
            auc_threshold=thresholds.auc,
            p_threshold=p,
            seed=seed,
        ),
        *answer_tests,
        stats.ks_test(
            DriftTest.BRIGHTNESS, reference.brightness, current.brightness, p_threshold=p, what="brightness"
        ),
        stats.ks_test(
            DriftTest.SIZE, reference.pixels / 1e6, current.pixels / 1e6, p_threshold=p, what="megapixels"
        ),
        _correction_test(reference, current, thresholds, known=set(head.breed_keys)),
    ]
    tests = [
        replace(test, alarm=False, detail=test.detail + " (reported, not alarmed)")
        if test.alarm and test.name not in thresholds.alarm_tests
        else test
        for test in tests
    ]
    keys = head.breed_keys

    def shares(classes: np.ndarray) -> dict[str, float]:
        counts = Counter("not a dog" if c < 0 else keys[c] for c in classes)
        return {k: n / max(len(classes), 1) for k, n in counts.items()}

    breed_shares = (shares(ref_breed), shares(cur_breed))
    tests = [
        replace(test, facts={**test.facts, **_biggest_move(*breed_shares)})
        if test.name == DriftTest.BREED_DISTRIBUTION and test.statistic is not None
        else test
        for test in tests
    ]
    pictures = {
        "brightness": (reference.brightness, current.brightness),
        "confidence": (ref_conf, cur_conf),
        "breeds": breed_shares,
    }
    return tests, pictures


def _biggest_move(before: dict[str, float], now: dict[str, float]) -> dict:
    """The predicted breed whose share of photos changed most (key "not a dog" for non-dogs)."""
    keys = set(before) | set(now)
    if not keys:
        return {}
    moved = max(sorted(keys), key=lambda k: abs(now.get(k, 0.0) - before.get(k, 0.0)))
    return {"breed": moved, "before": before.get(moved, 0.0), "now": now.get(moved, 0.0)}


def _rescore(head: BreedHead, window: Window, dog_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(window):  # no photos (e.g. every new-normal photo is recent): nothing to score
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    probabilities = head.probabilities(window.embeddings)
    dog = is_dog(window.dog_probability, dog_threshold)
    breed = np.where(dog, probabilities.argmax(axis=1), -1)
    return breed, probabilities.max(axis=1)[dog]


def _correction_test(
    reference: Window, current: Window, thresholds: DriftThresholds, *, known: set[str]
) -> stats.DriftTest:
    """Has the share of the model's answers that staff corrected gone up?

    Only labels the answering model could have given count (its breeds, or not a dog): a breed it
    had no row for is not the model getting worse but a new breed arriving, which the retrain job
    learns from (those labels count towards its trigger) and this test reports beside the rate.
    Judged per photo against the model that answered it, so photos labelled before a retrain count
    the same way in both windows.
    """
    countable = known | {NOT_A_DOG}

    def counts(window: Window) -> tuple[int, int, int]:
        answerable = window.answerable or [None] * len(window)
        scored, unknown = [], 0
        for shown, label, can in zip(window.shown_breed, window.people_label, answerable, strict=True):
            if label is None:
                continue
            if can is None:  # the answering model is not registered: judge by the serving head
                can = label in countable
            if can:
                scored.append(shown != label)
            else:
                unknown += 1
        return sum(scored), len(scored), unknown

    ref_hits, ref_n, _ = counts(reference)
    cur_hits, cur_n, cur_unknown = counts(current)
    test = stats.rate_test(
        DriftTest.CORRECTION_RATE,
        ref_hits,
        ref_n,
        cur_hits,
        cur_n,
        p_threshold=thresholds.per_test_p_value,
        min_n=thresholds.min_labeled,
        what="staff corrected the model",
    )
    if cur_unknown:
        note = f"; {cur_unknown} recent labels name breeds the model that answered did not know"
        test = replace(test, detail=test.detail + note)
    return test


def _reference_ids(
    model_version: str, window: int, reference_max: int, seed: int, session, normal: NewNormal | None
) -> tuple[list[int], list[int] | None, str]:
    """Reference photo ids, those among them the serving head never trained on (None: all), its kind.

    Once an incident closed (an admin's "Expected", or a promotion of a model that learned the
    shift: ``jobs.incidents``), its new normal (``normal``, the photos since the change) is the
    reference until the next one closes.
    """
    model = repo.model_version(model_version, session=session)
    if normal is not None:
        accepted = normal.photo_ids
        held_out = None
        if model is not None and model.dataset_version is not None:
            trained = {
                item.photo_id
                for item in repo.dataset_items(model.dataset_version, session=session, split=Split.TRAIN)
            }
            held_out = [i for i in accepted if i not in trained]
        return accepted, held_out, NEW_NORMAL
    if model is not None and model.dataset_version is not None:
        rng = np.random.default_rng(seed)

        def sample(split: str) -> list[int]:
            items = repo.dataset_items(model.dataset_version, session=session, split=split)
            ids = sorted(item.photo_id for item in items)
            if len(ids) > reference_max:
                ids = sorted(rng.choice(ids, reference_max, replace=False).tolist())
            return ids

        return sample(Split.TRAIN), sample(Split.VALIDATION), "training"
    return repo.first_photo_ids(window, session=session), None, "first_window"


def _load(engine: Engine, photo_ids: list[int], backbone: str) -> Window:
    """The photos' latest answers by ``backbone``'s models (another backbone's embeddings differ)."""
    with open_session(engine) as session:
        photos = repo.photos_by_id(photo_ids, session=session)
        predictions = repository.latest_predictions(photo_ids, session=session)
        labels = repository.labels_by_photo(photo_ids, session=session)
        shown = repo.predictions_by_id(
            [label.prediction_id for group in labels.values() for label in group if label.source in PEOPLE],
            session=session,
        )
        breeds_of = _breeds_of_models(
            {p.model_version for p in shown.values()} | {p.model_version for p in predictions.values()},
            session,
        )
    kept = [
        i for i in photo_ids if i in predictions and backbone_of(predictions[i].model_version) == backbone
    ]
    dim = len(predictions[kept[0]].embedding) // 4 if kept else 0
    shown_breed, people_label, answerable = [], [], []
    for photo_id in kept:
        people = [
            label for label in labels.get(photo_id, []) if label.source in PEOPLE and label.breed != SKIP
        ]
        if people:
            last = people[-1]
            seen = (shown.get(last.prediction_id) if last.prediction_id else None) or predictions[photo_id]
            shown_breed.append(seen.breed or NOT_A_DOG)
            people_label.append(last.breed)
            breeds = breeds_of.get(seen.model_version)
            answerable.append(None if breeds is None else last.breed in breeds or last.breed == NOT_A_DOG)
        else:
            shown_breed.append(None)
            people_label.append(None)
            answerable.append(None)
    return Window(
        photo_ids=kept,
        embeddings=np.stack([repository.embedding_from_bytes(predictions[i].embedding) for i in kept]).astype(
            np.float32
        )
        if kept
        else np.zeros((0, dim), np.float32),
        dog_probability=np.array([predictions[i].dog_probability for i in kept], float),
        brightness=np.array([photos[i].brightness for i in kept], float),
        pixels=np.array([photos[i].width * photos[i].height for i in kept], float),
        shown_breed=shown_breed,
        people_label=people_label,
        received=[photos[i].received_at for i in kept],
        answerable=answerable,
    )


def _breeds_of_models(versions: set[str], session) -> dict[str, set[str]]:
    """The breeds each registered model version has a row for (unregistered versions are left out)."""
    rows = [repo.model_version(version, session=session) for version in sorted(versions)]
    return {row.version: set(row.breed_keys) for row in rows if row is not None and row.breed_keys}
