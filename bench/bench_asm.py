"""Registering 1,000 dogs in Animal Shelter Manager (issue 24): how long the sync takes.

Builds a catalog of N dogs (one real photo each, classified by the real model, the breed settled by
an admin's answer), then times ``AsmSync.sync`` against the double of ASM's service
(tests/e2e/fake_asm.py, real HTTP on loopback, ASM's import rules):

1. the first sync: every dog is new (its row and its photo, one request a dog);
2. a sync with nothing to send: what the worker pays every DOGBOT_ASM_SYNC_MINUTES;
3. a sync after 10 % of the dogs changed (their sex): updates without photos.

The photos are the dev photos (../shared/datasets/dogs), shrunk, with one corner pixel numbered after
the dog so that N distinct files exist. ASM's own import is slower than the double's (a real ASM3
took 4.4 s for a 13-dog file with photos, about 0.3 s a dog): the sync's own cost is measured here.

    .venv/bin/python bench/bench_asm.py [--dogs 1000] [--write]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from readme import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
DATASET = ROOT.parent / "shared" / "datasets" / "dogs"


def distinct_photos(count: int, folder: Path) -> list[Path]:
    with (DATASET / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["format"] == "JPEG" and not r["quirks"]]
    rows = [r for r in rows if r["breed"] != "not_a_dog"]
    paths = []
    for index in range(count):
        row = rows[index % len(rows)]
        with Image.open(DATASET / row["path"]) as image:
            small = image.convert("RGB")
            small.thumbnail((320, 320))
            # A corner pixel numbered after the dog: every file differs (the catalog keeps one of each).
            small.putpixel((0, 0), (index % 256, index // 256 % 256, 7))
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=90)
        path = folder / f"dog-{index:05d}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dogs", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    from fake_asm import FakeAsm

    from dogbot.app import Container
    from dogbot.core.bulk import BulkItem, submit_files
    from dogbot.settings import Settings
    from storage.vocabulary import LabelSource, Sex

    fake = FakeAsm(username="bench", password="bench").start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(
            _env_file=None,
            data_dir=folder / "data",
            asm_url=fake.url,
            asm_username="bench",
            asm_password="bench",
            asm_quiet_minutes=0,
        )
        container = Container(settings)
        catalog = container.catalog
        started = time.perf_counter()
        paths = distinct_photos(args.dogs, folder)
        dogs = [catalog.dogs.create(source="ingest") for _ in paths]
        submit_files(
            catalog,
            [BulkItem(path, dog_id=dog.id) for path, dog in zip(paths, dogs, strict=True)],
            source="ingest",
        )
        for dog in dogs:
            answer = catalog.dogs.answer(dog.id)
            catalog.dogs.record_label(dog.id, answer.top[0][0].key, source=LabelSource.ADMIN, user_id=1)
        built = time.perf_counter() - started
        print(f"catalog of {len(dogs)} dogs built in {built:.0f} s", file=sys.stderr)

        sync = container.asm_sync
        timings = []
        started = time.perf_counter()
        first = sync.sync()
        timings.append(("first sync: every dog new, with its photo", time.perf_counter() - started, first))
        started = time.perf_counter()
        idle = sync.sync(check_asm=False)
        timings.append(("nothing to send (the worker's run)", time.perf_counter() - started, idle))
        for dog in dogs[::10]:
            catalog.dogs.set_details(dog.id, sex=Sex.FEMALE)
        started = time.perf_counter()
        changed = sync.sync()
        timings.append(("10 % of the dogs changed: updates", time.perf_counter() - started, changed))
        container.engine.dispose()
        animals, photos = len(fake.animals), sum(len(a.images) for a in fake.animals.values())
    fake.stop()

    lines = [
        f"`.venv/bin/python bench/bench_asm.py --dogs {args.dogs}`: `AsmSync.sync` against the double of",
        "ASM's service (tests/e2e/fake_asm.py, loopback HTTP), SQLite, a 2-core machine (shared, noisy).",
        "",
        "| sync | seconds | per dog sent | sent | updated |",
        "|---|---|---|---|---|",
    ]
    for what, seconds, report in timings:
        moved = len(report.sent) + len(report.updated)
        per = f"{1000 * seconds / moved:.0f} ms" if moved else "-"
        sent, updated = len(report.sent), len(report.updated)
        lines.append(f"| {what} | {seconds:.1f} | {per} | {sent} | {updated} |")
    lines += [
        "",
        f"ASM (the double) ended with {animals} animals and {photos} photos: one each.",
        "A real ASM3 imported a 13-dog file with photos in 4.4 s (`../shared/tools/asm3/import.py`), so",
        "against a real ASM the first sync of 1,000 dogs is bound by ASM's own import, about 0.3 s a dog.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("## Animal Shelter Manager sync", "\n" + body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
