"""The lifecycle jobs bound to one deployment's engine, model and thresholds, as plain methods.

The worker's scheduler, the bot (``/retrain``, or its JobQueue in one-process mode), the CLI and
the simulation all call these same methods; each takes ``now`` so a simulated clock can drive it.
Everything here is synchronous: callers in an event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from jobs import charts, incidents, registry
from jobs.charts import ChartWords
from jobs.drift import DriftResult, DriftThresholds, check_drift
from jobs.fold import FoldResult, PruneResult, fold, prune
from jobs.lock import TRAIN_LOCK, LockBusy, held, make_owner, owner_is_gone
from jobs.retrain import RetrainResult, RetrainStep, retrain, retrain_trigger
from jobs.scores import RetrainMetrics
from ml.judging import JudgeRules
from ml.predictor import Predictor
from ml.training import TrainConfig
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.lifecycle_tables import DriftIncident, DriftReport, JobRun, ModelVersion
from storage.tables import utcnow
from storage.vocabulary import RunStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifecycleConfig:
    """One deployment's choices for the jobs, handed down whole (values and defaults: ``Settings``)."""

    val_share: float  # share of photos held out for validation (by hash, fixed per photo)
    golden_size: int
    drift_window: int  # the last this-many photos are compared with the reference
    drift_thresholds: DriftThresholds
    dog_threshold: float
    gates: JudgeRules
    retrain_min_new_labels: int
    retrain_new_breed_photos: int
    use_auto_labels: bool
    lock_ttl: timedelta
    drift_reference_max: int = 1000
    incident_after_alarms: int = 1  # scheduled alarms in a row that open a drift incident
    train_config: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class LifecycleJobs:
    """Fold, drift, retrain, registry operations: what ``dogbot worker`` schedules."""

    engine: Engine
    predictor: Predictor  # its backbone gives the warm-start head; its serving head is scored for drift
    model_dir: Path
    config: LifecycleConfig
    clock: Callable[[], datetime] = utcnow
    breed_name: Callable[[str], str] = str
    # The charts' words, read when one is drawn: the composition root hands in the speaking layer's.
    chart_words: Callable[[], ChartWords] = ChartWords
    on_champion_change: Callable[[], None] = lambda: None
    # Where a retrain runs: None, in this process; the bot hands in one that runs it in a child
    # process (same arguments as ``retrain`` below, keywords only), so the bot never loads torch.
    trainer: Callable[..., RetrainResult] | None = None

    # --- the jobs ------------------------------------------------------------------------------
    def fold(self, now: datetime | None = None, *, trigger: str = "schedule") -> FoldResult:
        """A new dataset version if labels arrived since the last (under the training lease)."""
        now = now or self.clock()
        with held(self.engine, TRAIN_LOCK, ttl=self.config.lock_ttl, clock=lambda: now):
            return fold(
                self.engine,
                now=now,
                val_share=self.config.val_share,
                golden_size=self.config.golden_size,
                trigger=trigger,
            )

    def prune(self, now: datetime | None = None) -> PruneResult:
        """Drop dataset versions no model and no golden photo needs (under the training lease)."""
        now = now or self.clock()
        with held(self.engine, TRAIN_LOCK, ttl=self.config.lock_ttl, clock=lambda: now):
            return prune(self.engine)

    def drift(self, now: datetime | None = None, *, trigger: str = "schedule") -> DriftResult:
        """Check the last window of photos against the serving model's reference."""
        now = now or self.clock()
        self.refresh(now)
        result = check_drift(
            self.engine,
            head=self.predictor.head,
            model_version=self.predictor.model_version,
            now=now,
            window=self.config.drift_window,
            reference_max=self.config.drift_reference_max,
            thresholds=self.config.drift_thresholds,
            dog_threshold=self.config.dog_threshold,
            chart_dir=self.model_dir / "drift",
            trigger=trigger,
            name=self.breed_name,
            words=self.chart_words,
        )
        if result.drift and trigger == "schedule" and result.report_id is not None:
            incident, opened = incidents.record_alarm(
                self.engine,
                report_id=result.report_id,
                now=now,
                model_version=result.model_version,
                facts=replace(incidents.IncidentFacts.from_json(result.extra["facts"]), chart=result.chart),
                after_alarms=self.config.incident_after_alarms,
            )
            result.extra["incident"] = {"id": incident.id if incident else None, "opened": opened}
        return result

    def retrain(
        self,
        now: datetime | None = None,
        *,
        trigger: str = "manual",
        actor: str | None = None,
        full: bool = False,
        progress: Callable[[RetrainStep], None] = lambda step: None,
    ) -> RetrainResult:
        """Train, judge and maybe promote a candidate (``LockBusy`` if another run is training)."""
        now = now or self.clock()
        if self.trainer is not None:
            result = self.trainer(now=now, trigger=trigger, actor=actor, full=full, progress=progress)
            self.refresh(now)
            return result
        result = retrain(
            self.engine,
            base_head=self.predictor.base_head(),
            model_dir=self.model_dir,
            now=now,
            trigger=trigger,
            actor=actor,
            gates=self.config.gates,
            config=self.config.train_config,
            val_share=self.config.val_share,
            golden_size=self.config.golden_size,
            use_auto_labels=self.config.use_auto_labels,
            lock_ttl=self.config.lock_ttl,
            breed_name=self.breed_name,
            progress=progress,
            full=full,
            words=self.chart_words,
        )
        if result.promoted and result.version:
            with open_session(self.engine) as session:
                incident = repo.open_incident(session=session)
            if incident is not None:
                incidents.close_after_promotion(
                    self.engine, version=result.version, now=now, photo_ids=self._new_normal(incident, now)
                )
        self.refresh(now)
        return result

    def accept_new_normal(
        self, incident_id: int, *, actor: str | None, now: datetime | None = None
    ) -> DriftIncident:
        """An admin's "Expected": close the incident; the photos since the change become the reference."""
        now = now or self.clock()
        incident = self.incident(incident_id)
        ids = self._new_normal(incident, now) if incident is not None else []  # None: the call below says so
        return incidents.accept_new_normal(self.engine, incident_id, actor=actor, now=now, photo_ids=ids)

    def _new_normal(self, incident: DriftIncident, now: datetime) -> list[int]:
        """The drift reference once ``incident`` closes: the photos since the change began (its
        estimate), at most a drift window of them; the recent window when there is no estimate or too
        few photos since it for a verdict. (A window ending now can hold mostly photos from before.)"""
        since = incidents.IncidentFacts.from_json(incident.facts).since
        with open_session(self.engine) as session:
            recent = repo.recent_photo_ids(self.config.drift_window, session=session, until=now)
            if since is None:
                return recent
            changed = repo.recent_photo_ids(self.config.drift_window, session=session, until=now, since=since)
        return changed if len(changed) >= self.config.drift_thresholds.min_photos else recent

    def incident(self, incident_id: int) -> DriftIncident | None:
        with open_session(self.engine) as session:
            return repo.incident(incident_id, session=session)

    def scheduled_retrain(self, now: datetime | None = None) -> RetrainResult | None:
        """Retrain only when enough new labels arrived or drift was found since the last training."""
        now = now or self.clock()
        reason = retrain_trigger(
            self.engine,
            min_new_labels=self.config.retrain_min_new_labels,
            new_breed_photos=self.config.retrain_new_breed_photos,
        )
        if reason is None:
            return None
        return self.retrain(now, trigger=reason, actor="scheduler")

    def tick(self, now: datetime | None = None) -> dict:
        """Fold, check drift, retrain if triggered: one pass of everything (the simulation's day end)."""
        now = now or self.clock()
        out: dict = {"fold": self.fold(now).to_json(), "drift": self.drift(now).to_json()}
        result = self.scheduled_retrain(now)
        out["retrain"] = result.to_json() if result else None
        return out

    # --- registry ------------------------------------------------------------------------------
    def refresh(self, now: datetime | None = None) -> bool:
        """Serve the registry's champion in this process; True if it changed."""
        return registry.serve_champion(
            self.engine,
            self.predictor,
            model_dir=self.model_dir,
            now=now or self.clock(),
            on_change=self.on_champion_change,
        )

    def recover(self, now: datetime | None = None) -> None:
        """After a crash or kill: close the runs it left ``running``, delete its half-drawn charts."""
        now = now or self.clock()
        interrupted = mark_interrupted_runs(self.engine, now=now)
        leftovers = charts.remove_leftovers(self.model_dir) + charts.remove_leftovers(
            self.model_dir / "drift"
        )
        if interrupted or leftovers:
            log.warning(
                "after a stop: %d job run(s) marked interrupted, %d partial chart file(s) removed",
                len(interrupted),
                len(leftovers),
            )

    def share_artifacts(self) -> list[str]:
        """Put model files trained before they lived in the database there too (replicas load them)."""
        return registry.store_missing_artifacts(self.engine, self.model_dir)

    def models(self) -> list[registry.ModelInfo]:
        self.refresh()
        return registry.models(self.engine)

    def rollback(
        self, *, actor: str | None, now: datetime | None = None, reason: str = ""
    ) -> tuple[str, str]:
        """Serve the previous champion again (the lease keeps it from racing a promotion)."""
        now = now or self.clock()
        self.refresh(now)
        with held(self.engine, TRAIN_LOCK, ttl=self.config.lock_ttl, clock=lambda: now):
            moved = registry.rollback(self.engine, actor=actor, now=now, reason=reason)
        self.refresh(now)
        return moved

    def status(self) -> LifecycleStatus:
        """For /status: the champion's validation accuracy and when drift and retrain last ran."""
        with open_session(self.engine) as session:
            champion = repo.alias_target(session=session)
            row = repo.model_version(champion, session=session) if champion else None
            drift = repo.drift_reports(session=session, limit=1)
            trained = [m for m in repo.model_versions(session=session) if m.artifact is not None]
        metrics = RetrainMetrics.from_json(row.metrics) if row is not None else None
        accuracy = metrics.candidate.validation.top1 if metrics else None
        verdict = metrics.verdict if metrics else None
        checked = None
        if verdict is not None and verdict.changed.n + verdict.rest.n:
            checked = (
                verdict.changed.candidate_right + verdict.rest.candidate_right,
                verdict.changed.n + verdict.rest.n,
            )
        return LifecycleStatus(
            model_version=champion,
            accuracy=accuracy,
            last_drift_check=drift[0] if drift else None,
            last_retrain=trained[-1] if trained else None,
            model_created_at=row.created_at if row is not None else None,
            checked=checked,
            drift_min_photos=self.config.drift_thresholds.min_photos,
        )

    def timeline(self) -> tuple[list[datetime], list[datetime]]:
        """When drift checks found the photos changed, and when models were put to work (/report)."""
        with open_session(self.engine) as session:
            reports = repo.drift_reports(session=session, limit=10_000)
            moves = repo.alias_moves(session=session)
        return (
            [r.created_at for r in reports if r.drift],
            [m.moved_at for m in moves if m.kind == "promote"],
        )

    def recent_events(self, limit: int = 20) -> tuple[list[DriftIncident], list[ModelVersion]]:
        """The latest drift incidents (each is one message to admins, ``jobs.incidents``) and every
        model version, for the bot's news to admins."""
        with open_session(self.engine) as session:
            last = repo.last_incident(session=session)
            after = max((last.id if last else 0) - limit, 0)
            return repo.incidents_after(after, session=session, limit=limit), repo.model_versions(
                session=session
            )


@dataclass(frozen=True)
class LifecycleStatus:
    model_version: str | None  # the champion (None before the first model is registered)
    accuracy: float | None  # its validation top-1 when it was judged
    last_drift_check: DriftReport | None
    last_retrain: ModelVersion | None  # the newest trained model, promoted or not
    model_created_at: datetime | None = None  # when the champion was made (how people name it)
    # The judge's count for the champion: right on ``checked[0]`` of ``checked[1]`` labelled photos
    # it had not learned from (None for the starting model: nobody judged it).
    checked: tuple[int, int] | None = None
    drift_min_photos: int = 0  # photos a drift check needs in each window to give a verdict


def record_run(
    engine: Engine, job: str, run: Callable[[], object], *, clock: Callable[[], datetime] = utcnow
):
    """Run one scheduled job and keep a ``JobRun`` row of it; a busy lease counts as skipped."""
    with open_session(engine) as session:
        # Who runs it, while it runs: a restarted worker can tell a killed run from a live one.
        row = JobRun(job=job, started_at=clock(), detail={"owner": make_owner()})
        session.add(row)
        session.commit()
        run_id = row.id
    status, detail, result = RunStatus.OK, {}, None
    try:
        result = run()
        if result is None:
            status = RunStatus.SKIPPED
        elif hasattr(result, "to_json"):
            detail = _summary(result.to_json())
    except LockBusy as busy:
        status, detail = RunStatus.SKIPPED, {"reason": str(busy)}
    except Exception as error:  # logged and recorded; the scheduler runs the job again next time
        log.exception("job %s failed", job)
        status, detail = RunStatus.FAILED, {"error": f"{type(error).__name__}: {error}"}
    with open_session(engine) as session:
        row = session.get(JobRun, run_id)
        row.finished_at, row.status, row.detail = clock(), status, detail
        session.add(row)
        session.commit()
    return result


def mark_interrupted_runs(
    engine: Engine, *, now: datetime, stale_after: timedelta = timedelta(hours=6)
) -> list[int]:
    """Close the ``running`` rows of runs that will never finish: their process on this machine is
    gone, or (another machine's, or from before runs named their process) they started over
    ``stale_after`` ago. Returns the ids marked ``interrupted``."""
    marked = []
    with open_session(engine) as session:
        for row in repo.running_jobs(session=session):
            owner = (row.detail or {}).get("owner")
            started = row.started_at if row.started_at.tzinfo else row.started_at.replace(tzinfo=UTC)
            if (owner and owner_is_gone(owner)) or started < now - stale_after:
                row.status, row.finished_at = RunStatus.INTERRUPTED, now
                row.detail = {**(row.detail or {}), "reason": "its process stopped (killed or crashed)"}
                session.add(row)
                marked.append(row.id)
        session.commit()
    return marked


def _summary(data: dict) -> dict:
    keep = (
        "version",
        "created",
        "n_items",
        "drift",
        "reason",
        "promoted",
        "champion",
        "reference_n",
        "current_n",
    )
    return {k: data[k] for k in keep if k in data}
