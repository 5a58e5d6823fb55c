"""Lifecycle jobs with the real model, real photos and a real database: fold, retrain, promote, rollback,
crash safety, drift, the scheduler's registration and the CLI.

A few dozen dev photos are imported once per module (about 10 s on 2 cores); each test then works on
its own copy of that database.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from conftest import default_settings, open_catalog
from PIL import Image, ImageEnhance
from sqlmodel import select

from dogbot.app import drift_thresholds, lifecycle_config
from dogbot.core.bulk import BulkItem, submit_files
from jobs import registry
from jobs.incidents import IncidentFacts
from jobs.lock import TRAIN_LOCK, LockBusy, try_acquire
from jobs.retrain import FullRetrainUnavailable
from jobs.scheduler import Intervals, add_jobs, run_scheduled
from jobs.service import LifecycleJobs
from ml.predictor import Predictor
from storage import lifecycle_repository as repo
from storage.blobs import LocalPhotoStore
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import DatasetItem, JobRun, ModelVersion
from storage.snapshot import load_snapshot, open_snapshot
from storage.vocabulary import DriftTest, IncidentClose, IncidentKind, LabelSource, ModelStatus

pytestmark = pytest.mark.slow

# After the seeded photos arrive (they carry the real time), so every job sees them.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
NEW_BREEDS = ("dachshund", "shiba_inu")
IMAGENET_PER_BREED = 3
IMAGENET_BREEDS = (
    "golden retriever",
    "pug",
    "beagle",
    "German shepherd",
    "Chihuahua",
    "boxer",
    "collie",
    "Siberian husky",
    "basset",
    "Pomeranian",
)

DEFAULTS = default_settings()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, predictor, eval_data_dir):
    """A database with imported, labeled photos: ImageNet breeds, two new breeds, and a few non-dogs."""
    import csv

    root = tmp_path_factory.mktemp("lifecycle")
    with (eval_data_dir / "manifest.csv").open(newline="", encoding="utf-8") as f:
        known = list(csv.DictReader(f))
    with (eval_data_dir / "other_breeds.csv").open(newline="", encoding="utf-8") as f:
        other = list(csv.DictReader(f))
    rows = []
    for breed in IMAGENET_BREEDS:
        rows += [r for r in known if r["breed"] == breed][:IMAGENET_PER_BREED]
    rows += [r for r in known if r["breed"] == "not_a_dog"][:3]
    for breed in NEW_BREEDS:
        rows += [r for r in other if r["breed"] == breed]
    engine = make_engine(f"sqlite:///{root / 'dogbot.db'}")
    predictor.use_head(predictor.base_head(), "lite0-v0")
    catalog = open_catalog(engine, LocalPhotoStore(root / "photos"), predictor)
    items = []
    for row in rows:
        breed = catalog.breeds.taxonomy.resolve(row["breed"]) or catalog.breeds.add_breed(
            row["breed"].replace("_", " "), by=None
        )
        items.append(BulkItem(eval_data_dir / row["path"], breed.key))
    results = submit_files(catalog, items, source="import")
    assert all(r.classification is not None for r in results)
    engine.dispose()
    return root, [eval_data_dir / r["path"] for r in rows]


@pytest.fixture
def env(seeded, tmp_path, predictor, database_url):
    """A private copy of the seeded database (on SQLite and on PostgreSQL), a catalog and the jobs on it."""
    root, paths = seeded
    shutil.copytree(root / "photos", tmp_path / "photos")
    if database_url.startswith("sqlite"):
        shutil.copy(root / "dogbot.db", tmp_path / "dogbot.db")
        engine = make_engine(database_url)
    else:
        engine = make_engine(database_url)
        seeded_engine = open_snapshot(root / "dogbot.db")
        load_snapshot(seeded_engine, engine)  # the same rows, copied table by table
        seeded_engine.dispose()
    predictor.use_head(predictor.base_head(), "lite0-v0")
    catalog = open_catalog(
        engine, LocalPhotoStore(tmp_path / "photos"), predictor, clock=lambda: NOW + timedelta(hours=1)
    )
    jobs = LifecycleJobs(
        engine=engine,
        predictor=predictor,
        model_dir=tmp_path / "models",
        clock=lambda: NOW,
        config=replace(
            lifecycle_config(DEFAULTS),
            golden_size=10,
            drift_thresholds=replace(drift_thresholds(DEFAULTS), min_photos=10),
            drift_window=30,
        ),
        breed_name=lambda key: catalog.breeds.taxonomy.get(key).display_name,
        on_champion_change=catalog.breeds.reload_taxonomy,
    )
    yield jobs, catalog, paths
    predictor.use_head(predictor.base_head(), "lite0-v0")
    engine.dispose()


def test_fold_makes_immutable_numbered_versions_with_a_fixed_split(env):
    jobs, catalog, _ = env
    first = jobs.fold(NOW)
    assert first.created and first.version == 1
    assert first.n_items == first.n_train + first.n_val > 0
    assert first.counts["dachshund"]["train"] + first.counts["dachshund"].get("val", 0) == 15
    assert "not_a_dog" in first.counts  # kept for the not-a-dog decision, left out of breed training
    again = jobs.fold(NOW)
    assert not again.created and again.version == 1  # nothing new: nothing made

    with open_session(jobs.engine) as session:
        item = session.exec(select(DatasetItem).where(DatasetItem.label == "pug")).first()
    catalog.labelling.record_label(item.photo_id, "boxer", source=LabelSource.STAFF, user_id=7)
    catalog.labelling.record_label(item.photo_id, "pug", source=LabelSource.STAFF, user_id=8)
    catalog.labelling.record_label(item.photo_id, "boxer", source=LabelSource.ADMIN, user_id=9)
    second = jobs.fold(NOW + timedelta(hours=1))
    assert second.created and second.version == 2 and item.photo_id in second.conflicts
    assert second.n_changed == 1 and second.n_items == first.n_items  # the one photo, not a copy
    with open_session(jobs.engine) as session:
        items = {
            version: {i.photo_id: i for i in repo.dataset_items(version, session=session)}
            for version in (1, 2)
        }
    assert items[1][item.photo_id].label == "pug"  # version 1 is untouched
    assert items[2][item.photo_id].label == "boxer"  # the admin's word wins
    assert items[1][item.photo_id].split == items[2][item.photo_id].split
    assert items[1].keys() == items[2].keys()


def test_retrain_learns_new_breeds_promotes_and_the_predictor_serves_it(env, predictor):
    jobs, catalog, paths = env
    steps = []
    result = jobs.retrain(NOW, actor="42", progress=steps.append)
    assert result.version == "lite0-v1" and result.promoted, result.reason
    assert result.champion == "lite0-v1" and predictor.model_version == "lite0-v1"
    assert set(NEW_BREEDS) <= set(predictor.head.breed_keys)
    assert Path(result.report).is_file() and steps
    cand = result.metrics.candidate.validation
    assert cand.top1_new_breeds > result.metrics.champion.validation.top1_new_breeds == 0.0

    # A photo of a new breed: the catalog's prediction names it (custom breed display name works).
    dachshund = next(p for p in paths if "dachshund" in str(p))
    classified = catalog.intake.submit(_flipped(dachshund), source="telegram")
    assert classified.prediction.model_version == "lite0-v1"
    assert any(breed.key == "dachshund" for breed, _ in classified.top)

    with open_session(jobs.engine) as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == "lite0-v1")).one()
    assert row.sha256 and row.dataset_version == result.dataset_version and row.actor == "42"
    assert row.status == ModelStatus.PROMOTED and "dachshund" in row.breed_keys

    # A second process on another machine (fresh predictor, its own empty model folder) picks up the
    # champion from the registry: the artifact comes out of the database.
    other = Predictor(predictor.backbone, predictor.imagenet_breeds)
    replica_dir = jobs.model_dir.parent / "replica-models"
    assert jobs_for(jobs, other, model_dir=replica_dir).refresh(NOW) and other.model_version == "lite0-v1"
    assert (replica_dir / "lite0-v1.safetensors").read_bytes() == (
        jobs.model_dir / "lite0-v1.safetensors"
    ).read_bytes()

    old, new = jobs.rollback(actor="42", now=NOW, reason="test")
    assert (old, new) == ("lite0-v1", "lite0-v0") and predictor.model_version == "lite0-v0"
    with pytest.raises(registry.RegistryError):
        jobs.rollback(actor="42", now=NOW)
    moves = [(m.kind, m.to_version) for m in registry.history(jobs.engine)]
    assert moves == [("init", "lite0-v0"), ("promote", "lite0-v1"), ("rollback", "lite0-v0")]

    # In words (issue 14): percentages, no metric pairs, no server path; /status and /models agree
    # that v0 answers again after the rollback; /models fits a phone.
    from bot import texts
    from dogbot.core.reporting import CatalogStatus
    from dogbot.lifecycle_text import model_list, model_namer, retrain_report

    report = retrain_report(
        result, name=lambda key: key.replace("_", " ").title(), model=model_namer(jobs.models())
    )
    assert "answers from now on" in report and "Dachshund" in report
    assert "labelled photos it had not learned from, it named" in report  # the judge's own count
    assert "lite0-v" not in report  # models are named by date (version strings: --json, logs)
    assert str(jobs.model_dir) not in report and ".png" not in report and " vs " not in report
    assert not re.search(r"\b0\.\d{2,}", report), report
    status = texts.status(CatalogStatus("lite0-v0", 1, 1, 0, 1, 0), jobs.status())
    assert "was put to work, then rolled back" in status and "lite0-v" not in status
    listed = model_list(jobs.models())
    assert listed.splitlines()[0] == "▶ The starting model: answering now"
    assert re.search(r"• The model of \d+ \w+, \d\d:\d\d: used before", listed), listed
    assert max(len(line) for line in listed.splitlines()) <= 60, listed


def test_a_candidate_that_is_not_better_is_rejected_and_never_serves(env, predictor):
    jobs, _, _ = env
    # An admin who asks for overwhelming evidence: no candidate from a dozen labels gives it.
    strict = replace(jobs.config.gates, better_alpha=1e-9, min_new_breed_hits=10**6)
    jobs.config = replace(jobs.config, gates=strict)
    result = jobs.retrain(NOW)
    assert not result.promoted and "not clearly better" in result.reason
    assert result.metrics.verdict is not None and not result.metrics.verdict.promote
    assert predictor.model_version == "lite0-v0" == registry.champion_version(jobs.engine)
    with pytest.raises(registry.RegistryError, match="rejected"):
        registry.promote(jobs.engine, result.version, reason="force", actor="x", now=NOW)
    with pytest.raises(FullRetrainUnavailable, match="not available yet"):
        jobs.retrain(NOW, full=True)


def test_a_crash_between_saving_and_promoting_leaves_the_champion_serving(env, predictor, monkeypatch):
    jobs, _, _ = env

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(registry, "promote", killed)
    with pytest.raises(SystemExit):
        jobs.retrain(NOW)
    monkeypatch.undo()
    assert registry.champion_version(jobs.engine) == "lite0-v0" and predictor.model_version == "lite0-v0"
    assert (jobs.model_dir / "lite0-v1.safetensors").is_file()  # written, registered, never promoted
    # The dead worker could not release its lease: the next run waits for it to expire, then succeeds.
    assert try_acquire(jobs.engine, TRAIN_LOCK, "dead-worker", ttl=timedelta(minutes=30), clock=lambda: NOW)
    with pytest.raises(LockBusy):
        jobs.retrain(NOW + timedelta(minutes=5))
    result = jobs.retrain(NOW + timedelta(minutes=31))
    assert result.version == "lite0-v2" and result.promoted
    with open_session(jobs.engine) as session:
        crashed = session.exec(select(ModelVersion).where(ModelVersion.version == "lite0-v1")).one()
    assert crashed.status == ModelStatus.REJECTED and "interrupted" in crashed.reason


def test_drift_flags_a_wave_of_unseen_breeds_and_darkened_photos(env):
    """The seeded photos arrive ImageNet breeds first, new breeds last: a real shift in what arrives.

    (No false alarm on same-distribution windows is measured in bench/bench_jobs.py: 0 in 20.)
    """
    jobs, catalog, paths = env
    wave = jobs.drift(NOW)
    assert wave.reference == "first_window" and wave.drift
    assert "embedding_auc" in {t["name"] for t in wave.tests if t["alarm"]}
    for path in paths[:40]:
        catalog.intake.submit(_darkened(path), source="telegram")
    dark = jobs.drift(NOW + timedelta(days=1))
    assert dark.drift and dark.current_n == 30
    assert "brightness" in {t["name"] for t in dark.tests if t["alarm"]}
    assert Path(dark.chart).is_file()
    assert set(dark.to_json()) >= {"drift", "tests", "reference_n", "current_n"}


def test_scheduler_registers_jobs_once_and_runs_missed_ones_at_start(env):
    jobs, _, _ = env
    intervals = Intervals(fold=timedelta(hours=1), drift=timedelta(days=1), retrain=timedelta(hours=1))
    run_scheduled(jobs, "fold")
    with open_session(jobs.engine) as session:
        runs = session.exec(select(JobRun)).all()
    assert [(r.job, r.status) for r in runs] == [("fold", "ok")]
    scheduler = BackgroundScheduler(timezone=UTC)
    add_jobs(scheduler, jobs, intervals, now=NOW + timedelta(minutes=10))
    add_jobs(scheduler, jobs, intervals, now=NOW + timedelta(minutes=10))  # re-registration replaces
    registered = {job.id: job for job in scheduler.get_jobs()}
    assert set(registered) == {"fold", "drift", "retrain"}
    assert all(job.coalesce and job.max_instances == 1 for job in registered.values())
    assert registered["fold"].next_run_time == NOW + timedelta(hours=1)  # ran 10 minutes ago
    assert registered["drift"].next_run_time <= NOW + timedelta(minutes=11)  # never ran: due now


def test_cli_retrain_models_rollback_and_predict_use_the_champion(seeded, tmp_path, monkeypatch, capsys):
    from dogbot.cli import main

    root, paths = seeded
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(root / "dogbot.db", data / "dogbot.db")
    shutil.copytree(root / "photos", data / "photos")
    monkeypatch.setenv("DOGBOT_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no stray .env

    assert main(["retrain", "--full"]) == 2
    assert "not available yet" in capsys.readouterr().err
    assert main(["retrain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "lite0-v1" and out["promoted"] and "candidate" in out["metrics"]
    dachshund = next(p for p in paths if "dachshund" in str(p))
    assert main(["predict", "--json", str(dachshund)]) == 0
    assert json.loads(capsys.readouterr().out)["model_version"] == "lite0-v1"
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["champion"] == "lite0-v1"
    assert main(["drift", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"drift", "tests", "reference_n", "current_n"}
    assert main(["rollback"]) == 0
    assert "rolled back: the starting model answers again instead of the model of" in capsys.readouterr().out
    assert main(["predict", "--json", str(dachshund)]) == 0
    assert json.loads(capsys.readouterr().out)["model_version"] == "lite0-v0"


def jobs_for(jobs: LifecycleJobs, predictor: Predictor, model_dir: Path | None = None) -> LifecycleJobs:
    return LifecycleJobs(
        engine=jobs.engine,
        predictor=predictor,
        model_dir=model_dir or jobs.model_dir,
        config=lifecycle_config(DEFAULTS),
        clock=jobs.clock,
    )


def _flipped(path: Path) -> bytes:
    """The photo mirrored: a new photo (new hash) of the same dog."""
    image = Image.open(path).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _darkened(path: Path) -> bytes:
    image = ImageEnhance.Brightness(Image.open(path).convert("RGB")).enhance(0.4)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_darker_photos_open_one_incident_and_expected_rebases_the_reference(env):
    """The scheduled check tells a shift once, with its facts; "Expected" makes the recent photos
    the reference, so the same photos no longer alarm; a manual check never opens an incident."""
    jobs, catalog, paths = env
    for path in paths[:40]:
        catalog.intake.submit(_darkened(path), source="telegram")
    lone = jobs.drift(NOW + timedelta(days=1))  # one alarm alone is not told (it may be chance)
    assert lone.drift and lone.extra["incident"] == {"id": None, "opened": False}
    first = jobs.drift(NOW + timedelta(days=2))  # the second in a row opens the incident
    assert first.drift and first.extra["incident"]["opened"]
    second = jobs.drift(NOW + timedelta(days=3))
    assert second.drift and second.extra["incident"] == {"id": first.extra["incident"]["id"], "opened": False}
    assert "incident" not in jobs.drift(NOW + timedelta(days=3), trigger="telegram").extra
    opened, _ = jobs.recent_events()
    assert [i.id for i in opened] == [first.extra["incident"]["id"]] and opened[0].alarms == 3
    facts = IncidentFacts.from_json(opened[0].facts)
    assert facts.kind == IncidentKind.SHIFT and DriftTest.BRIGHTNESS in facts.changed
    assert (
        facts.brightness[1] < facts.brightness[0] and len(facts.examples) == 2 and facts.chart == first.chart
    )
    accepted = jobs.accept_new_normal(opened[0].id, actor="1001", now=NOW + timedelta(days=3, hours=1))
    assert len(accepted.new_normal) == 30
    after = jobs.drift(NOW + timedelta(days=4))
    assert after.reference == "new_normal" and not after.drift and "incident" not in after.extra
    # Only photos received since the new normal was set are compared with it (none yet here): a
    # window reaching back past it would mix the photos already told with the new normal.
    assert after.current_n == 0 and "not enough photos" in after.reason


def test_a_promoted_model_trained_after_the_shift_closes_its_incident(env, predictor):
    jobs, catalog, paths = env
    for path in paths[:40]:
        catalog.intake.submit(_darkened(path), source="telegram")
    jobs.drift(NOW + timedelta(days=1))
    alarm = jobs.drift(NOW + timedelta(days=2))
    result = jobs.retrain(NOW + timedelta(days=2, hours=1), trigger="drift")
    assert result.promoted, result.reason  # it learns the two new breeds
    with open_session(jobs.engine) as session:
        incident = repo.incident(alarm.extra["incident"]["id"], session=session)
    assert incident.closed_how == IncidentClose.PROMOTED and incident.closed_by == result.version
    # The shift is the new normal: drift compares with the photos since it, not the model's older ones.
    assert incident.new_normal
    assert jobs.drift(NOW + timedelta(days=3)).reference == "new_normal"
