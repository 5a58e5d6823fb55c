"""The `dogbot` command line. Field names of `--json` output are a contract other tools rely on."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dogbot.asm_cli import register as register_asm
from dogbot.lifecycle_cli import register as register_jobs

# Each command imports what it uses: `dogbot --help` needs no database and no model, and `dogbot
# predict` no migrations, jobs or Telegram (bench/bench_cli.py times them).
if TYPE_CHECKING:
    from dogbot.app import Container


def _progress(iterable, **kwargs):
    # Progress goes to stderr and disappears when not on a terminal, so --json output stays clean.
    from tqdm import tqdm  # imported when a long command starts: `dogbot predict` should start fast

    return tqdm(iterable, disable=not sys.stderr.isatty(), leave=False, **kwargs)


def cmd_predict(container: Container, args: argparse.Namespace) -> int:
    """Classify photos without storing anything."""
    from dogbot.app import intake_rules
    from dogbot.core.manifest import image_paths
    from ml.images import ImageRejected, load_image

    predictor, taxonomy = _serving_model(container)
    rules = intake_rules(container.settings)
    status = 0
    for path in image_paths([Path(p) for p in args.paths]):
        try:
            image = load_image(path.read_bytes(), max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)
        except (ImageRejected, OSError) as error:
            message = (
                getattr(error, "message", None) or f"cannot read file: {getattr(error, 'strerror', error)}"
            )
            status = 1
            print(json.dumps({"path": str(path), "error": message}) if args.json else f"{path}: {message}")
            continue
        output = predictor.predict([image])[0]
        is_dog = output.is_dog(rules.dog_threshold)
        if is_dog:
            top = [{"breed": taxonomy.get(key).display_name, "p": round(p, 4)} for key, p in output.top(3)]
        else:
            # "Not a dog" leads, and the breeds' shares are of the whole photo (times the chance it is a
            # dog), so `confidence` is always top[0]'s and no breed outranks the verdict.
            dog = output.dog_probability
            top = [{"breed": "Not a dog", "p": round(1 - dog, 4)}] + [
                {"breed": taxonomy.get(key).display_name, "p": round(p * dog, 4)} for key, p in output.top(2)
            ]
        record = {
            "path": str(path),
            "is_dog": is_dog,
            "breed": top[0]["breed"] if is_dog else None,
            "confidence": top[0]["p"],
            "dog_probability": round(output.dog_probability, 4),
            "top": top,
            "model_version": output.model_version,
        }
        if args.json:
            print(json.dumps(record), flush=True)
        elif is_dog:
            others = ", ".join(f"{t['breed']} {t['p']:.0%}" for t in top[1:])
            print(f"{path}: {record['breed']} ({record['confidence']:.0%}); also {others}")
        else:
            print(f"{path}: not a dog ({record['confidence']:.0%} sure)")
    return status


def _prepare_model(settings) -> None:
    """Export the serving model on an install's first use, saying so while it takes (about 20 s)."""
    import threading

    from ml.runtime import BackboneFiles, ensure_exported

    if BackboneFiles.of(settings.serving_backbone_dir, settings.model).intact(settings.model):
        return
    from tqdm import tqdm

    print("preparing the model for this install (once, about 20 s)", file=sys.stderr)
    done = threading.Event()
    with tqdm(
        desc="preparing the model",
        bar_format="{desc}: {elapsed}",
        disable=not sys.stderr.isatty(),
        leave=False,
    ) as shown:

        def tick() -> None:
            while not done.wait(0.5):
                shown.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            ensure_exported(settings.model, settings.serving_backbone_dir)
        finally:
            done.set()
            ticker.join()


def _serving_model(container: Container):
    """The model the catalog serves and its breed names, without making a catalog when there is none."""
    from dogbot.app import missing_catalog, predictor_without_orm, pretrained_predictor
    from dogbot.core.taxonomy import Taxonomy

    # A SQLite catalog is read without the ORM (half of this command's start); else the full way.
    serving = predictor_without_orm(container.settings)
    if serving is not None:
        return serving
    if missing_catalog(container.settings) is not None:
        # No catalog yet (a first try before `dogbot run`): the base model, which knows ImageNet's breeds.
        taxonomy = Taxonomy.with_added(())
        return pretrained_predictor(container.settings, taxonomy), taxonomy
    return container.predictor, container.breeds.taxonomy


def cmd_eval(container: Container, args: argparse.Namespace) -> int:
    """Score the serving model on a labeled CSV."""
    from dogbot.app import intake_rules
    from dogbot.core.evaluation import evaluate, format_report
    from dogbot.core.manifest import read_manifest

    rows = read_manifest(Path(args.manifest))
    predictor, taxonomy = _serving_model(container)
    report = evaluate(
        predictor,
        taxonomy,
        rows,
        rules=intake_rules(container.settings),
        combine=container.settings.dog_combine,
        progress=_progress,
    )
    print(json.dumps(report.to_json()) if args.json else format_report(report))
    return 0


def cmd_import(container: Container, args: argparse.Namespace) -> int:
    """Bulk-load photos the shelter has already labeled (label source: import)."""
    from bot.texts import button_words
    from dogbot.core.bulk import BulkItem, match_breed_name, submit_files
    from dogbot.core.dogs import NewDog
    from dogbot.core.manifest import read_folder, read_manifest
    from dogbot.core.taxonomy import Taxonomy, is_reserved

    if bool(args.manifest) == bool(args.folder):
        print("give either --manifest CSV or a folder with one sub-folder per breed", file=sys.stderr)
        return 2
    rows = read_manifest(Path(args.manifest)) if args.manifest else read_folder(Path(args.folder))
    catalog = container.catalog
    items, unknown, not_breeds = [], set(), set()
    # A manifest's `dog` column: photos of one animal make one dog, made with its first stored photo.
    run = uuid.uuid4().hex[:12]
    near_misses: dict[str, str] = {}
    unclear: dict[str, tuple[str, ...]] = {}
    added: set[str] = set()
    catalog.breeds.reserve(button_words())  # a folder "Skip" or "Sí es un perro" is not a breed
    taxonomy = catalog.breeds.taxonomy
    reserved: set[str] = set()
    pending: list[tuple[object, str, NewDog | None]] = []  # rows whose new breed is added first
    for row in rows:
        dog = row.extra.get("dog", "").strip()
        new_dog = NewDog(source="import", group=f"import:{run}:{dog}"[:128]) if dog else None
        # A word on the bot's buttons is never a breed, nor a near miss of one ("Male" is not
        # Maltese, "Sí es un perro" is not "Not a dog"); the labels' own names ("Not a dog") are.
        if is_reserved(row.breed, catalog.breeds.reserved_words) and taxonomy.resolve(row.breed) is None:
            reserved.add(row.breed)
            continue
        match = match_breed_name(taxonomy, row.breed)
        breed = match.breed
        if breed is not None and not match.exact:
            near_misses[row.breed] = breed.display_name
        if breed is None and match.maybe:
            unclear[row.breed] = tuple(b.display_name for b in match.maybe)
            continue
        if breed is None:
            try:
                Taxonomy.make_breed(row.breed.replace("_", " "))
            except ValueError:
                # Not a breed name at all (e.g. "unlabelled_dog:kiss.jpg"): keep the photo, as
                # `ingest` would, and let staff label it; one odd row must not stop the import.
                not_breeds.add(row.breed)
                items.append(BulkItem(row.path, new_dog=new_dog))
                continue
        if breed is None and args.add_breeds:
            pending.append((row, row.breed.replace("_", " "), new_dog))
            continue
        if breed is None:
            unknown.add(row.breed)
            continue
        items.append(BulkItem(row.path, breed.key, new_dog=new_dog))
    # Every name is checked before any breed is added or any photo stored: all or nothing.
    new_names = list(dict.fromkeys(name for _, name, _ in pending))
    refused = {name: catalog.breeds.refusal(name) for name in new_names}
    refused = {name: why for name, why in refused.items() if why is not None}
    if reserved or refused:
        for name in sorted(reserved):
            print(f"“{name}” is a word on the bot's buttons, not a breed: rename it", file=sys.stderr)
        for name, why in sorted(refused.items()):
            print(f"“{name}”: {why}", file=sys.stderr)
        print("nothing imported and no breed added; rename those and run again", file=sys.stderr)
        return 2
    if new_names:
        keys = {}
        for name, breed in zip(new_names, catalog.breeds.add_breeds(new_names, by=None), strict=True):
            keys[name] = breed.key
            added.add(breed.display_name)
        items += [BulkItem(row.path, keys[name], new_dog=new_dog) for row, name, new_dog in pending]
    for typed, known in sorted(near_misses.items()):
        print(f"“{typed}” taken as {known}")
    if added:
        print(f"new breeds added: {', '.join(sorted(added))}")
    results = submit_files(catalog, items, source="import", progress=_progress)
    print(_import_dogs(results, items))
    if not_breeds:
        print(
            "labels that are not breed names (photos stored without a label): "
            + ", ".join(sorted(not_breeds)),
            file=sys.stderr,
        )
    for typed, choices in sorted(unclear.items()):
        print(
            f"“{typed}” could be {' or '.join(choices)}: not imported; rename it to the one you mean",
            file=sys.stderr,
        )
    return _report_bulk(results, unknown) or (1 if unclear else 0)


def _import_dogs(results, items) -> str:
    """How the imported photos became dogs: one each, unless a `dog` column or sub-folder groups them."""
    stored = [(r, item) for r, item in zip(results, items, strict=True) if r.classification is not None]
    dogs = {r.classification.photo.dog_id for r, _ in stored}
    grouped = sum(1 for _, item in stored if item.new_dog is not None)
    how = (
        f"{grouped} of them grouped by their `dog` column or sub-folder"
        if grouped
        else "one dog per photo (a `dog` column or a sub-folder per dog groups photos of one animal)"
    )
    return f"{len(stored)} photos in {len(dogs)} dogs: {how}"


def cmd_ingest(container: Container, args: argparse.Namespace) -> int:
    """Store and classify photos as if staff had sent them; unsure ones wait for /review.

    With ``--dog NAME`` the photos are one dog: its code and the breed from all of them are printed.
    """
    from dogbot.core.bulk import BulkItem, submit_files
    from dogbot.core.dogs import NewDog
    from dogbot.core.manifest import image_paths

    catalog = container.catalog
    # The dog is made with the first photo stored (none stored: no dog), in that photo's transaction.
    new_dog = None
    if args.dog is not None:
        new_dog = NewDog(source="ingest", group=f"ingest:{uuid.uuid4().hex}", name=args.dog)
    paths = image_paths([Path(p) for p in args.paths])
    results = submit_files(
        catalog, [BulkItem(path, new_dog=new_dog) for path in paths], source="ingest", progress=_progress
    )
    status = _report_bulk(results, set())
    if new_dog is None:
        _print_new_dogs(results, catalog)
        return status
    dog = catalog.dogs.group_dog(new_dog.group)
    for result in results:
        photo = result.classification.photo if result.classification is not None else None
        if photo is not None and (dog is None or photo.dog_id != dog.id):
            elsewhere = catalog.dogs.get(photo.dog_id).code if photo.dog_id is not None else "no dog"
            print(f"{result.path}: already in {elsewhere}; it stays there", file=sys.stderr)
    if dog is None:
        print(f"{args.dog}: no photo of it was stored, so no dog was made")
        return status or 1
    print(_dog_line(catalog.dogs.answer(dog.id), catalog.breeds.breed_name))
    return status


def _print_new_dogs(results, catalog) -> None:
    """One line per dog the photos made (its code, then what it is): staff find them by code."""
    seen: set[int] = set()
    for result in results:
        photo = result.classification.photo if result.classification is not None else None
        if photo is None or photo.dog_id is None or photo.dog_id in seen:
            continue
        seen.add(photo.dog_id)
        print(f"{result.path}: {_dog_line(catalog.dogs.answer(photo.dog_id), catalog.breeds.breed_name)}")


def _dog_line(answer, breed_name) -> str:
    from dogbot.core.dogs import shelter_breed_name

    dog = answer.dog
    who = f"{dog.code} {dog.name}" if dog.name else dog.code
    photos = f"{len(answer.photos)} photo{'s' if len(answer.photos) != 1 else ''}"
    if not answer.photos:
        return f"{who}: no photo stored"
    if answer.not_a_dog:
        return f"{who}: not a dog ({photos})"
    if answer.breed is not None:
        confidence = f" ({answer.top[0][1]:.0%})" if answer.label is None and answer.top else ""
        return f"{who}: {shelter_breed_name(answer.breed, breed_name)}{confidence}, {photos}"
    guess = answer.top[0][0].display_name if answer.top else "no answer"
    return f"{who}: waiting for staff review (the model says {guess}), {photos}"


def _report_bulk(results, unknown: set[str]) -> int:
    stored = [r for r in results if r.classification is not None]
    new = [r for r in stored if not r.classification.duplicate]
    waiting = [r for r in stored if r.classification.label is None]
    for result in results:
        if result.error:
            print(f"skipped {result.path}: {result.error}", file=sys.stderr)
    if unknown:
        print(
            f"unknown breeds, not imported (to add them as new breeds, run again with --add-breeds): "
            f"{', '.join(sorted(unknown))}",
            file=sys.stderr,
        )
    print(
        f"{len(stored)} photos stored ({len(new)} new, {len(stored) - len(new)} already known), "
        f"{len(waiting)} waiting for staff review, {len(results) - len(stored)} rejected"
    )
    return 1 if len(stored) < len(results) or unknown else 0


def cmd_export(container: Container, args: argparse.Namespace) -> int:
    """Write the catalog as CSV (stdout or --out): one row per photo, or per dog for shelter software."""
    if args.format == "asm3":
        text, rows = container.shelter_records.export_csv()
        what = "dogs"
    else:
        text = container.catalog.reporting.export_csv()
        what = "photos"
        rows = max(0, text.count("\n") - 1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"exported {rows} {what} to {Path(args.out).resolve()}")
    else:
        sys.stdout.write(text)
        print(f"exported {rows} {what}", file=sys.stderr)  # stdout is the CSV itself
    return 0


def cmd_run(container: Container, args: argparse.Namespace) -> int:
    """Start the Telegram bot."""
    from bot.app import run_bot

    return run_bot(container)


def cmd_api(container: Container, args: argparse.Namespace) -> int:
    """Start the web API (DOGBOT_API_HOST:DOGBOT_API_PORT)."""
    from api.app import run_api

    return run_api(container)


def cmd_api_token(container: Container, args: argparse.Namespace) -> int:
    """Make, list or revoke web API tokens; the token is printed once, on the last line."""
    from dogbot.core.api_clients import ApiClients, ClientError

    clients = ApiClients(container.engine)
    try:
        if args.action == "create":
            token = clients.create(args.name or "")
            print(f"API token for {args.name.strip()} (shown once; store it in the client's secrets):")
            print(token)
        elif args.action == "revoke":
            clients.revoke(args.name or "")
            print(f"revoked the API token {args.name.strip()}")
        else:
            from dogbot.core.clock import on_clock

            def when(moment) -> str:  # on the shelter's clock, with its zone
                return f"{on_clock(moment, container.timezone):%Y-%m-%d %H:%M %Z}"

            for info in clients.list():
                state = f"revoked {when(info.revoked_at)}" if info.revoked_at else "active"
                print(f"{info.name}\tcreated {when(info.created_at)}\t{state}")
    except ClientError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def cmd_backup(container: Container, args: argparse.Namespace) -> int:
    """Write the database and the photos to one .tar.gz (safe while the bot runs)."""
    from dogbot.backup import create_backup

    # Stopped by a service manager or a closed terminal: end like Ctrl-C, so the work folder (a full
    # database snapshot) and the partial archive are removed on the way out. A SIGKILL's debris is
    # removed by the next backup.
    def stop(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)

    # Photos in a bucket are backed up by the bucket's versioning and replication, not through here.
    include = args.photos if args.photos is not None else not container.settings.photo_store
    report = create_backup(
        container.engine,
        container.photo_store,
        Path(args.out),
        include_photos=include,
        model_dir=container.settings.model_dir,
    )
    photos = f"{report.photos} photos" if include else "no photos (they are in the object store)"
    print(
        f"backup written to {report.path}: {sum(report.rows.values())} rows, {photos}, "
        f"{report.model_files} model files"
    )
    if report.missing_photos:
        print(
            f"{len(report.missing_photos)} photos named by the database were not in the photo store; "
            "their digests are listed in the backup's missing-photos.txt",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_restore(container: Container, args: argparse.Namespace) -> int:
    """Load a backup into an empty database (or replace everything with --force)."""
    from dogbot.backup import BackupError, restore_backup

    try:
        report = restore_backup(
            container.engine,
            container.photo_store,
            Path(args.archive),
            force=args.force,
            model_dir=container.settings.model_dir,
            work_dir=container.settings.data_dir,
            max_photo_bytes=container.settings.max_upload_mb * 1024 * 1024,
        )
    except BackupError as error:
        print(f"restore refused: {error}", file=sys.stderr)
        return 2
    photos = f"{report.photos} photos" if report.photos_included else "no photos (kept in the object store)"
    print(f"restored {sum(report.rows.values())} rows, {photos}, {report.model_files} model files")
    if report.missing_photos:
        print(f"{len(report.missing_photos)} photos were missing when the backup was made", file=sys.stderr)
        return 1
    return 0


def cmd_db(container: Container, args: argparse.Namespace) -> int:
    """Database schema: show its revision, upgrade it, or (developers) write a new migration."""
    from jobs import registry
    from ml.runtime import ensure_exported
    from storage import migrations
    from storage.db import make_engine

    if args.action == "revision":
        if not args.message:
            print("give a message: dogbot db revision 'add a column to photo'", file=sys.stderr)
            return 2
        print(f"wrote {migrations.revision(args.message)}; read it and fix what autogenerate missed")
        return 0
    if args.action == "current":
        from dogbot.app import CatalogMissing, missing_catalog

        missing = missing_catalog(container.settings)
        if missing is not None:
            raise CatalogMissing(missing)
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(container.settings.sqlalchemy_url, prepare_schema=False)
    try:
        if args.action == "upgrade":
            before, after = migrations.upgrade(engine)
            print(f"schema at {after}" + ("" if before == after else f" (was {before or 'unversioned'})"))
            shared = registry.store_missing_artifacts(engine, container.settings.model_dir)
            if shared:
                print(f"copied the model files of {', '.join(shared)} into the database")
            # Export the serving backbone now (once, ~20 s) rather than at the bot's first start.
            ensure_exported(container.settings.model, container.settings.serving_backbone_dir)
            print(
                f"serving model {container.settings.model} ready in {container.settings.serving_backbone_dir}"
            )
            return 0
        now, newest = migrations.current(engine), migrations.head()
        print(f"schema at {now or 'none (new or made before migrations)'}; this dogbot needs {newest}")
        return 0 if now == newest else 1
    finally:
        engine.dispose()


def cmd_simulate(container: Container, args: argparse.Namespace) -> int:
    """Replay labeled photos through the real services and jobs on a simulated clock."""
    import tempfile

    from dogbot.simulation_run import run_simulation

    with tempfile.TemporaryDirectory(prefix="dogbot-simulation-") as scratch:
        data_dir = Path(args.data_dir) if args.data_dir else Path(scratch)
        result = run_simulation(
            container.settings,
            [Path(m) for m in args.manifest],
            data_dir=data_dir,
            days=args.days,
            photos_per_day=args.photos_per_day,
            staff_error_rate=args.staff_error_rate,
            audit_share=args.audit_share,
            target_accuracy=args.target_accuracy,
            seed=args.seed,
            shifts=args.shift,
            new_breed_min_photos=args.new_breed_min_photos,
            report_dir=Path(args.report) if args.report else None,
            progress=_progress,
        )
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        from dogbot.simulation_run import format_summary

        print(format_summary(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dogbot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify photos (stores nothing)")
    predict.add_argument("--json", action="store_true", help="one JSON object a line")
    predict.add_argument("paths", nargs="+", metavar="PATH")
    predict.set_defaults(handler=cmd_predict)

    evaluate = commands.add_parser("eval", help="measure the model on a labeled CSV")
    evaluate.add_argument("--manifest", required=True, metavar="CSV")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=cmd_eval)

    importer = commands.add_parser("import", help="bulk-load labeled photos")
    importer.add_argument("--manifest", metavar="CSV")
    importer.add_argument("folder", nargs="?", metavar="DIR", help="one sub-folder per breed")
    importer.add_argument(
        "--add-breeds",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add names that are no known breed, nor close to one, as new breeds (default: report them)",
    )
    importer.set_defaults(handler=cmd_import)

    ingest = commands.add_parser("ingest", help="store and classify photos as if staff sent them")
    ingest.add_argument("--dog", metavar="NAME", help="the photos show one dog (NAME may be empty)")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.set_defaults(handler=cmd_ingest)

    export = commands.add_parser("export", help="the catalog as CSV")
    export.add_argument("--out", metavar="FILE")
    export.add_argument(
        "--format",
        choices=("csv", "asm3"),
        default="csv",
        help="csv: one row per photo; asm3: one row per dog, Animal Shelter Manager's CSV import",
    )
    export.set_defaults(handler=cmd_export)

    simulate = commands.add_parser("simulate", help="replay labeled photos through the whole lifecycle")
    simulate.add_argument(
        "--manifest",
        action="append",
        required=True,
        metavar="CSV",
        help="labeled photos (repeat for several CSVs)",
    )
    simulate.add_argument("--days", type=int, default=30)
    simulate.add_argument("--photos-per-day", type=int, default=30)
    simulate.add_argument("--staff-error-rate", type=float, default=0.0)
    simulate.add_argument(
        "--audit-share",
        type=float,
        default=None,
        help="share of auto-accepted photos staff are asked to spot-check (default: DOGBOT_SPOT_CHECK_SHARE)",
    )
    simulate.add_argument(
        "--target-accuracy",
        type=float,
        default=None,
        help="the catalog accuracy the bot asks to keep (default: DOGBOT_TARGET_ACCURACY; 0: off)",
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument(
        "--shift",
        default="",
        metavar="SPEC",
        help="e.g. new_breeds@10,dark@20 (dark@D:FACTOR, new_breeds@D:SHARE, mix@D)",
    )
    simulate.add_argument(
        "--new-breed-min-photos",
        type=int,
        default=1,
        metavar="N",
        help="new breeds arriving are only those with at least N photos in the manifests (default 1: "
        "all; 4 simulates breeds that recur, which a retrain can learn)",
    )
    simulate.add_argument("--json", action="store_true")
    simulate.add_argument("--report", metavar="DIR", help="write simulation.json and simulation.png here")
    simulate.add_argument(
        "--data-dir", metavar="DIR", help="keep the simulated catalog here (default: temporary)"
    )
    simulate.set_defaults(handler=cmd_simulate)

    run = commands.add_parser("run", help="start the Telegram bot")
    run.set_defaults(handler=cmd_run)

    api = commands.add_parser("api", help="start the web API (DOGBOT_API_HOST:DOGBOT_API_PORT)")
    api.set_defaults(handler=cmd_api)

    api_token = commands.add_parser("api-token", help="web API tokens: create NAME, list, revoke NAME")
    api_token.add_argument("action", choices=["create", "list", "revoke"])
    api_token.add_argument("name", nargs="?", metavar="NAME", help="the client, e.g. intake-app")
    api_token.set_defaults(handler=cmd_api_token)

    backup = commands.add_parser("backup", help="database and photos to one .tar.gz (bot may keep running)")
    backup.add_argument("out", metavar="OUT.tar.gz")
    backup.add_argument(
        "--photos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include the photos (default: yes for a local photo folder, no for an S3 bucket)",
    )
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser("restore", help="load a backup into an empty database (stop the bot first)")
    restore.add_argument("archive", metavar="IN.tar.gz")
    restore.add_argument("--force", action="store_true", help="replace a database that already has data")
    restore.set_defaults(handler=cmd_restore)

    database = commands.add_parser("db", help="database schema: current, upgrade, revision")
    database.add_argument("action", choices=["current", "upgrade", "revision"])
    database.add_argument("message", nargs="?", help="revision: what changed in the tables")
    database.set_defaults(handler=cmd_db)

    register_jobs(commands)  # fold, drift, retrain, models, rollback, worker
    register_asm(commands)  # asm sync, check, status
    return parser


# Commands that may make a new, empty catalog where the settings point; every other one refuses
# ("no catalog at ...") rather than answer from an empty database made by mistake.
CREATES_CATALOG = frozenset({"run", "api", "import", "ingest", "worker", "restore", "simulate"})
# Commands that answer photos from the terminal: on an install's first use they export the model
# first, and say so (`run` checks its token before anything slow).
NEEDS_MODEL = frozenset({"predict", "eval", "import", "ingest", "simulate"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from dogbot.app import CatalogMissing, Container
    from dogbot.settings import EnvFileMissing, env_file, explain, load_settings

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, which contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except EnvFileMissing as error:
        print(f"bad setting: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        # One line per bad value (the name as it is set), not a traceback.
        for line in explain(error):
            print(f"bad setting: {line}", file=sys.stderr)
        return 2
    container = Container(settings, create_catalog=args.command in CREATES_CATALOG)
    try:
        if args.command in NEEDS_MODEL:
            _prepare_model(settings)
        return args.handler(container, args)
    except CatalogMissing as error:
        source = env_file()
        print(
            f"no catalog at {error}; settings read from {source or 'the environment only (no .env found)'}. "
            "Run it where the shelter's .env is, set DOGBOT_ENV_FILE, or make a new catalog with "
            "`dogbot db upgrade`.",
            file=sys.stderr,
        )
        return 2
    except Exception as error:
        # A database at a schema this code cannot use. Only a command that opened the database can
        # raise it, and that imported storage.migrations: `predict` on SQLite need not import it.
        migrations = sys.modules.get("storage.migrations")
        if migrations is not None and isinstance(error, migrations.SchemaError):
            print(error, file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
