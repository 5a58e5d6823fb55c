"""When the lifecycle jobs run: APScheduler 3 with plain functions, re-registered from settings at start.

Jobs are not pickled into a job store (PTB's jobs cannot be, and ours need not be): at start each
job is added again with its interval from settings, and its first run is placed from the last
``JobRun`` in the database, so a run missed while the worker was down happens once, at start, and
not once per missed interval (``coalesce``). ``max_instances=1`` keeps one run of a job per process
and the training lease keeps one across processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from jobs.fold import FoldResult
from jobs.service import LifecycleJobs, record_run
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.vocabulary import FINISHED

log = logging.getLogger(__name__)

# Started in this order at start-up, a little apart, so a retrain sees the fresh fold.
JOB_ORDER = ("fold", "drift", "retrain")
_STAGGER = timedelta(seconds=20)


@dataclass(frozen=True)
class Intervals:
    fold: timedelta
    drift: timedelta
    retrain: timedelta
    misfire_grace: timedelta = timedelta(minutes=30)

    def of(self, job: str) -> timedelta:
        return getattr(self, job)


def job_functions(jobs: LifecycleJobs) -> dict[str, Callable[[], object]]:
    """The scheduled work: plain callables, the same ones the bot's JobQueue mode runs."""
    return {
        "fold": lambda: _fold_and_prune(jobs),
        "drift": lambda: jobs.drift(trigger="schedule"),
        "retrain": lambda: jobs.scheduled_retrain(),
    }


def _fold_and_prune(jobs: LifecycleJobs) -> FoldResult:
    # Pruning right after each fold keeps the history to the versions models were trained on.
    result = jobs.fold(trigger="schedule")
    jobs.prune()
    return result


def run_scheduled(jobs: LifecycleJobs, name: str) -> object:
    """Run one named job now, recorded as a ``JobRun``."""
    return record_run(jobs.engine, name, job_functions(jobs)[name], clock=jobs.clock)


def first_run(jobs: LifecycleJobs, name: str, interval: timedelta, now: datetime) -> datetime:
    """Now if the job is due (never ran, or its last run is an interval old), else when it will be.

    Only finished runs count: one that a kill interrupted is due again at once.
    """
    with open_session(jobs.engine) as session:
        last = repo.last_run(name, session=session, status=FINISHED)
    if last is None or last.started_at + interval <= now:
        return now + _STAGGER * JOB_ORDER.index(name)
    return last.started_at + interval


def add_jobs(scheduler: BaseScheduler, jobs: LifecycleJobs, intervals: Intervals, *, now: datetime) -> None:
    for name in JOB_ORDER:
        interval = intervals.of(name)
        start = first_run(jobs, name, interval, now)
        scheduler.add_job(
            run_scheduled,
            trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            args=[jobs, name],
            id=name,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(intervals.misfire_grace.total_seconds()),
            next_run_time=start.replace(tzinfo=UTC),
        )
        log.info("job %s every %s, next at %s UTC", name, interval, start.isoformat(timespec="seconds"))


def add_sync_job(
    scheduler: BaseScheduler, name: str, sync: Callable[[], object], every: timedelta, *, now: datetime
) -> None:
    """A job that keeps another system in step (the ASM sync): first run soon after start, then
    ``every``. It keeps its own records (an outbox), so it is not a ``JobRun``; its failures are logged."""

    def run() -> None:
        try:
            sync()
        except Exception:
            log.exception("%s failed; it runs again in %s", name, every)

    scheduler.add_job(
        run,
        trigger=IntervalTrigger(seconds=every.total_seconds(), timezone=UTC),
        id=name,
        name=name,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        next_run_time=(now + _STAGGER * (len(JOB_ORDER) + 1)).replace(tzinfo=UTC),
    )
    log.info("job %s every %s", name, every)


def run_worker(
    jobs: LifecycleJobs,
    intervals: Intervals,
    *,
    sync_jobs: dict[str, tuple[Callable[[], object], timedelta]] | None = None,
) -> None:
    """Block, running the jobs on schedule, until interrupted (Ctrl-C or SIGTERM).

    ``sync_jobs``: name -> (function, interval) of jobs that keep other systems in step (ASM).
    """
    scheduler = BlockingScheduler(timezone=UTC)
    jobs.recover()  # before the first runs are placed: an interrupted run is due again
    add_jobs(scheduler, jobs, intervals, now=jobs.clock())
    for name, (sync, every) in (sync_jobs or {}).items():
        add_sync_job(scheduler, name, sync, every, now=jobs.clock())
    jobs.share_artifacts()
    jobs.refresh()
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("worker stopping")
