"""Tables of the lifecycle jobs: dataset versions, the model registry, drift reports, job runs and locks.

* ``DatasetVersion`` / ``DatasetItem`` — an immutable, numbered dataset: what each photo is
  (resolved label, train or validation split), made by the fold job. A version stores only what
  changed against its ``parent`` (the version before it): one item per photo added, relabelled or
  removed, so a fold with one new label writes one row, not one per catalog photo. A version with
  no parent (the first, each one made before migration 0004, the oldest kept after pruning) holds
  every photo. ``storage.lifecycle_repository.dataset_items`` puts a version together on demand:
  each photo's item from the newest version in its chain back to that complete one. Items are
  never changed; pruning a version no model needs deletes those of its items no kept version reads.
* ``GoldenItem`` — a fixed set of validation photos every candidate model is compared on; filled
  once from the first folds and then frozen.
* ``ModelVersion`` — every trained head: artifact and hash, dataset version, breeds, metrics, who or
  what triggered it, and whether it passed the promotion gates (with the reason).
* ``ModelArtifact`` — the bytes of each file a trained head was saved as (tensors, JSON sidecar),
  written with its ``ModelVersion``: every process loads a model from the database, so replicas on
  other machines need no shared model folder. Kept apart from ``ModelVersion`` so listing models
  never reads megabytes.
* ``AliasMove`` — append-only log of where the ``champion`` alias pointed, when, why and by whom:
  the serving model is the last move's target; rollback is a move too.
* ``DriftReport`` — one row per drift check, tests as JSON.
* ``DriftIncident`` — one shift in the photos, as admins hear of it: opened by the first scheduled
  alarm (the one message sent), later alarms folded in, closed by a promoted model trained on
  photos from after it or by an admin accepting the photos as the new normal (which rebases the
  drift reference on them).
* ``JobRun`` — when each scheduled job last ran and how it ended (re-registration at start uses it).
* ``JobLock`` — a lease with owner and expiry, so two workers never train at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import JSON, Field, SQLModel

from storage.tables import utcnow
from storage.vocabulary import ModelStatus, RunStatus


class DatasetVersion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)  # the version number
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Every label with id <= this was folded in; the next fold starts after it.
    last_label_id: int = 0
    n_items: int = 0
    n_train: int = 0
    n_val: int = 0
    counts: dict = Field(default_factory=dict, sa_type=JSON)  # label -> {"train": n, "val": n}
    conflicts: list = Field(default_factory=list, sa_type=JSON)  # photo ids where people disagreed
    trigger: str = Field(default="schedule", max_length=32)
    # The version whose dataset this one changes; None: this version lists every photo itself. Not a
    # foreign key: SQLite could only add one by rebuilding the table.
    parent: int | None = None
    n_changed: int = 0  # items this version wrote (photos added, relabelled or removed)
    pruned: bool = False  # no model needed it: no longer readable, only items later versions read are kept


class DatasetItem(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dataset_version", "photo_id"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_version: int = Field(foreign_key="datasetversion.id", index=True)
    photo_id: int = Field(foreign_key="photo.id", index=True)
    prediction_id: int | None = Field(default=None, foreign_key="prediction.id")  # whose embedding to use
    label: str = Field(max_length=64)  # breed key, mixed_breed or not_a_dog
    source: str = Field(max_length=16)  # of the deciding label: staff, admin, import, auto_accepted
    split: str = Field(max_length=8)
    conflict: bool = False
    removed: bool = False  # the photo left the dataset in this version (its other fields: as before)


class GoldenItem(SQLModel, table=True):
    photo_id: int = Field(primary_key=True, foreign_key="photo.id")
    label: str = Field(max_length=64)
    added_in: int = Field(foreign_key="datasetversion.id")
    added_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64, unique=True, index=True)  # lite0-v3
    backbone: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    artifact: str | None = Field(default=None, max_length=255)  # file name under the model folder
    sha256: str | None = Field(default=None, max_length=64)
    dataset_version: int | None = Field(default=None, foreign_key="datasetversion.id")
    breed_keys: list = Field(default_factory=list, sa_type=JSON)
    metrics: dict = Field(default_factory=dict, sa_type=JSON)
    report: str | None = Field(default=None, max_length=255)  # error-analysis PNG under the model folder
    trigger: str = Field(default="manual", max_length=32)  # base, manual, schedule, new_labels, drift
    actor: str | None = Field(default=None, max_length=64)  # user id, "cli", "worker"
    status: str = Field(default=ModelStatus.CANDIDATE, max_length=16, index=True)
    reason: str = Field(default="", max_length=1000)


class ModelArtifact(SQLModel, table=True):
    version: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=255)  # file name under the model folder
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AliasMove(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    alias: str = Field(default="champion", max_length=32, index=True)
    from_version: str | None = Field(default=None, max_length=64)
    to_version: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # init, promote, rollback
    moved_at: datetime = Field(default_factory=utcnow)
    reason: str = Field(default="", max_length=1000)
    actor: str | None = Field(default=None, max_length=64)


class DriftReport(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    drift: bool = False
    model_version: str = Field(max_length=64)
    reference: str = Field(max_length=32)  # "training" (the champion's training photos) or "first_window"
    reference_n: int = 0
    current_n: int = 0
    current_from: datetime | None = None
    current_to: datetime | None = None
    tests: list = Field(default_factory=list, sa_type=JSON)
    chart: str | None = Field(default=None, max_length=255)
    trigger: str = Field(default="schedule", max_length=32)


class DriftIncident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    opened_at: datetime = Field(default_factory=utcnow, index=True)
    report_id: int = Field(foreign_key="driftreport.id")  # the alarm that opened it
    last_report_id: int = Field(foreign_key="driftreport.id")  # the latest alarm folded into it
    alarms: int = 1  # scheduled alarms it stands for, the opening one included
    kind: str = Field(max_length=16)  # the values: storage.vocabulary.IncidentKind
    model_version: str = Field(max_length=64)  # serving when it opened
    # What the message to admins says (jobs.incidents.IncidentFacts.to_json): what changed, since
    # when, how many photos, examples, new breeds, whether the answers suffered.
    facts: dict = Field(default_factory=dict, sa_type=JSON)
    closed_at: datetime | None = Field(default=None, index=True)
    closed_how: str | None = Field(default=None, max_length=16)  # storage.vocabulary.IncidentClose
    closed_by: str | None = Field(default=None, max_length=64)  # the promoted version, or the admin
    # "Expected": the drift reference is the photos accepted as normal, these ids (the last window).
    new_normal: list | None = Field(default=None, sa_type=JSON)


class JobRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=32, index=True)  # fold, drift, retrain
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    status: str = Field(default=RunStatus.RUNNING, max_length=16)  # the values: storage.vocabulary.RunStatus
    detail: dict = Field(default_factory=dict, sa_type=JSON)


class JobLock(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=32)
    owner: str = Field(max_length=128)
    acquired_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
