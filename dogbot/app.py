"""The composition root: the one place that reads settings and wires storage, model, domain and jobs.

Only entry points import it (the CLI, the bot's application, the simulation); everything below takes
plain values (tests/unit/test_layers.py keeps it so). The functions turn settings into the frozen
config objects the layers below are handed whole; tests build theirs the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from dogbot import i18n
from dogbot.lifecycle_text import chart_words
from dogbot.settings import Settings
from ml.exemplars import ExemplarRules
from ml.predictor import Predictor
from storage.blobs import PhotoStore, open_photo_store

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dogbot.core.asking import AskRules
    from dogbot.core.breeds import Breeds
    from dogbot.core.catalog import Catalog
    from dogbot.core.dogs import DogRules
    from dogbot.core.intake_rules import IntakeRules
    from dogbot.core.members import Members
    from dogbot.core.shelter_export import ShelterRecords
    from dogbot.core.taxonomy import Taxonomy
    from jobs.asm_client import AsmConnection
    from jobs.asm_sync import AsmSync, SyncRules
    from jobs.drift import DriftThresholds
    from jobs.retrain import RetrainResult, RetrainStep
    from jobs.scheduler import Intervals
    from jobs.service import LifecycleConfig, LifecycleJobs
    from ml.judging import JudgeRules

# The jobs' own modules (drift statistics, charts, training, the scheduler) are imported when the jobs
# are built: `dogbot predict`, `eval` and `ingest` serve the champion through here and need none of them.
# The database (SQLAlchemy, SQLModel, the registry) is imported when first used: `dogbot predict` on a
# SQLite catalog reads what it needs without it (predictor_without_orm).

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    from storage.tables import utcnow  # the catalog's clock, without importing the ORM before it is used

    return utcnow()


def intake_rules(s: Settings) -> IntakeRules:
    from dogbot.core.intake_rules import IntakeRules

    return IntakeRules(
        dog_threshold=s.dog_threshold,
        not_a_dog_below=s.not_a_dog_below,
        auto_accept_threshold=s.auto_accept_threshold,
        max_bytes=s.max_upload_mb * 1024 * 1024,
        max_pixels=s.max_megapixels * 1_000_000,
    )


def dog_rules(s: Settings) -> DogRules:
    from dogbot.core.dogs import DogRules  # imported when a catalog is built, like the catalog

    return DogRules(
        code_prefix=s.dog_code_prefix,
        code_format=s.dog_code_format,
        combine=s.dog_combine,
        dog_threshold=s.dog_threshold,
        not_a_dog_below=s.not_a_dog_below,
        auto_accept_threshold=s.auto_accept_threshold,
        same_dog_similarity=s.same_dog_similarity,
        same_dog_window=s.same_dog_window,
        timezone=s.timezone,
    )


def ask_rules(s: Settings) -> AskRules:
    from dogbot.core.asking import AskRules

    return AskRules(
        target_accuracy=s.target_accuracy,
        spot_check_share=s.spot_check_share,
        min_answers=s.target_min_answers,
    )


def drift_thresholds(s: Settings) -> DriftThresholds:
    from jobs.drift import DriftThresholds

    return DriftThresholds(
        auc=s.drift_auc_threshold,
        p_value=s.drift_p_value,
        min_photos=s.drift_min_photos,
        alarm_tests=tuple(name.strip() for name in s.drift_alarm_tests.split(",") if name.strip()),
    )


def exemplar_rules(s: Settings) -> ExemplarRules | None:
    if s.exemplar_buttons <= 0:
        return None
    return ExemplarRules(max_buttons=s.exemplar_buttons, veto_similarity=s.exemplar_veto_similarity)


def promotion_gates(s: Settings) -> JudgeRules:
    from ml.judging import JudgeRules

    return JudgeRules(
        folds=s.promotion_folds,
        better_alpha=s.promotion_better_alpha,
        worse_alpha=s.promotion_worse_alpha,
        min_compared=s.promotion_min_compared,
        min_new_breed_hits=s.promotion_min_new_breed_hits,
    )


def lifecycle_config(s: Settings) -> LifecycleConfig:
    from jobs.service import LifecycleConfig
    from ml.training import TrainConfig

    return LifecycleConfig(
        val_share=s.validation_share,
        golden_size=s.golden_size,
        drift_window=s.drift_window,
        incident_after_alarms=s.drift_incident_after_alarms,
        drift_thresholds=drift_thresholds(s),
        dog_threshold=s.dog_threshold,
        gates=promotion_gates(s),
        retrain_min_new_labels=s.retrain_min_new_labels,
        retrain_new_breed_photos=s.retrain_new_breed_photos,
        use_auto_labels=s.train_on_auto_labels,
        lock_ttl=timedelta(minutes=s.lock_ttl_minutes),
        train_config=TrainConfig(threads=s.torch_threads),
    )


def intervals(s: Settings) -> Intervals:
    from jobs.scheduler import Intervals

    return Intervals(
        fold=timedelta(minutes=s.fold_interval_minutes),
        drift=timedelta(minutes=s.drift_interval_minutes),
        retrain=timedelta(minutes=s.retrain_interval_minutes),
    )


@dataclass
class Container:
    """Lazily built services, so a command that needs no model never loads one."""

    settings: Settings
    # What "now" is for the catalog and the jobs: the simulation hands in the clock it moves.
    clock: Callable[[], datetime] = field(default=utcnow)
    # Retrain in a child process: the bot sets it, so torch (1 GB) is never loaded into the bot,
    # whether an admin asks (/retrain) or the bot runs the scheduled jobs itself.
    train_in_child: bool = False
    # False: a catalog that is not there is refused (CatalogMissing), not made empty. A command run
    # from the wrong folder must not report "0 rows" from a new database beside the real one.
    create_catalog: bool = True

    @cached_property
    def engine(self) -> Engine:
        from storage.db import make_engine

        s = self.settings
        if not self.create_catalog:
            missing = missing_catalog(s)
            if missing is not None:
                raise CatalogMissing(missing)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(
            s.sqlalchemy_url,
            busy_timeout_s=s.db_busy_timeout_s,
            statement_timeout_s=s.db_statement_timeout_s,
            lock_timeout_s=s.db_lock_timeout_s,
        )

    @cached_property
    def timezone(self) -> tzinfo:
        """The shelter's clock (``DOGBOT_TIMEZONE``): every day and time a person reads is on it."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.timezone)

    @cached_property
    def photo_store(self) -> PhotoStore:
        return open_photo_store(
            self.settings.photo_store, self.settings.photo_dir, s3_endpoint_url=self.settings.s3_endpoint_url
        )

    @cached_property
    def breeds(self) -> Breeds:
        from dogbot.core.breeds import Breeds

        return Breeds(self.engine, clock=self.clock)

    @cached_property
    def predictor(self) -> Predictor:
        from jobs import registry

        predictor = pretrained_predictor(self.settings, self.breeds.taxonomy)
        # The registry's champion, not always version 0 (a no-op on a fresh install).
        registry.serve_champion(self.engine, predictor, model_dir=self.settings.model_dir, now=self.clock())
        log.info("model %s loaded", predictor.model_version)
        return predictor

    @cached_property
    def catalog(self) -> Catalog:
        from dogbot.core.catalog import Catalog  # `dogbot predict` and `models` need no catalog
        from dogbot.core.limits import DecodeSlots

        s = self.settings
        return Catalog.open(
            self.engine,
            self.photo_store,
            self.predictor,
            breeds=self.breeds,
            rules=intake_rules(s),
            dog_rules=dog_rules(s),
            ask_rules=ask_rules(s),
            lookalike_min_corrections=s.lookalike_min_corrections,
            lookalike_days=s.lookalike_days,
            exemplars=exemplar_rules(s),
            clock=self.clock,
            decode_slots=DecodeSlots(s.decode_slots, queue=s.api_decode_queue),
        )

    def refresh_champion(self) -> bool:
        """Serve a champion promoted by another process (cheap when none was); True if it changed."""
        from jobs import registry

        return registry.serve_champion(
            self.engine,
            self.predictor,
            model_dir=self.settings.model_dir,
            now=self.clock(),
            on_change=self.breeds.reload_taxonomy,
        )

    @cached_property
    def members(self) -> Members:
        from dogbot.core.members import Members

        s = self.settings
        return Members(
            self.engine, admin_ids=s.admin_ids, staff_ids=s.staff_ids, cache_seconds=s.member_cache_s
        )

    @cached_property
    def lifecycle(self) -> LifecycleJobs:
        """Fold, drift, retrain and the model registry, bound to this deployment."""
        from jobs.service import LifecycleJobs

        return LifecycleJobs(
            engine=self.engine,
            predictor=self.predictor,
            model_dir=self.settings.model_dir,
            config=lifecycle_config(self.settings),
            clock=self.clock,
            breed_name=self._breed_name_in_language,
            chart_words=chart_words,
            # A new champion may know breeds another process added: load their names before serving it.
            on_champion_change=self.breeds.reload_taxonomy,
            trainer=partial(retrain_in_child, self.settings) if self.train_in_child else None,
        )

    def _breed_name_in_language(self, key: str) -> str:
        """A breed's name in the language in force (charts speak the reader's language, like texts)."""
        return i18n.breed_name(key, self.breeds.breed_name(key))

    @cached_property
    def intervals(self) -> Intervals:
        return intervals(self.settings)

    @cached_property
    def shelter_records(self) -> ShelterRecords:
        """The catalog's dogs as Animal Shelter Manager rows (the asm3 export and the sync)."""
        from dogbot.core.asm_breeds import AsmBreedMap
        from dogbot.core.shelter_export import AsmRules, ShelterRecords

        s = self.settings
        rules = AsmRules(
            breeds=AsmBreedMap.load(Path(s.asm_breed_overrides) if s.asm_breed_overrides else None),
            animal_type=s.asm_animal_type,
            timezone=self.timezone,
        )
        return ShelterRecords(self.catalog.dogs, rules, names=self.members.names)

    @property
    def asm_configured(self) -> bool:
        return asm_connection(self.settings).configured

    @cached_property
    def asm_sync(self) -> AsmSync:
        """Registering dogs in the shelter's ASM (``DOGBOT_ASM_*``); check ``asm_configured`` first."""
        from jobs.asm_client import AsmClient
        from jobs.asm_sync import AsmSync

        return AsmSync(
            self.engine,
            self.shelter_records,
            AsmClient(asm_connection(self.settings)),
            asm_rules(self.settings),
            clock=self.clock,
        )


class CatalogMissing(Exception):
    """The settings point at no catalog, and this command does not make one."""


def missing_catalog(s: Settings) -> str | None:
    """Where the catalog should be when it is not there (a SQLite file, or a database without tables)."""
    url = s.sqlalchemy_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///")).resolve()
        return None if path.is_file() else str(path)
    if url.startswith("sqlite"):
        return None  # in memory: made for this process alone
    from sqlalchemy import inspect

    from storage.db import make_engine

    engine = make_engine(url, prepare_schema=False)
    try:
        return None if inspect(engine).has_table("photo") else _without_password(url)
    finally:
        engine.dispose()


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def asm_connection(s: Settings) -> AsmConnection:
    from jobs.asm_client import AsmConnection

    return AsmConnection(
        url=s.asm_url,
        account=s.asm_account,
        username=s.asm_username,
        password=s.asm_password,
        key=s.asm_key,
        timeout_seconds=s.asm_timeout_s,
    )


def asm_rules(s: Settings) -> SyncRules:
    from jobs.asm_sync import SyncRules

    return SyncRules(
        quiet=timedelta(minutes=s.asm_quiet_minutes),
        first_retry=timedelta(minutes=1),
        max_retry=timedelta(hours=1),
    )


def pretrained_predictor(settings: Settings, taxonomy: Taxonomy) -> Predictor:
    """Model version 0 of ``settings.model`` (the champion is put in by the caller)."""
    return Predictor.pretrained(
        settings.model,
        [(breed.imagenet_index, breed.key) for breed in taxonomy.imagenet_breeds()],
        backbone_dir=settings.serving_backbone_dir,
        threads=settings.torch_threads,
    )


def predictor_without_orm(settings: Settings) -> tuple[Predictor, Taxonomy] | None:
    """The champion and the breed names, read from a SQLite catalog without SQLAlchemy, for a start
    that only answers photos (`dogbot predict`: the ORM's import is half of its start).

    None unless the catalog is a SQLite file at this code's schema with the champion's head file
    intact in the model folder: the caller then takes :class:`Container`'s way, which creates or
    upgrades the schema, registers the base model and copies a head from the database.
    """
    from dogbot.core.taxonomy import Taxonomy
    from ml.head import BreedHead, saved_head_intact
    from ml.predictor import backbone_of, base_version
    from storage.serving_read import read_serving

    if settings.database_url and not settings.database_url.startswith("sqlite:///"):
        return None
    database = Path(settings.sqlalchemy_url.removeprefix("sqlite:///"))
    record = read_serving(database)
    if record is None or backbone_of(record.champion) != settings.model:
        return None
    taxonomy = Taxonomy.with_added(record.added_breeds)
    predictor = pretrained_predictor(settings, taxonomy)
    if record.artifact is None:  # the base model: version 0 is what the predictor serves already
        return (predictor, taxonomy) if record.champion == base_version(settings.model) else None
    path = settings.model_dir / record.artifact
    if not saved_head_intact(path, record.sha256):
        return None
    try:
        head = BreedHead.load(path)
    except (OSError, ValueError, KeyError):
        return None
    if tuple(head.breed_keys) != record.breed_keys or any(key not in taxonomy for key in head.breed_keys):
        return None
    predictor.use_head(head, record.champion)
    return predictor, taxonomy


def retrain_in_child(
    settings: Settings,
    *,
    now: datetime,
    trigger: str,
    actor: str | None,
    full: bool,
    progress: Callable[[RetrainStep], None],
) -> RetrainResult:
    """Run one retrain in a fresh process (spawned: it shares nothing with this one) and return its result.

    Progress lines and the result (or the exception) come back over a queue; a child that dies
    without answering (killed, out of memory) is reported as such. Its lease dies with it.
    """
    import multiprocessing
    import queue

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    child = context.Process(
        target=_retrain_here,
        # The language in force here (the admin who asked): the child draws the chart in it.
        args=(settings, now, trigger, actor, full, messages, i18n.current()),
        name="dogbot-retrain",
    )
    child.start()
    try:
        while True:
            try:
                kind, value = messages.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"the training process stopped before it finished (exit code {child.exitcode})"
                    ) from None
                continue
            if kind == "progress":
                progress(value)
            elif kind == "error":
                raise value
            else:
                return value
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.terminate()


def _retrain_here(
    settings: Settings, now: datetime, trigger: str, actor, full: bool, messages, language: str
) -> None:
    """The child's side of :func:`retrain_in_child`."""
    i18n.set_language(language)
    container = Container(settings)
    try:
        result = container.lifecycle.retrain(
            now,
            trigger=trigger,
            actor=actor,
            full=full,
            progress=lambda step: messages.put(("progress", step)),
        )
    except Exception as error:  # handed to the parent, which raises it there
        messages.put(("error", error))
    else:
        messages.put(("result", result))
    finally:
        container.engine.dispose()
