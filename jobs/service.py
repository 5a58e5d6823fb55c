"""The lifecycle jobs bound to one deployment's engine, model and thresholds, as plain methods.

The worker's scheduler, the bot (``/retrain``, or its JobQueue in one-process mode), the CLI and
the simulation all call these same methods; each takes ``now`` so a simulated clock can drive it.
Everything here is synchronous: callers in an event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from jobs import charts, registry
from jobs.drift import DriftResult, DriftThresholds, check_drift
from jobs.fold import FoldResult, fold
from jobs.lock import TRAIN_LOCK, LockBusy, held, make_owner, owner_is_gone
from jobs.retrain import PromotionGates, RetrainResult, retrain, retrain_trigger
from ml.predictor import Predictor
from ml.training import TrainConfig
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.lifecycle_tables import JobRun
from storage.tables import utcnow

log = logging.getLogger(__name__)


@dataclass
class LifecycleJobs:
    """Fold, drift, retrain, registry operations: what ``dogbot worker`` schedules."""

    engine: Engine
    predictor: Predictor  # its backbone gives the warm-start head; its serving head is scored for drift
    model_dir: Path
    clock: Callable[[], datetime] = utcnow
    val_share: float = 0.2
    golden_size: int = 200
    drift_window: int = 200
    drift_reference_max: int = 1000
    drift_thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    dog_threshold: float = 0.5
    gates: PromotionGates = field(default_factory=PromotionGates)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    retrain_min_new_labels: int = 50
    use_auto_labels: bool = True
    lock_ttl: timedelta = timedelta(minutes=2)
    breed_name: Callable[[str], str] = str
    on_champion_change: Callable[[], None] = lambda: None

    # --- the jobs ------------------------------------------------------------------------------
    def fold(self, now: datetime | None = None, *, trigger: str = "schedule") -> FoldResult:
        """A new dataset version if labels arrived since the last (under the training lease)."""
        now = now or self.clock()
        with held(self.engine, TRAIN_LOCK, ttl=self.lock_ttl, clock=lambda: now):
            return fold(
                self.engine, now=now, val_share=self.val_share, golden_size=self.golden_size, trigger=trigger
            )

    def drift(self, now: datetime | None = None, *, trigger: str = "schedule") -> DriftResult:
        """Check the last window of photos against the serving model's reference."""
        now = now or self.clock()
        self.refresh(now)
        return check_drift(
            self.engine,
            head=self.predictor.head,
            model_version=self.predictor.model_version,
            now=now,
            window=self.drift_window,
            reference_max=self.drift_reference_max,
            thresholds=self.drift_thresholds,
            dog_threshold=self.dog_threshold,
            chart_dir=self.model_dir / "drift",
            trigger=trigger,
        )

    def retrain(
        self,
        now: datetime | None = None,
        *,
        trigger: str = "manual",
        actor: str | None = None,
        full: bool = False,
        progress: Callable[[str], None] = lambda message: None,
    ) -> RetrainResult:
        """Train, judge and maybe promote a candidate (``LockBusy`` if another run is training)."""
        now = now or self.clock()
        result = retrain(
            self.engine,
            base_head=self.predictor.base_head(),
            model_dir=self.model_dir,
            now=now,
            trigger=trigger,
            actor=actor,
            gates=self.gates,
            config=self.train_config,
            val_share=self.val_share,
            golden_size=self.golden_size,
            use_auto_labels=self.use_auto_labels,
            lock_ttl=self.lock_ttl,
            breed_name=self.breed_name,
            progress=progress,
            full=full,
        )
        self.refresh(now)
        return result

    def scheduled_retrain(self, now: datetime | None = None) -> RetrainResult | None:
        """Retrain only when enough new labels arrived or drift was found since the last training."""
        now = now or self.clock()
        reason = retrain_trigger(self.engine, min_new_labels=self.retrain_min_new_labels)
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
        with held(self.engine, TRAIN_LOCK, ttl=self.lock_ttl, clock=lambda: now):
            moved = registry.rollback(self.engine, actor=actor, now=now, reason=reason)
        self.refresh(now)
        return moved

    def status(self) -> dict:
        """For /status: the champion's validation accuracy and when drift and retrain last ran."""
        with open_session(self.engine) as session:
            champion = repo.alias_target(session=session)
            row = repo.model_version(champion, session=session) if champion else None
            drift = repo.drift_reports(session=session, limit=1)
            trained = [m for m in repo.model_versions(session=session) if m.artifact is not None]
        accuracy = None
        if row is not None and row.metrics:
            accuracy = row.metrics.get("candidate", {}).get("validation", {}).get("top1")
        return {
            "model_version": champion,
            "accuracy": accuracy,
            "last_drift_check": f"{drift[0].created_at:%Y-%m-%d %H:%M} UTC "
            f"({'drift' if drift[0].drift else 'no drift'})"
            if drift
            else None,
            "last_retrain": f"{trained[-1].created_at:%Y-%m-%d %H:%M} UTC ({trained[-1].version} "
            f"{trained[-1].status})"
            if trained
            else None,
        }


# How a JobRun ends. "interrupted": its process was killed or crashed (see mark_interrupted_runs).
FINISHED = ("ok", "skipped", "failed")


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
    status, detail, result = "ok", {}, None
    try:
        result = run()
        if result is None:
            status = "skipped"
        elif hasattr(result, "to_json"):
            detail = _summary(result.to_json())
    except LockBusy as busy:
        status, detail = "skipped", {"reason": str(busy)}
    except Exception as error:  # logged and recorded; the scheduler runs the job again next time
        log.exception("job %s failed", job)
        status, detail = "failed", {"error": f"{type(error).__name__}: {error}"}
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
                row.status, row.finished_at = "interrupted", now
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
