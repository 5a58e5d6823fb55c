"""How the composition root (``dogbot.app.Container``) builds the lifecycle jobs from settings.

Kept here, beside the jobs, so the container gains only a few delegating lines; below this module
everything takes plain values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ml.predictor import Predictor
from storage.tables import utcnow

if TYPE_CHECKING:
    from dogbot.app import Container
    from jobs.scheduler import Intervals
    from jobs.service import LifecycleJobs

# The jobs' own modules (drift statistics, charts, training) are imported when the jobs are built:
# `dogbot predict`, `eval` and `ingest` serve the champion through here and need none of them.


def lifecycle_jobs(container: Container) -> LifecycleJobs:
    from jobs.drift import DriftThresholds
    from jobs.retrain import PromotionGates
    from jobs.service import LifecycleJobs
    from ml.training import TrainConfig

    s = container.settings
    return LifecycleJobs(
        engine=container.engine,
        predictor=container.predictor,
        model_dir=s.model_dir,
        val_share=s.validation_share,
        golden_size=s.golden_size,
        drift_window=s.drift_window,
        drift_thresholds=DriftThresholds(
            auc=s.drift_auc_threshold,
            p_value=s.drift_p_value,
            min_photos=s.drift_min_photos,
            alarm_tests=tuple(name.strip() for name in s.drift_alarm_tests.split(",") if name.strip()),
        ),
        dog_threshold=s.dog_threshold,
        gates=PromotionGates(
            golden_tolerance=s.promotion_golden_tolerance,
            min_improvement=s.promotion_min_improvement,
            min_validation=s.promotion_min_validation,
        ),
        train_config=TrainConfig(threads=s.torch_threads),
        retrain_min_new_labels=s.retrain_min_new_labels,
        use_auto_labels=s.train_on_auto_labels,
        lock_ttl=timedelta(minutes=s.lock_ttl_minutes),
        breed_name=lambda key: _taxonomy_of(container).get(key).display_name,
        on_champion_change=lambda: _reload_taxonomy(container),
    )


def intervals(container: Container) -> Intervals:
    from jobs.scheduler import Intervals

    s = container.settings
    return Intervals(
        fold=timedelta(minutes=s.fold_interval_minutes),
        drift=timedelta(minutes=s.drift_interval_minutes),
        retrain=timedelta(minutes=s.retrain_interval_minutes),
    )


def serve_champion(container: Container, predictor: Predictor) -> None:
    """At start: serve the registry's champion instead of version 0 (a no-op on a fresh install)."""
    from jobs.registry import serve_champion as serve

    serve(container.engine, predictor, model_dir=container.settings.model_dir, now=utcnow())


def _taxonomy_of(container: Container):
    catalog = container.__dict__.get("catalog")
    return catalog.taxonomy if catalog is not None else container.taxonomy


def _reload_taxonomy(container: Container) -> None:
    """A new champion may know breeds another process added: load their names before serving it."""
    catalog = container.__dict__.get("catalog")
    if catalog is not None:
        catalog.reload_taxonomy()
