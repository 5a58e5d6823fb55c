"""The `dogbot` command line. Field names of `--json` output are a contract other tools rely on."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from dogbot.app import Container
from dogbot.bulk import BulkItem, submit_files
from dogbot.manifest import image_paths, read_folder, read_manifest
from dogbot.settings import Settings
from ml.images import ImageRejected, load_image


def _progress(iterable, **kwargs):
    # Progress goes to stderr and disappears when not on a terminal, so --json output stays clean.
    return tqdm(iterable, disable=not sys.stderr.isatty(), leave=False, **kwargs)


def cmd_predict(container: Container, args: argparse.Namespace) -> int:
    """Classify photos without storing anything."""
    predictor, taxonomy = container.predictor, container.taxonomy
    threshold = container.settings.dog_threshold
    status = 0
    for path in image_paths([Path(p) for p in args.paths]):
        try:
            image = load_image(path.read_bytes())
        except (ImageRejected, OSError) as error:
            message = getattr(error, "message", None) or f"cannot read file: {getattr(error, 'strerror', error)}"
            status = 1
            print(json.dumps({"path": str(path), "error": message}) if args.json else f"{path}: {message}")
            continue
        output = predictor.predict([image])[0]
        is_dog = output.dog_probability >= threshold
        top = [{"breed": taxonomy.get(key).display_name, "p": round(p, 4)} for key, p in output.top(3)]
        record = {
            "path": str(path),
            "is_dog": is_dog,
            "breed": top[0]["breed"] if is_dog else None,
            "confidence": round(top[0]["p"] if is_dog else 1 - output.dog_probability, 4),
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


def cmd_eval(container: Container, args: argparse.Namespace) -> int:
    """Score the serving model on a labeled CSV."""
    from dogbot.evaluation import evaluate, format_report

    rows = read_manifest(Path(args.manifest))
    report = evaluate(
        container.predictor,
        container.taxonomy,
        rows,
        dog_threshold=container.settings.dog_threshold,
        progress=_progress,
    )
    print(json.dumps(report.to_json()) if args.json else format_report(report))
    return 0


def cmd_import(container: Container, args: argparse.Namespace) -> int:
    """Bulk-load photos the shelter has already labeled (label source: import)."""
    if bool(args.manifest) == bool(args.folder):
        print("give either --manifest CSV or a folder with one sub-folder per breed", file=sys.stderr)
        return 2
    rows = read_manifest(Path(args.manifest)) if args.manifest else read_folder(Path(args.folder))
    catalog = container.catalog
    items, unknown = [], set()
    for row in rows:
        breed = catalog.taxonomy.resolve(row.breed)
        if breed is None and args.add_breeds:
            breed = catalog.add_breed(row.breed.replace("_", " "), by=None)
        if breed is None:
            unknown.add(row.breed)
            continue
        items.append(BulkItem(row.path, breed.key))
    results = submit_files(catalog, items, source="import", progress=_progress)
    return _report_bulk(results, unknown)


def cmd_ingest(container: Container, args: argparse.Namespace) -> int:
    """Store and classify photos as if staff had sent them; unsure ones wait for /review."""
    items = [BulkItem(path) for path in image_paths([Path(p) for p in args.paths])]
    results = submit_files(container.catalog, items, source="ingest", progress=_progress)
    return _report_bulk(results, set())


def _report_bulk(results, unknown: set[str]) -> int:
    stored = [r for r in results if r.classification is not None]
    new = [r for r in stored if not r.classification.duplicate]
    waiting = [r for r in stored if r.classification.label is None]
    for result in results:
        if result.error:
            print(f"skipped {result.path}: {result.error}", file=sys.stderr)
    if unknown:
        print(f"unknown breeds (not imported; add them or use --add-breeds): {', '.join(sorted(unknown))}",
              file=sys.stderr)
    print(
        f"{len(stored)} photos stored ({len(new)} new, {len(stored) - len(new)} already known), "
        f"{len(waiting)} waiting for staff review, {len(results) - len(stored)} rejected"
    )
    return 1 if len(stored) < len(results) or unknown else 0


def cmd_export(container: Container, args: argparse.Namespace) -> int:
    """Write the catalog as CSV (stdout or --out)."""
    text = container.catalog.export_csv()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_run(container: Container, args: argparse.Namespace) -> int:
    """Start the Telegram bot."""
    from bot.app import run_bot

    return run_bot(container)


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
        "--no-add-breeds", dest="add_breeds", action="store_false",
        help="do not add breed names the catalog does not know yet",
    )
    importer.set_defaults(handler=cmd_import)

    ingest = commands.add_parser("ingest", help="store and classify photos as if staff sent them")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.set_defaults(handler=cmd_ingest)

    export = commands.add_parser("export", help="the catalog as CSV")
    export.add_argument("--out", metavar="FILE")
    export.set_defaults(handler=cmd_export)

    run = commands.add_parser("run", help="start the Telegram bot")
    run.set_defaults(handler=cmd_run)

    try:
        from jobs.commands import register as register_jobs
    except ImportError:  # the lifecycle jobs are optional for a bot-only install
        register_jobs = None
    if register_jobs is not None:
        register_jobs(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, which contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    container = Container(Settings())
    return args.handler(container, args)


if __name__ == "__main__":
    raise SystemExit(main())
