"""What each `dogbot` command loads at start: only what it uses (issue 14: a CLI that answers at once).

How long they take is measured in bench/bench_cli.py; here, which heavy packages each one imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "torch",
    "timm",
    "alembic",
    "sklearn",
    "scipy",
    "matplotlib",
    "telegram",
    "onnxruntime",
    "sqlalchemy",
)
# Runs one command in a fresh interpreter and prints the heavy packages it imported.
SCRIPT = f"""
import contextlib, io, json, sys
from dogbot import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    cli.main(sys.argv[1:])
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))))
"""


def loaded(tmp_path: Path, *args: str) -> list[str]:
    env = {**os.environ, "DOGBOT_DATA_DIR": str(tmp_path / "data")}
    env.pop("DOGBOT_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_no_database_and_no_model(tmp_path):
    assert loaded(tmp_path, "--help") == []


@pytest.mark.slow
def test_predict_and_models_load_neither_torch_nor_migrations_nor_the_jobs_statistics(
    tmp_path, eval_data_dir, shared_manifest, serving_backbone_dir
):
    photo = eval_data_dir / shared_manifest("manifest.csv")[0]["path"]
    # The first start creates the database (Alembic stamps it) and registers the base model.
    assert "torch" not in loaded(tmp_path, "predict", "--json", str(photo))
    # Later starts read the SQLite catalog without the ORM (dogbot.app.predictor_without_orm).
    assert loaded(tmp_path, "predict", "--json", str(photo)) == ["onnxruntime"]
    assert loaded(tmp_path, "models") == ["sqlalchemy"]  # the registry: no model loaded to list models
