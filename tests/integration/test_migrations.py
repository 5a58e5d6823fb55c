"""Schema migrations on SQLite and PostgreSQL: upgrades keep data, and tables never drift from migrations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from storage import migrations, repository
from storage.db import make_engine, session
from storage.lifecycle_tables import DatasetItem
from storage.schema_revision import newest_revision
from storage.tables import Label, Photo, Prediction

NOW = datetime(2026, 1, 3, tzinfo=UTC)

# The first release's tables as it wrote them, spelled out here so later changes to the models do not
# change what this test inserts.
photo_v1 = sa.table(
    "photo",
    *(
        sa.column(c)
        for c in (
            "id",
            "sha256",
            "received_at",
            "source",
            "sender_id",
            "size_bytes",
            "width",
            "height",
            "brightness",
            "contrast",
            "saturation",
        )
    ),
)
prediction_v1 = sa.table(
    "prediction",
    *(
        sa.column(c)
        for c in (
            "id",
            "photo_id",
            "model_version",
            "created_at",
            "is_dog",
            "dog_probability",
            "breed",
            "confidence",
            "top",
            "embedding",
            "auto_accepted",
        )
    ),
)
label_v1 = sa.table(
    "label",
    *(sa.column(c) for c in ("id", "photo_id", "prediction_id", "breed", "source", "user_id", "created_at")),
)


def fill_first_release(connection) -> None:
    when = (
        "2026-01-02 03:04:05+00:00"
        if connection.dialect.name == "postgresql"
        else "2026-01-02 03:04:05.000000"
    )
    connection.execute(
        photo_v1.insert(),
        [
            {
                "id": i,
                "sha256": f"{i:064x}",
                "received_at": when,
                "source": "telegram",
                "sender_id": 5_000_000_000 + i,
                "size_bytes": 100,
                "width": 10,
                "height": 10,
                "brightness": 0.5,
                "contrast": 0.2,
                "saturation": 0.3,
            }
            for i in (1, 2)
        ],
    )
    connection.execute(
        prediction_v1.insert(),
        [
            {
                "id": 1,
                "photo_id": 1,
                "model_version": "lite0-v0",
                "created_at": when,
                "is_dog": True,
                "dog_probability": 0.9,
                "breed": "pug",
                "confidence": 0.8,
                "top": '[{"breed": "pug", "p": 0.8}]',
                "embedding": b"\x00\x00\x80?",
                "auto_accepted": True,
            }
        ],
    )
    connection.execute(
        label_v1.insert(),
        [
            {
                "id": 1,
                "photo_id": 1,
                "prediction_id": 1,
                "breed": "pug",
                "source": "auto_accepted",
                "user_id": None,
                "created_at": when,
            },
            {
                "id": 2,
                "photo_id": 2,
                "prediction_id": None,
                "breed": "boxer",
                "source": "staff",
                "user_id": 2002,
                "created_at": when,
            },
        ],
    )
    if connection.dialect.name == "postgresql":
        for table in ("photo", "prediction", "label"):
            connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)")


def assert_first_release_rows_kept(engine) -> None:
    with session(engine) as s:
        photos = s.exec(select(Photo).order_by(Photo.id)).all()
        assert [(p.id, p.sha256, p.sender_id) for p in photos] == [
            (1, f"{1:064x}", 5_000_000_001),
            (2, f"{2:064x}", 5_000_000_002),
        ]
        assert photos[0].received_at.year == 2026
        prediction = repository.latest_prediction(1, session=s)
        assert prediction.top == [{"breed": "pug", "p": 0.8}]
        assert repository.embedding_from_bytes(prediction.embedding).tolist() == [1.0]
        assert [label.breed for label in s.exec(select(Label).order_by(Label.id))] == ["pug", "boxer"]
        s.add(Label(photo_id=2, breed="pug", source="admin", user_id=1001))  # ids carry on after the old ones
        s.commit()


def migrate(engine, revision: str, location: Path = migrations.HERE) -> None:
    with engine.begin() as connection:
        command.upgrade(migrations.config(connection, location=location), revision)


def test_the_tables_and_the_migrations_agree(database_url):
    """`alembic check`: a table change without a migration fails here (write one: `dogbot db revision`)."""
    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], f"the tables differ from the migrations' head; add a migration: {differences}"
    engine.dispose()


def test_a_database_from_the_first_release_is_upgraded_and_keeps_its_rows(database_url):
    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, migrations.FIRST_RELEASE)
    with engine.begin() as connection:
        fill_first_release(connection)
    before, after = migrations.upgrade(engine)  # what `dogbot db upgrade` does
    assert (before, after) == (migrations.FIRST_RELEASE, migrations.head())
    engine.dispose()

    engine = make_engine(database_url)  # a normal start finds the schema current
    assert migrations.current(engine) == migrations.head()
    assert_first_release_rows_kept(engine)
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted(database_url):
    """Tables but no alembic_version (the pre-release skeleton): stamped at the first release, kept."""
    engine = make_engine(database_url, prepare_schema=False)
    core = [
        SQLModel.metadata.tables[name]
        for name in ("dog", "photo", "prediction", "label", "custombreed", "member")  # photo names dog now
    ]
    with engine.begin() as connection:
        SQLModel.metadata.create_all(connection, tables=core)
        fill_first_release(connection)
    assert migrations.upgrade(engine) == (None, migrations.head())
    assert set(SQLModel.metadata.tables) <= set(sa.inspect(engine).get_table_names())  # lifecycle tables too
    if engine.dialect.name == "sqlite":  # the file as it was, saved before anything was written to it
        assert Path(f"{engine.url.database}.before-migrations").is_file()
    engine.dispose()
    engine = make_engine(database_url)
    assert_first_release_rows_kept(engine)
    engine.dispose()


def test_a_new_database_is_created_at_head(database_url):
    engine = make_engine(database_url)
    assert migrations.current(engine) == migrations.head()
    assert migrations.prepare(engine) == migrations.head()  # a second start changes nothing
    engine.dispose()


@pytest.fixture
def next_release(tmp_path) -> Path:
    """A copy of our migrations plus one more revision, as the next release would ship them."""
    location = tmp_path / "migrations"
    shutil.copytree(migrations.HERE, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "0999_next.py").write_text(
        f'''"""next release: a table for notes"""

import sqlalchemy as sa
from alembic import op

revision = "0999_next"
down_revision = {migrations.head()!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("text", sa.Text()))


def downgrade() -> None:
    op.drop_table("note")
'''
    )
    return location


def test_an_older_database_is_upgraded_on_sqlite_and_refused_on_postgres(database_url, next_release):
    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, migrations.FIRST_RELEASE)
    with engine.begin() as connection:
        fill_first_release(connection)
    migrate(engine, "head")  # this release's schema, with this release's data

    if engine.dialect.name == "sqlite":
        assert migrations.prepare(engine, location=next_release) == "0999_next"
        saved = Path(f"{engine.url.database}.before-{migrations.head()}")
        assert saved.is_file()  # the file as it was, in case the migration goes wrong
    else:
        with pytest.raises(migrations.SchemaError, match="dogbot db upgrade"):
            migrations.prepare(engine, location=next_release)
        assert migrations.current(engine) == migrations.head()  # refused: nothing changed
        assert migrations.upgrade(engine, location=next_release) == (migrations.head(), "0999_next")
    assert "note" in sa.inspect(engine).get_table_names()
    assert_first_release_rows_kept(engine)
    engine.dispose()


def test_a_database_from_a_newer_dogbot_is_refused(database_url):
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(migrations.SchemaError, match="newer version"):
        make_engine(database_url)


def test_dogbot_db_upgrade_from_the_command_line(tmp_path):
    env = {**os.environ, "DOGBOT_DATA_DIR": str(tmp_path)}
    env.pop("DOGBOT_DATABASE_URL", None)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dogbot")), "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert migrations.head() in result.stdout
    assert "serving model lite0 ready" in result.stdout  # exported (or found intact) at install
    engine = make_engine(f"sqlite:///{tmp_path / 'dogbot.db'}", prepare_schema=False)
    assert migrations.current(engine) == migrations.head()
    engine.dispose()


def test_duplicate_predictions_are_merged_into_the_newest_by_the_upgrade(database_url):
    """Two predictions by one model for one photo (the race before 0003): the newest stays, labels follow."""
    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, "0002_shared_models_and_rates")
    with engine.begin() as connection:
        fill_first_release(connection)
        row = {
            "photo_id": 1, "model_version": "lite0-v0", "created_at": "2026-01-02 03:04:06+00:00",
            "is_dog": True, "dog_probability": 0.9, "breed": "pug", "confidence": 0.8,
            "top": '[{"breed": "pug", "p": 0.8}]', "embedding": b"\x00\x00\x80?", "auto_accepted": False,
        }  # fmt: skip
        connection.execute(
            prediction_v1.insert(), [{**row, "id": 7}, {**row, "id": 8, "model_version": "lite0-v1"}]
        )
        label = {"id": 3, "photo_id": 1, "prediction_id": 1, "breed": "boxer", "source": "staff"}
        connection.execute(label_v1.insert(), [{**label, "user_id": 2002, "created_at": row["created_at"]}])
    migrate(engine, "head")
    with session(engine) as s:
        predictions = s.exec(select(Prediction).order_by(Prediction.id)).all()
        assert [(p.id, p.model_version) for p in predictions] == [(7, "lite0-v0"), (8, "lite0-v1")]
        assert {label.id: label.prediction_id for label in s.exec(select(Label))} == {1: 7, 2: None, 3: 7}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(prediction_v1.insert(), [{**row, "id": 9}])
    engine.dispose()


# The dataset tables as 0001-0003 wrote them: every version listed every photo.
dataset_version_v3 = sa.table(
    "datasetversion",
    *(
        sa.column(c)
        for c in (
            "id",
            "created_at",
            "last_label_id",
            "n_items",
            "n_train",
            "n_val",
            "counts",
            "conflicts",
            "trigger",
        )
    ),
)
dataset_item_v3 = sa.table(
    "datasetitem",
    *(
        sa.column(c)
        for c in (
            "id",
            "dataset_version",
            "photo_id",
            "prediction_id",
            "label",
            "source",
            "split",
            "conflict",
        )
    ),
)


def test_dataset_versions_that_copied_the_catalog_stay_readable_and_later_folds_write_changes(database_url):
    """Before 0004 every version listed every photo; after it they read the same, and can be pruned."""
    from jobs.fold import fold, prune
    from storage import lifecycle_repository as repo

    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, "0003_one_prediction_per_model")
    with engine.begin() as connection:
        fill_first_release(connection)
        version = {
            "created_at": "2026-01-02 03:04:06+00:00",
            "n_train": 0,
            "conflicts": "[]",
            "trigger": "cli",
        }
        connection.execute(
            dataset_version_v3.insert(),
            [
                {**version, "id": 1, "last_label_id": 1, "n_items": 1, "n_val": 1,
                 "counts": '{"pug": {"val": 1}}'},
                {**version, "id": 2, "last_label_id": 2, "n_items": 2, "n_val": 2,
                 "counts": '{"boxer": {"val": 1}, "pug": {"val": 1}}'},
            ],
        )  # fmt: skip
        item = {
            "prediction_id": None,
            "split": "val",
            "conflict": False,
            "label": "pug",
            "source": "auto_accepted",
        }
        connection.execute(
            dataset_item_v3.insert(),
            [
                {**item, "id": 1, "dataset_version": 1, "photo_id": 1},
                {**item, "id": 2, "dataset_version": 2, "photo_id": 1},
                {**item, "id": 3, "dataset_version": 2, "photo_id": 2, "label": "boxer", "source": "staff"},
            ],
        )
        if connection.dialect.name == "postgresql":
            for table, last in (("datasetversion", 2), ("datasetitem", 3)):
                connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
    migrate(engine, "head")

    def read(version: int) -> dict[int, str]:
        with session(engine) as s:
            return {i.photo_id: i.label for i in repo.dataset_items(version, session=s)}

    assert read(1) == {1: "pug"} and read(2) == {1: "pug", 2: "boxer"}
    with session(engine) as s:
        s.add(Label(photo_id=2, breed="pug", source="admin", user_id=1001))
        s.commit()
    folded = fold(engine, now=NOW, val_share=1.0, golden_size=0)
    assert folded.created and folded.version == 3 and folded.n_changed == 1  # one row, not a copy
    assert folded.counts == {"pug": {"val": 2}} and folded.n_items == 2 and folded.conflicts == [2]
    assert read(3) == {1: "pug", 2: "pug"} and read(2) == {1: "pug", 2: "boxer"}

    pruned = prune(engine)  # no model was trained on any of them: only the newest stays
    assert pruned.removed == [1, 2] and pruned.kept == 1
    assert read(3) == {1: "pug", 2: "pug"}
    with session(engine) as s:
        assert len(s.exec(select(DatasetItem)).all()) == 2
    engine.dispose()


def test_the_head_read_from_the_files_is_alembics_head(next_release):
    """A start that finds the schema current reads the head from the files without importing Alembic."""
    assert newest_revision(migrations.HERE) == migrations.head()
    assert newest_revision(next_release) == "0999_next" == migrations.head(location=next_release)


def test_every_photo_of_the_previous_release_becomes_its_own_dog(database_url):
    """0006_dogs: one dog per photo, numbered by year in photo order; labels and predictions untouched."""
    from storage.tables import Dog

    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, "0003_one_prediction_per_model")
    with engine.begin() as connection:
        fill_first_release(connection)
    migrate(engine, "head")
    with session(engine) as s:
        dogs = s.exec(select(Dog).order_by(Dog.id)).all()
        assert [(d.code, d.year, d.serial, d.sender_id) for d in dogs] == [
            ("D-2026-0001", 2026, 1, 5_000_000_001),
            ("D-2026-0002", 2026, 2, 5_000_000_002),
        ]
        assert [p.dog_id for p in s.exec(select(Photo).order_by(Photo.id))] == [d.id for d in dogs]
        assert dogs[0].intake_at.year == 2026
        s.add(Dog(code="D-2026-0003", year=2026, serial=3, source="telegram"))  # ids carry on
        s.commit()
    engine.dispose()
    engine = make_engine(database_url)
    assert_first_release_rows_kept(engine)
    engine.dispose()


def test_answers_asked_although_sure_are_marked_held_back_on_upgrade(database_url):
    """0011: before it, a breed answer of 0.7 or more that was asked was held back for a look-alike;
    the rule for asking leaves those out of what it learns (dogbot/core/asking.py)."""
    engine = make_engine(database_url, prepare_schema=False)
    migrate(engine, "0010_one_dog_record")
    with engine.begin() as connection:
        fill_first_release(connection)  # photo 1: auto-accepted at 0.8
        connection.execute(
            prediction_v1.insert(),
            [
                {
                    "id": 2 + i,
                    "photo_id": 2,
                    "model_version": f"lite0-v{1 + i}",
                    "created_at": "2026-01-02 03:04:05+00:00",
                    "is_dog": True,
                    "dog_probability": 0.9,
                    "breed": "pug",
                    "confidence": confidence,
                    "top": "[]",
                    "embedding": b"\x00\x00\x80?",
                    "auto_accepted": False,
                }
                for i, confidence in enumerate((0.85, 0.4))
            ],
        )
    migrate(engine, "head")
    with session(engine) as s:
        marked = {p.id: (p.held_back, p.spot_check) for p in s.exec(select(Prediction))}
    assert marked == {1: (False, False), 2: (True, False), 3: (False, False)}
    engine.dispose()
