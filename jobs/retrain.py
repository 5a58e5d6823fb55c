"""Retrain job: fold, train a new breed head on stored embeddings, judge it, promote or reject.

Fast path only: the backbone stays fixed, so training reads the embeddings stored with each
prediction and takes seconds on a CPU (``ml.training``). The candidate is judged from every
labelled photo there is (``ml.judging``: cross-validation, candidate and champion compared photo by
photo, noise accounted for), not from a validation split that a shelter's few labels a day take
weeks to fill; each verdict says why in one sentence. The candidate is written atomically and
registered before the decision is applied. A worker killed at any point leaves the champion
serving: the lease expires, the half-done candidate is marked rejected by the next run, and that
run trains again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from jobs import charts, registry
from jobs.fold import NOT_BREEDS, fold, split_of
from jobs.lock import TRAIN_LOCK, held
from jobs.scores import ModelScores, RetrainMetrics, SplitScores
from ml.head import BreedHead
from ml.judging import JudgeRules, LabelledPhotos, hits, judge
from ml.predictor import backbone_of
from ml.training import HeadMetrics, TrainConfig, TrainReport, evaluate_head, train_head
from storage import dog_repository, repository
from storage import lifecycle_repository as repo
from storage.blobs import write_bytes_atomically
from storage.db import session as open_session
from storage.lifecycle_tables import DatasetVersion, ModelVersion
from storage.vocabulary import (
    HUMAN_SOURCES,
    PEOPLE,
    SPECIAL_LABELS,
    AgeGroup,
    LabelSource,
    ModelStatus,
    Split,
)

log = logging.getLogger(__name__)


class FullRetrainUnavailable(NotImplementedError):
    """``--full`` (fine-tuning backbone blocks) is not built yet."""


# RetrainResult.reason when nothing was trained; worded for people by dogbot/lifecycle_text.py.
NO_LABELS = "no labels yet"
NO_BREED_PHOTOS = "no labeled breed photos to train on"
NOTHING_NEW = "no new labels since the last retrain"
INTERRUPTED = "interrupted before it was judged"


@dataclass(frozen=True)
class RetrainStep:
    """Where a retrain is (for ``progress``): the layer that speaks words it, in the reader's language."""

    step: str  # "fold", "judge", "train" or "save"
    photos: int = 0  # labelled photos judged or trained on
    golden: int = 0  # golden photos judged on


@dataclass
class RetrainResult:
    version: str | None  # the candidate (None: nothing trained)
    promoted: bool
    reason: str
    champion: str  # serving after this run
    previous_champion: str
    dataset_version: int | None
    trigger: str
    metrics: RetrainMetrics | None = None  # None: nothing was trained
    report: str | None = None  # error-analysis PNG path
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "metrics": self.metrics.to_json() if self.metrics else {}}


@dataclass(frozen=True)
class Labeled:
    x: np.ndarray
    y: list[str]
    age_groups: list[str] | None = None  # per photo, its dog's age group (for the error analysis)

    def __len__(self) -> int:
        return len(self.y)


def retrain(
    engine: Engine,
    *,
    base_head: BreedHead,
    model_dir: Path,
    now: datetime,
    trigger: str = "manual",
    actor: str | None = None,
    gates: JudgeRules,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen dataclass: a safe default)
    val_share: float,
    golden_size: int,
    use_auto_labels: bool,
    lock_ttl: timedelta,
    owner: str | None = None,
    breed_name: Callable[[str], str] = str,
    progress: Callable[[RetrainStep], None] = lambda step: None,
    full: bool = False,
    words: Callable[[], charts.ChartWords] = charts.ChartWords,
) -> RetrainResult:
    """Run one retrain end to end under the training lease (raises ``LockBusy`` if it is taken)."""
    if full:
        raise FullRetrainUnavailable(
            "--full (fine-tuning the last backbone blocks) is not available yet; the fast head retrain is"
        )
    import time

    started = time.perf_counter()
    model_dir = Path(model_dir)
    backbone = base_head.backbone
    with held(engine, TRAIN_LOCK, ttl=lock_ttl, owner=owner, clock=lambda: now):
        previous = registry.ensure_base(engine, backbone=backbone, breed_keys=base_head.breed_keys, now=now)
        _reject_interrupted(engine)
        progress(RetrainStep("fold"))
        folded = fold(engine, now=now, val_share=val_share, golden_size=golden_size, trigger=trigger)
        if folded.version is None:
            return RetrainResult(None, False, NO_LABELS, previous, previous, None, trigger)
        if not folded.created and _trained_on(engine, folded.version, backbone):
            # The same photos and labels make the same model: say so rather than train it again.
            return RetrainResult(None, False, NOTHING_NEW, previous, previous, folded.version, trigger)
        champion_head = registry.load_head(engine, previous, model_dir=model_dir, base_head=lambda: base_head)
        evidence = _gather(engine, folded.version, backbone, use_auto_labels, champion=previous)
        if not len(evidence.pool):
            return RetrainResult(
                None,
                False,
                NO_BREED_PHOTOS,
                previous,
                previous,
                folded.version,
                trigger,
            )
        val, golden = evidence.validation, evidence.golden_scored

        def fit(photos: LabelledPhotos) -> tuple[BreedHead, TrainReport]:
            return _fit(base_head, photos, evidence.auto_labelled, val_share=val_share, config=config)

        log.info(
            "judging: cross-validating on %d labelled photos and %d golden ones (dataset v%d)",
            len(evidence.pool),
            len(evidence.golden),
            folded.version,
        )
        progress(RetrainStep("judge", photos=len(evidence.pool), golden=len(evidence.golden)))
        verdict = judge(evidence.pool, evidence.golden, champion_head, lambda p: fit(p)[0], gates)
        progress(RetrainStep("train", photos=len(evidence.pool)))
        head, report = fit(evidence.pool)
        new_keys = [k for k in head.breed_keys if k not in set(base_head.breed_keys)]
        metrics = RetrainMetrics(
            train=report,
            candidate=_scores(head, val, golden, base_head.breed_keys),
            champion=_scores(champion_head, val, golden, base_head.breed_keys),
            champion_version=previous,
            verdict=verdict,
        )
        promoted, reason = verdict.promote, verdict.reason

        with open_session(engine) as session:
            version = registry.next_version(session, backbone)
            head.metadata = {**head.metadata, "version": version, "dataset_version": folded.version}
            sha256 = head.save(model_dir / f"{version}.safetensors", write=write_bytes_atomically)
            session.add(
                ModelVersion(
                    version=version,
                    backbone=backbone,
                    created_at=now,
                    artifact=f"{version}.safetensors",
                    sha256=sha256,
                    dataset_version=folded.version,
                    breed_keys=list(head.breed_keys),
                    # The fold candidates' answers beside the verdict: where a promoted model's
                    # rule for asking starts (dogbot/core/asking.py).
                    metrics={
                        **metrics.to_json(),
                        "judged_answers": [list(a) for a in verdict.judged_answers],
                    },
                    trigger=trigger,
                    actor=actor,
                    status=ModelStatus.CANDIDATE,
                )
            )
            # in the database too, for every replica
            registry.store_artifact(session, version, model_dir / f"{version}.safetensors")
            session.commit()

        chart = _error_chart(
            head,
            champion_head,
            val,
            golden,
            model_dir / f"{version}.errors.png",
            name=breed_name,
            new_keys=new_keys,
            promoted=promoted,
            words=words(),
        )
        with open_session(engine) as session:
            row = repo.model_version(version, session=session)
            row.report = chart.name
            session.add(row)
            session.commit()

        if promoted:
            registry.promote(engine, version, reason=reason, actor=actor, now=now)
        else:
            registry.reject(engine, version, reason=reason)
        log.info("%s %s", "promoted" if promoted else "rejected", version)
        return RetrainResult(
            version=version,
            promoted=promoted,
            reason=reason,
            champion=version if promoted else previous,
            previous_champion=previous,
            dataset_version=folded.version,
            trigger=trigger,
            metrics=metrics,
            report=str(chart),
            seconds=round(time.perf_counter() - started, 2),
        )


def _trained_on(engine: Engine, dataset_version: int, backbone: str) -> bool:
    """Whether a judged model of ``backbone`` was trained on exactly this dataset version."""
    with open_session(engine) as session:
        rows = repo.model_versions(session=session)
    return any(
        row.dataset_version == dataset_version
        and row.backbone == backbone
        and row.status != ModelStatus.CANDIDATE
        and row.reason != INTERRUPTED
        for row in rows
    )


def retrain_trigger(engine: Engine, *, min_new_labels: int, new_breed_photos: int = 0) -> str | None:
    """Why the scheduled retrain should run now ("new_labels", "new_breed", "drift"), or None.

    "new_breed": a breed the champion cannot name has ``new_breed_photos`` labelled photos (the
    fewest from which the judge can see it learned: two to train on, one held out), and one of them
    came since the last retrain. A shelter labels a few photos a day, so waiting for
    ``min_new_labels`` would leave such a breed unlearned for a week; the judge needs no more.
    """
    with open_session(engine) as session:
        latest = repo.latest_trained_model(session=session)
        after = 0
        if latest is not None:
            dataset = session.get(DatasetVersion, latest.dataset_version)
            after = dataset.last_label_id if dataset else 0
        new_labels = repo.count_answers_after(after, HUMAN_SOURCES, session=session)
        if new_labels >= min_new_labels:
            return "new_labels"
        if new_breed_photos > 0:
            champion = repo.model_version(repo.alias_target(session=session) or "", session=session)
            known = set(champion.breed_keys) if champion is not None else set()
            for breed, (photos, newest) in repo.photos_named_by_breed(HUMAN_SOURCES, session=session).items():
                if (
                    breed not in known
                    and breed not in SPECIAL_LABELS
                    and photos >= new_breed_photos
                    and newest > after
                ):
                    return "new_breed"
        alarm = next(iter(repo.drift_reports(session=session, limit=1)), None)
        if alarm is not None and alarm.drift and (latest is None or alarm.created_at > latest.created_at):
            return "drift"
    return None


def _reject_interrupted(engine: Engine) -> None:
    """Candidates left undecided by a killed run: we hold the lease, so nobody else is judging them."""
    with open_session(engine) as session:
        for row in repo.model_versions(session=session, status=ModelStatus.CANDIDATE):
            row.status, row.reason = ModelStatus.REJECTED, INTERRUPTED
            session.add(row)
        session.commit()


@dataclass(frozen=True)
class Evidence:
    """What a retrain learns from and is judged on, from one dataset version."""

    pool: LabelledPhotos  # every labelled breed photo but the golden ones: trained on (by folds)
    golden: LabelledPhotos  # never trained on: scored by every fold's candidate
    auto_labelled: frozenset[str]  # split keys (by dog) with a label that is a model's own (never calibrates)
    validation: Labeled  # people-labelled validation-split photos (the reported scores)
    golden_scored: Labeled


def _gather(engine: Engine, version: int, backbone: str, use_auto_labels: bool, *, champion: str) -> Evidence:
    """The labelled embeddings (non-breeds left out) and what the judge must know about each photo.

    Changed: photos received since the first drift alarm after the champion was made (from the
    start of the window that alarmed); breeds the champion has no row for the judge sees itself.
    Audited: a person's label on a photo the model had auto-accepted (the unbiased slice).
    Train only: auto-accepted labels, and photos in the champion's own dataset version.
    """
    with open_session(engine) as session:
        items = repo.dataset_items(version, session=session)
        items = [item for item in items if item.label not in NOT_BREEDS]
        if not use_auto_labels:
            items = [item for item in items if item.source != LabelSource.AUTO]
        predictions = repo.predictions_by_id([item.prediction_id for item in items], session=session)
        golden_items = repo.golden_items(session=session)
        golden_predictions = repository.latest_predictions(
            [g.photo_id for g in golden_items], session=session
        )
        photo_ids = [item.photo_id for item in items] + [g.photo_id for g in golden_items]
        photos = repo.photos_by_id(photo_ids, session=session)
        # The dataset's split and the judge's folds go by dog: one animal's photos stay together.
        split_key = dog_repository.split_keys(photo_ids, session=session)
        age_group = dog_repository.age_group_of_photos(photo_ids, session=session)
        champion_row = repo.model_version(champion, session=session)
        champion_photos: set[int] = set()
        shift_from = None
        if champion_row is not None and champion_row.dataset_version is not None:
            champion_photos = {
                item.photo_id for item in repo.dataset_items(champion_row.dataset_version, session=session)
            }
        made = champion_row.created_at if champion_row is not None else None
        for report in repo.drift_reports(session=session, limit=50):  # newest first
            if report.drift and (made is None or _naive(report.created_at) > _naive(made)):
                shift_from = report.current_from or report.created_at

    def embedding(prediction) -> np.ndarray | None:
        if prediction is None or backbone_of(prediction.model_version) != backbone:
            return None  # embedded by another backbone: not comparable
        return repository.embedding_from_bytes(prediction.embedding)

    def changed(photo_id: int) -> bool:
        photo = photos.get(photo_id)
        return (
            shift_from is not None and photo is not None and _naive(photo.received_at) >= _naive(shift_from)
        )

    golden_ids = {g.photo_id for g in golden_items}
    rows = []  # (vector, label, sha256, changed, audited, train_only)
    for item in items:
        prediction = predictions.get(item.prediction_id)
        vector = embedding(prediction)
        if vector is None or item.photo_id in golden_ids:
            continue
        people = item.source in PEOPLE
        rows.append(
            (
                vector,
                item.label,
                split_key[item.photo_id],
                changed(item.photo_id),
                people and bool(prediction.auto_accepted),
                item.source == LabelSource.AUTO or item.photo_id in champion_photos,
            )
        )
    golden_rows = []
    for g in golden_items:
        vector = embedding(golden_predictions.get(g.photo_id))
        if vector is not None:
            golden_rows.append((vector, g.label, split_key[g.photo_id], changed(g.photo_id)))

    def photos_of(table, columns: int) -> LabelledPhotos:
        dim = table[0][0].shape[0] if table else 0
        return LabelledPhotos.of(
            np.stack([r[0] for r in table]) if table else np.zeros((0, dim), np.float32),
            [r[1] for r in table],
            [r[2] for r in table],
            changed=[r[3] for r in table],
            audited=[r[4] for r in table] if columns > 4 else None,
            train_only=[r[5] for r in table] if columns > 5 else None,
        )

    def collect(triples) -> Labeled:
        xs, ys, ages = [], [], []
        for prediction, label, photo_id in triples:
            vector = embedding(prediction)
            if vector is not None:
                xs.append(vector)
                ys.append(label)
                ages.append(age_group.get(photo_id, AgeGroup.UNKNOWN))
        x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, 0), np.float32)
        return Labeled(x, ys, ages)

    # Reported on people's labels only: auto-accepted labels are the model grading itself.
    validation = collect(
        (predictions.get(i.prediction_id), i.label, i.photo_id)
        for i in items
        if i.split == Split.VALIDATION and i.source != LabelSource.AUTO
    )
    return Evidence(
        pool=photos_of(rows, 6),
        golden=photos_of(golden_rows, 4),
        auto_labelled=frozenset(
            split_key[i.photo_id] for i in items if i.source == LabelSource.AUTO and i.photo_id in split_key
        ),
        validation=validation,
        golden_scored=collect(
            (golden_predictions.get(g.photo_id), g.label, g.photo_id) for g in golden_items
        ),
    )


def _naive(moment: datetime) -> datetime:
    """SQLite returns naive datetimes, PostgreSQL aware ones: compare them as UTC wall time."""
    return (
        moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    )


def _fit(
    base: BreedHead,
    photos: LabelledPhotos,
    auto_labelled: frozenset[str],
    *,
    val_share: float,
    config: TrainConfig,
) -> tuple[BreedHead, TrainReport]:
    """Train on the photos' train split, calibrate on the people-labelled ones of their validation split.

    The split is the dataset's own (by photo hash, ``jobs.fold.split_of``), so the final candidate is
    trained exactly as before this judge, and each fold's candidate the same way on fewer photos.
    Auto-accepted photos of the validation split are left out, as they always were.
    """
    split = np.array([split_of(sha, val_share) == Split.VALIDATION for sha in photos.groups], dtype=bool)
    auto = np.array([sha in auto_labelled for sha in photos.groups], dtype=bool)
    train, val = np.flatnonzero(~split), np.flatnonzero(split & ~auto)
    return train_head(
        base,
        photos.x[train],
        [photos.y[i] for i in train],
        x_val=photos.x[val] if len(val) else None,
        y_val=[photos.y[i] for i in val] if len(val) else None,
        groups=[photos.groups[i] for i in train],
        labelled_by_people=~auto[train],
        config=config,
    )


def _scores(head: BreedHead, val: Labeled, golden: Labeled, base_keys: Sequence[str]) -> ModelScores:
    out = {}
    base = set(base_keys)
    for name, data in (("validation", val), ("golden", golden)):
        metrics = (
            evaluate_head(head, data.x, data.y) if len(data) else HeadMetrics(0, None, None, {}, [], None)
        )
        known, n_known = metrics.subset_top1([k for k in metrics.per_breed if k in base])
        new, n_new = metrics.subset_top1([k for k in metrics.per_breed if k not in base])
        out[name] = SplitScores(
            n=metrics.n,
            top1=metrics.top1,
            top3=metrics.top3,
            nll=metrics.nll,
            top1_imagenet_breeds=known,
            n_imagenet_breeds=n_known,
            top1_new_breeds=new,
            n_new_breeds=n_new,
            per_breed=metrics.per_breed,
            confusions=metrics.confusions,
            per_age_group=_by_age_group(head, data),
        )
    return ModelScores(**out)


# An age group's top-1 is reported from this many labelled photos of it: fewer say nothing reliable.
MIN_AGE_GROUP_PHOTOS = 10


def _by_age_group(head: BreedHead, data: Labeled) -> dict:
    """Top-1 per age group staff gave (puppies often look unlike their breed's adults)."""
    if not data.age_groups or not len(data):
        return {}
    right = hits(head, data.x, data.y)
    out = {}
    for group in sorted(set(data.age_groups) - {AgeGroup.UNKNOWN}):
        rows = [i for i, age in enumerate(data.age_groups) if age == group]
        if len(rows) >= MIN_AGE_GROUP_PHOTOS:
            out[group] = {"n": len(rows), "top1": round(float(right[rows].mean()), 4)}
    return out


def _error_chart(
    head: BreedHead,
    champion: BreedHead,
    val: Labeled,
    golden: Labeled,
    path: Path,
    *,
    name: Callable[[str], str],
    new_keys: Sequence[str],
    promoted: bool,
    words: charts.ChartWords,
) -> Path:
    parts = [d for d in (val, golden) if len(d)]
    x = np.concatenate([d.x for d in parts]) if parts else np.zeros((0, head.embedding_dim), np.float32)
    y = [label for d in parts for label in d.y]
    candidate = evaluate_head(head, x, y)
    old = evaluate_head(champion, x, y)
    return charts.error_analysis_png(
        path,
        title=words.retrain_title.format(answer=words.retrain_yes if promoted else words.retrain_no),
        words=words,
        per_breed=candidate.per_breed,
        confusions=candidate.confusions,
        champion_per_breed=old.per_breed,
        name=_safe(name),
        new_breeds=new_keys,
    )


def _safe(name: Callable[[str], str]) -> Callable[[str], str]:
    def display(key: str) -> str:
        try:
            return name(key)
        except KeyError:
            return key

    return display
