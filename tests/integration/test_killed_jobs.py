"""A worker killed mid-job (SIGKILL: no cleanup ran) and restarted: nothing is left `running` or half-written,
and the interrupted job is due again at once rather than an interval later."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

from conftest import default_settings
from sqlmodel import select

from dogbot.app import lifecycle_config
from jobs.scheduler import _STAGGER, JOB_ORDER, first_run
from jobs.service import LifecycleJobs
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import JobRun
from storage.tables import utcnow

CONFIG = lifecycle_config(default_settings())

KILLED_WHILE_DRAWING = """
import sys, time
from pathlib import Path
import matplotlib.pyplot as plt
from jobs import charts
from jobs.service import record_run
from storage.db import make_engine

def retrain():
    fig = plt.figure()
    def slow_savefig(*args, **kwargs):
        print("drawing", flush=True)
        time.sleep(600)
    fig.savefig = slow_savefig  # killed inside the writer every chart goes through
    charts._save(fig, Path(sys.argv[2]) / "lite0-v1.errors.png")

record_run(make_engine(sys.argv[1]), "retrain", retrain)
"""


def test_a_worker_killed_mid_retrain_leaves_nothing_running_and_retrains_at_restart(database_url, tmp_path):
    engine = make_engine(database_url)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    command = [sys.executable, "-c", KILLED_WHILE_DRAWING, database_url, str(model_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as worker:
        try:
            assert worker.stdout.readline().strip() == "drawing"
        finally:
            worker.send_signal(signal.SIGKILL)
    with open_session(engine) as session:
        assert [r.status for r in session.exec(select(JobRun))] == ["running"]
    assert len(list(model_dir.glob(".*.png"))) == 1  # the half-drawn chart

    now = utcnow()
    jobs = LifecycleJobs(engine=engine, predictor=None, model_dir=model_dir, config=CONFIG, clock=lambda: now)
    jobs.recover()  # what `dogbot worker` does first
    with open_session(engine) as session:
        run = session.exec(select(JobRun)).one()
    assert run.status == "interrupted" and run.finished_at is not None
    assert list(model_dir.glob(".*.png")) == []
    due = first_run(jobs, "retrain", timedelta(hours=6), now)
    assert due == now + _STAGGER * JOB_ORDER.index("retrain"), "the interrupted retrain runs at start"
    engine.dispose()


def test_a_run_still_going_elsewhere_is_left_alone(database_url, tmp_path):
    engine = make_engine(database_url)
    now = utcnow()
    with open_session(engine) as session:
        session.add(JobRun(job="drift", started_at=now, detail={"owner": "another-host:4242:abcd1234"}))
        session.add(JobRun(job="fold", started_at=now - timedelta(days=1)))  # from before runs named owners
        session.commit()
    jobs = LifecycleJobs(engine=engine, predictor=None, model_dir=tmp_path, config=CONFIG, clock=lambda: now)
    jobs.recover()
    with open_session(engine) as session:
        assert {r.job: r.status for r in session.exec(select(JobRun))} == {
            "drift": "running",
            "fold": "interrupted",
        }
    engine.dispose()
