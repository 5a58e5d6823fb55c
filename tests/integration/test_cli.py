"""The `dogbot` command line as users run it: a subprocess of the installed console script."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOGBOT = str(Path(sys.executable).with_name("dogbot"))


def run_cli(*args: str, data_dir: Path, check_status: int | None = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOGBOT_DATA_DIR": str(data_dir), "DOGBOT_TORCH_THREADS": "1"}
    env.pop("DOGBOT_DATABASE_URL", None)
    result = subprocess.run([DOGBOT, *args], capture_output=True, text=True, env=env, timeout=600)
    if check_status is not None:
        assert result.returncode == check_status, result.stderr
    return result


def write_manifest(path: Path, rows: list[dict], eval_data_dir: Path) -> Path:
    """A CSV in our temp dir whose ``path`` column is relative to it, like a shelter's own list."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "breed", "imagenet_overlap"])
        writer.writeheader()
        for row in rows:
            relative = os.path.relpath(eval_data_dir / row["path"], path.parent)
            writer.writerow(
                {"path": relative, "breed": row["breed"], "imagenet_overlap": row["imagenet_overlap"]}
            )
    return path


def test_predict_json_reports_each_file_and_fails_on_an_unreadable_one(
    tmp_path, shared_manifest, eval_data_dir
):
    dog = next(
        r for r in shared_manifest("manifest.csv") if r["breed"] == "pug" and r["imagenet_overlap"] == "no"
    )
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    result = run_cli(
        "predict", "--json", str(eval_data_dir / dog["path"]), str(junk), data_dir=tmp_path, check_status=1
    )
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert set(first) == {"path", "is_dog", "breed", "confidence", "dog_probability", "top", "model_version"}
    assert first["is_dog"] and first["breed"] == "Pug" and first["model_version"] == "lite0-v0"
    assert len(first["top"]) == 3 and set(first["top"][0]) == {"breed", "p"}
    assert first["confidence"] == first["top"][0]["p"]
    assert set(second) == {"path", "error"} and "image" in second["error"]
    assert not (tmp_path / "photos").exists()  # predict stores no photo


def test_predict_json_for_not_a_dog_agrees_with_its_top(tmp_path, shared_manifest, eval_data_dir):
    """Issue 14: "not a dog" with confidence 0.99 while `top` led with a breed."""
    others = [r for r in shared_manifest("manifest.csv") if r["breed"] == "not_a_dog"][:6]
    result = run_cli(
        "predict", "--json", *(str(eval_data_dir / r["path"]) for r in others), data_dir=tmp_path
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    not_dogs = [r for r in records if not r["is_dog"]]
    assert not_dogs, records
    for record in not_dogs:
        assert record["top"][0]["breed"] == "Not a dog" and record["confidence"] == record["top"][0]["p"]
        assert all(entry["p"] <= record["confidence"] for entry in record["top"][1:])
        assert sum(entry["p"] for entry in record["top"]) <= 1.0001


def test_every_quirky_file_is_classified_or_clearly_rejected(tmp_path, shared_manifest, eval_data_dir):
    quirky = [eval_data_dir / r["path"] for r in shared_manifest("manifest.csv") if r["quirks"]]
    result = run_cli("predict", "--json", *map(str, quirky), data_dir=tmp_path, check_status=None)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(quirky)
    assert all(("top" in line) or line.get("error") for line in lines)
    assert result.returncode in (0, 1), result.stderr


def test_import_then_export_and_ingest_waits_for_review(tmp_path, shared_manifest, eval_data_dir):
    rows = shared_manifest("manifest.csv")
    labeled = [r for r in rows if r["breed"] == "pug"][:2] + [r for r in rows if r["breed"] == "beagle"][:2]
    labeled += [r for r in shared_manifest("other_breeds.csv") if r["breed"] == "shiba_inu"][:2]
    manifest = write_manifest(tmp_path / "labeled.csv", labeled, eval_data_dir)
    data_dir = tmp_path / "data"
    result = run_cli("import", "--manifest", str(manifest), data_dir=data_dir)
    assert "6 photos stored (6 new" in result.stdout
    assert "0 waiting for staff review" in result.stdout  # imported photos come with their labels

    again = run_cli("import", "--manifest", str(manifest), data_dir=data_dir)
    assert "0 new, 6 already known" in again.stdout

    camera = tmp_path / "camera"
    camera.mkdir()
    for row in [r for r in rows if r["breed"] == "Chihuahua"][:2]:
        (camera / Path(row["path"]).name).write_bytes((eval_data_dir / row["path"]).read_bytes())
    ingested = run_cli("ingest", str(camera), data_dir=data_dir)
    # Each photo is a dog of its own: staff find them by their codes (issue 27).
    made = [line for line in ingested.stdout.splitlines() if re.search(r"\.jpe?g: D-\d{4}-\d{4}\b", line)]
    assert len(made) == 2, ingested.stdout

    out = tmp_path / "catalog.csv"
    run_cli("export", "--out", str(out), data_dir=data_dir)
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(exported) == 8
    imported = [r for r in exported if r["label_source"] == "import"]
    assert sorted({r["label"] for r in imported}) == ["Beagle", "Pug", "Shiba Inu"]
    assert all(r["model_version"] == "lite0-v0" and r["predicted_breed"] for r in exported)


def test_import_adds_new_breeds_and_keeps_going_past_a_label_that_is_not_a_breed(
    tmp_path, shared_manifest, eval_data_dir
):
    others = shared_manifest("other_breeds.csv")
    unlabelled = [r for r in others if r["breed"].startswith("unlabelled_dog:")][:1]
    assert unlabelled, "the shared CSV has rows labelled unlabelled_dog:<file>"
    beagle = [r for r in shared_manifest("manifest.csv") if r["breed"] == "beagle"][:1]
    new_breed = [dict(beagle[0], breed="Kangal Shepherd")]  # a breed no list of ours has
    manifest = write_manifest(tmp_path / "labeled.csv", unlabelled + new_breed, eval_data_dir)
    data_dir = tmp_path / "data"
    refused = run_cli("import", "--manifest", str(manifest), data_dir=data_dir, check_status=1)
    assert "Kangal Shepherd" in refused.stderr and "--add-breeds" in refused.stderr
    result = run_cli("import", "--add-breeds", "--manifest", str(manifest), data_dir=data_dir)
    assert "new breeds added: Kangal Shepherd" in result.stdout
    assert "2 photos stored (1 new, 1 already known)" in result.stdout  # the unlabelled one came first
    assert "not breed names" in result.stderr and unlabelled[0]["breed"] in result.stderr

    out = tmp_path / "catalog.csv"
    run_cli("export", "--out", str(out), data_dir=data_dir)
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(exported) == 2
    imported = [r for r in exported if r["label_source"] == "import"]
    assert [r["label"] for r in imported] == ["Kangal Shepherd"]
    # The unlabelled photo is in the catalog as if staff had sent it: the model's answer or a question.
    [other] = [r for r in exported if r["label_source"] != "import"]
    assert other["predicted_breed"] and "unlabelled" not in other["label"].lower()


def test_import_folders_forgive_typos_and_never_invent_a_breed(tmp_path, shared_manifest, eval_data_dir):
    """Issue 14: a folder named "german shepard" became a new breed "German Shepard"."""
    rows = shared_manifest("manifest.csv")
    folders = tmp_path / "photos"
    for folder, breed in (("german shepard", "German shepherd"), ("shepherd", "collie")):
        (folders / folder).mkdir(parents=True)
        for row in [r for r in rows if r["breed"] == breed][:1]:
            (folders / folder / Path(row["path"]).name).write_bytes(
                (eval_data_dir / row["path"]).read_bytes()
            )
    data_dir = tmp_path / "data"
    result = run_cli("import", "--add-breeds", str(folders), data_dir=data_dir, check_status=1)
    assert "“german shepard” taken as German Shepherd" in result.stdout
    assert "“shepherd” could be" in result.stderr and "not imported" in result.stderr
    assert "new breeds added" not in result.stdout
    out = tmp_path / "catalog.csv"
    run_cli("export", "--out", str(out), data_dir=data_dir)
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["label"] for r in exported] == ["German Shepherd"]


def test_eval_json_on_a_small_manifest(tmp_path, shared_manifest, eval_data_dir):
    rows = shared_manifest("manifest.csv")
    sample = [r for r in rows if r["imagenet_overlap"] == "no"][:20] + [
        r for r in rows if r["breed"] == "not_a_dog"
    ][:5]
    manifest = write_manifest(tmp_path / "sample.csv", sample, eval_data_dir)
    report = json.loads(run_cli("eval", "--manifest", str(manifest), "--json", data_dir=tmp_path).stdout)
    assert report["n"] == 25 and report["n_dogs"] == 20
    assert 0.5 <= report["top1"] <= report["top3"] <= 1.0
    assert set(report["auto_accept"]) == {"0.95", "0.98", "0.99"}


@pytest.mark.slow
def test_dev_set_accuracy_meets_the_bar(predictor, eval_data_dir):
    """The recognition-core acceptance numbers, on the whole shared dev manifest."""
    from dataclasses import replace

    from conftest import default_settings

    from dogbot.app import intake_rules
    from dogbot.core.evaluation import evaluate
    from dogbot.core.manifest import read_manifest
    from dogbot.core.taxonomy import Taxonomy

    rules = replace(intake_rules(default_settings()), dog_threshold=0.5)
    rows = read_manifest(eval_data_dir / "manifest.csv")
    report = evaluate(predictor, Taxonomy(), rows, rules=rules, combine=default_settings().dog_combine)
    assert report.n_dogs >= 500 and not report.unknown_labels and not report.errors
    assert report.top1 >= 0.78 and report.top3 >= 0.92
    assert report.top1_unseen >= 0.77 and report.top3_unseen >= 0.92  # not ImageNet images
    assert report.not_a_dog_recall >= 0.9 and report.not_a_dog_precision >= 0.9


def test_run_without_telegram_says_so_in_one_line(tmp_path):
    """Issue 14: two ~80-line tracebacks instead of "cannot reach Telegram"."""
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(tmp_path),
        "DOGBOT_TELEGRAM_TOKEN": "123456:unreachable",
        "DOGBOT_TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",  # the discard port: nothing listens
        "DOGBOT_TELEGRAM_BASE_FILE_URL": "http://127.0.0.1:9/file/bot",
        "DOGBOT_TELEGRAM_START_RETRIES": "1",
    }
    result = subprocess.run([DOGBOT, "run"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Cannot reach Telegram at 127.0.0.1:9" in lines[0], result.stderr
    assert "123456:unreachable" not in result.stderr


def test_export_says_what_it_wrote(tmp_path):
    from storage.db import make_engine

    out = tmp_path / "catalog.csv"
    refused = run_cli("export", "--out", str(out), data_dir=tmp_path / "data", check_status=2)
    assert f"no catalog at {tmp_path / 'data' / 'dogbot.db'}" in refused.stderr  # none made either
    assert not (tmp_path / "data").exists() and not out.exists()
    make_engine(f"sqlite:///{tmp_path / 'data' / 'dogbot.db'}").dispose()  # a new shelter's catalog
    result = run_cli("export", "--out", str(out), data_dir=tmp_path / "data")
    assert result.stdout.strip() == f"exported 0 photos to {out}"
