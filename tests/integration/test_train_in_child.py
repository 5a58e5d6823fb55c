"""The bot never loads torch: its retrains (asked for, or run by its own scheduler) go to a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Run in a fresh interpreter: the test process itself has torch loaded by other tests.
SCRIPT = """
import json, sys
from pathlib import Path

from dogbot.app import Container
from dogbot.core.bulk import BulkItem, submit_files
from dogbot.settings import Settings

data_dir, photos = sys.argv[1], json.loads(sys.argv[2])
container = Container(Settings(_env_file=None, data_dir=data_dir), train_in_child=True)
taxonomy = container.catalog.breeds.taxonomy
items = [BulkItem(Path(path), taxonomy.resolve(breed).key) for path, breed in photos]
submit_files(container.catalog, items, source="import")
steps = []
result = container.lifecycle.retrain(trigger="manual", actor="test", progress=lambda s: steps.append(s.step))
print(json.dumps({
    "version": result.version, "reason": result.reason, "steps": steps,
    "champion": container.predictor.model_version, "torch": "torch" in sys.modules,
}))
"""


@pytest.mark.slow
def test_a_retrain_in_the_bots_process_trains_in_a_child_and_loads_no_torch_here(
    tmp_path, shared_manifest, eval_data_dir, serving_backbone_dir
):
    rows = [
        r for r in shared_manifest("manifest.csv") if r["breed"] in ("pug", "beagle", "boxer", "pomeranian")
    ]
    photos = [(str(eval_data_dir / r["path"]), r["breed"]) for r in rows[:24]]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), json.dumps(photos)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["version"] == "lite0-v1", answer["reason"]  # trained (with torch) in the child
    assert "fold" in answer["steps"]  # progress came back
    assert answer["torch"] is False
