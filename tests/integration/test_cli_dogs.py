"""Dogs on the command line: `ingest --dog`, `eval` with a `dog` column, `export --format asm3`."""

import base64
import csv
import io
import json
import os

from PIL import Image
from test_cli import run_cli, write_manifest

from dogbot.core.shelter_export import ASM3_COLUMNS

# Animal Shelter Manager 3's importer fields (csvimport.py VALID_FIELDS), those a dog row can use.
ASM3_IMPORTER_FIELDS = {
    "ANIMALCODE", "ANIMALNAME", "ANIMALSEX", "ANIMALTYPE", "ANIMALCOLOR", "ANIMALBREED1", "ANIMALBREED2",
    "ANIMALDOB", "ANIMALSPECIES", "ANIMALAGE", "ANIMALCOMMENTS", "ANIMALDESCRIPTION", "ANIMALENTRYDATE",
    "ANIMALIMAGE", "ANIMALMICROCHIP", "ANIMALNEUTERED", "ANIMALLOCATION",
}  # fmt: skip


def test_ingest_one_dog_then_export_it_for_shelter_software(tmp_path, shared_manifest, eval_data_dir):
    rows = [r for r in shared_manifest("manifest.csv") if r["breed"] == "golden retriever"][:3]
    data_dir = tmp_path / "data"
    result = run_cli(
        "ingest", "--dog", "Max", *(str(eval_data_dir / r["path"]) for r in rows), data_dir=data_dir
    )
    code_line = result.stdout.strip().splitlines()[-1]
    assert code_line.startswith("D-") and " Max: " in code_line and "3 photos" in code_line, code_line
    code = code_line.split()[0]
    assert "Golden Retriever" in code_line or "waiting for staff review" in code_line
    alone = next(r for r in shared_manifest("manifest.csv") if r["breed"] == "pug")
    run_cli("ingest", str(eval_data_dir / alone["path"]), data_dir=data_dir)

    photos_csv = tmp_path / "photos.csv"
    run_cli("export", "--out", str(photos_csv), data_dir=data_dir)
    with photos_csv.open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[-1] == "dog_code"
        by_dog = [r["dog_code"] for r in reader]
    assert by_dog.count(code) == 3 and len(set(by_dog)) == 2

    out = tmp_path / "asm.csv"
    run_cli("export", "--format", "asm3", "--out", str(out), data_dir=data_dir)
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == ASM3_COLUMNS and set(reader.fieldnames) <= ASM3_IMPORTER_FIELDS
        exported = list(reader)
    assert len(exported) == 2  # one row per dog, not per photo
    max_row = next(r for r in exported if r["ANIMALCODE"] == code)
    assert (max_row["ANIMALNAME"], max_row["ANIMALSPECIES"], max_row["ANIMALSEX"]) == (
        "Max",
        "Dog",
        "Unknown",
    )
    other = next(r for r in exported if r["ANIMALCODE"] != code)
    assert other["ANIMALNAME"] == other["ANIMALCODE"]  # ASM needs a name: the code stands in
    assert len(max_row["ANIMALENTRYDATE"]) == 10 and max_row["ANIMALENTRYDATE"][4] == "-"
    # ASM refuses an animal without an age, and files an unnamed type or breed under a cat's.
    assert float(max_row["ANIMALAGE"]) > 0 and max_row["ANIMALTYPE"] == "D (Dog)"
    assert max_row["ANIMALBREED1"] in ("Golden Retriever", "Mixed Breed") and max_row["ANIMALBREED2"] == ""
    assert "dogbot" in max_row["ANIMALCOMMENTS"]
    prefix = "data:image/jpeg;base64,"
    assert max_row["ANIMALIMAGE"].startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(max_row["ANIMALIMAGE"][len(prefix) :])))
    image.load()
    assert image.format == "JPEG" and min(image.size) > 0


def test_eval_with_a_dog_column_answers_once_per_dog(tmp_path, shared_manifest, eval_data_dir):
    rows = shared_manifest("manifest.csv")
    chosen = []
    for breed in ("beagle", "pug", "boxer"):
        chosen += [dict(r, dog=breed) for r in rows if r["breed"] == breed][:3]
    chosen.append(dict(next(r for r in rows if r["breed"] == "not_a_dog"), dog=""))
    manifest = tmp_path / "dogs.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "breed", "imagenet_overlap", "dog"])
        writer.writeheader()
        for row in chosen:
            relative = os.path.relpath(eval_data_dir / row["path"], manifest.parent)
            writer.writerow({"path": relative, **{k: row[k] for k in ("breed", "imagenet_overlap", "dog")}})
    report = json.loads(run_cli("eval", "--manifest", str(manifest), "--json", data_dir=tmp_path).stdout)
    assert report["n"] == 10 and report["n_dogs"] == 9 and report["dogs"] == 3
    assert 0.0 <= report["dog_top1"] <= report["dog_top3"] <= 1.0
    assert report["dog_top1"] in (0.0, 0.3333, 0.6667, 1.0)  # a share of three dogs
    text = run_cli("eval", "--manifest", str(manifest), data_dir=tmp_path).stdout
    assert "one answer per dog from all its photos (3 dogs)" in text

    plain = write_manifest(tmp_path / "plain.csv", chosen, eval_data_dir)  # no `dog` column
    without = json.loads(run_cli("eval", "--manifest", str(plain), "--json", data_dir=tmp_path).stdout)
    assert not {"dogs", "dog_top1", "dog_top3"} & set(without) and without["n"] == 10
