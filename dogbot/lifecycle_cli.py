"""`dogbot fold|prune|drift|retrain|models|rollback|worker`: the lifecycle subcommands and their words.

``--json`` output is a contract for scripts: ``dogbot drift --json`` prints
``{"drift": bool, "tests": [...], "reference_n": int, "current_n": int, ...}`` and
``dogbot retrain --json`` the new version, its metrics, and whether it was promoted or why not.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from dogbot.core.clock import on_clock
from dogbot.lifecycle_text import drift_report, model_list, model_namer, retrain_report, retrain_step

if TYPE_CHECKING:
    from jobs.retrain import RetrainResult

# The jobs' modules are imported by the subcommands that run them: `dogbot predict` registers these
# subcommands at every start and needs none of the jobs.


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the lifecycle subcommands to ``dogbot``'s parser."""
    fold = subparsers.add_parser("fold", help="fold new labels into a numbered dataset version")
    fold.add_argument("--json", action="store_true")
    fold.set_defaults(handler=cmd_fold)

    prune = subparsers.add_parser(
        "prune", help="retire dataset versions no model was trained on (the scheduled fold does it too)"
    )
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=cmd_prune)

    drift = subparsers.add_parser("drift", help="compare recent photos with the serving model's reference")
    drift.add_argument("--json", action="store_true")
    drift.set_defaults(handler=cmd_drift)

    retrain = subparsers.add_parser("retrain", help="train a new breed head, promote it if it is better")
    retrain.add_argument(
        "--full", action="store_true", help="fine-tune backbone blocks too (not available yet)"
    )
    retrain.add_argument("--json", action="store_true")
    retrain.set_defaults(handler=cmd_retrain)

    models = subparsers.add_parser("models", help="model versions, the champion and its history")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=cmd_models)

    rollback = subparsers.add_parser("rollback", help="serve the previous champion again")
    rollback.add_argument("--reason", default="", help="why (kept in the alias log)")
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(handler=cmd_rollback)

    worker = subparsers.add_parser("worker", help="run fold, drift and retrain on their schedule")
    worker.set_defaults(handler=cmd_worker)


def cmd_fold(container, args: argparse.Namespace) -> int:
    from jobs.lock import LockBusy

    try:
        result = container.lifecycle.fold(trigger="cli")
    except LockBusy as busy:
        return _fail(str(busy), 3)
    if args.json:
        print(json.dumps(result.to_json()))
    elif result.version is None:
        print("no labels yet: nothing to fold")
    else:
        made = "new dataset version" if result.created else "no new labels; latest dataset version"
        print(
            f"{made} v{result.version}: {result.n_items} photos ({result.n_train} train, {result.n_val} "
            f"validation), {len(result.counts)} labels, {len(result.conflicts)} conflicts, "
            f"golden set {result.golden_size} photos"
        )
    return 0


def cmd_prune(container, args: argparse.Namespace) -> int:
    from jobs.lock import LockBusy

    try:
        result = container.lifecycle.prune()
    except LockBusy as busy:
        return _fail(str(busy), 3)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(
            f"pruned {len(result.removed)} dataset versions no model needs ({result.items_deleted} "
            f"items deleted); {result.kept} kept"
        )
    return 0


def cmd_drift(container, args: argparse.Namespace) -> int:
    result = container.lifecycle.drift(trigger="cli")
    if args.json:  # the statistics (AUC, p-values, windows) are for tools: here and in the log
        print(json.dumps(result.to_json()))
        return 0
    print(drift_report(result, container.breeds.breed_name))  # the words /drift sends admins
    if result.chart:
        print(f"chart: {result.chart}")
    return 0


def cmd_retrain(container, args: argparse.Namespace) -> int:
    from jobs.lock import LockBusy
    from jobs.retrain import FullRetrainUnavailable

    progress = (lambda step: None) if args.json else (lambda step: print(retrain_step(step), file=sys.stderr))
    try:
        result = container.lifecycle.retrain(trigger="manual", actor="cli", full=args.full, progress=progress)
    except FullRetrainUnavailable as missing:
        return _fail(str(missing), 2)
    except LockBusy as busy:
        return _fail(str(busy), 3)
    if args.json:
        print(json.dumps(summary(result)))
    else:
        print(retrain_report(result, model=model_namer(container.lifecycle.models(), container.timezone)))
        if result.report:
            print(f"chart: {result.report}")
    return 0


def cmd_models(container, args: argparse.Namespace) -> int:
    from jobs import registry

    # The registry alone: the model is loaded (and its version 0 registered) only on a fresh install.
    rows = registry.models(container.engine) or container.lifecycle.models()
    moves = registry.history(container.engine)
    if args.json:
        print(
            json.dumps(
                {
                    "champion": next((m.version for m in rows if m.champion), None),
                    "models": [
                        {
                            "version": m.version,
                            "status": m.status,
                            "champion": m.champion,
                            "dataset_version": m.dataset_version,
                            "breeds": m.n_breeds,
                            "trigger": m.trigger,
                            "actor": m.actor,
                            "reason": m.reason,
                            "created_at": m.created_at.isoformat(timespec="seconds"),
                            "scores": m.metrics.headline() if m.metrics else {},
                        }
                        for m in rows
                    ],
                    "history": [
                        {
                            "from": mv.from_version,
                            "to": mv.to_version,
                            "kind": mv.kind,
                            "actor": mv.actor,
                            "reason": mv.reason,
                            "at": mv.moved_at.isoformat(timespec="seconds"),
                        }
                        for mv in moves
                    ],
                }
            )
        )
        return 0
    print(model_list(rows, container.timezone))
    print("\nchampion history:")
    for move in moves:
        print(
            f"  {on_clock(move.moved_at, container.timezone):%Y-%m-%d %H:%M}  {move.kind:<8} "
            f"{move.from_version or '-'} -> {move.to_version}  ({move.actor or '?'}: {move.reason})"
        )
    return 0


def cmd_rollback(container, args: argparse.Namespace) -> int:
    from jobs.lock import LockBusy
    from jobs.registry import RegistryError

    try:
        old, new = container.lifecycle.rollback(actor="cli", reason=args.reason)
    except RegistryError as error:
        return _fail(str(error), 1)
    except LockBusy as busy:
        return _fail(str(busy), 3)
    if args.json:
        print(json.dumps({"from": old, "to": new}))
    else:
        names = model_namer(container.lifecycle.models(), container.timezone)
        print(f"rolled back: {names(new)} answers again instead of {names(old)}")
    return 0


def cmd_worker(container, args: argparse.Namespace) -> int:
    from dogbot import i18n
    from jobs.scheduler import run_worker

    i18n.set_default_language(container.settings.language)  # its charts for admins: the shelter's words

    sync_jobs = {}
    if container.asm_configured:
        every = timedelta(minutes=container.settings.asm_sync_minutes)
        sync_jobs["asm_sync"] = (partial(container.asm_sync.sync, check_asm=False), every)
    run_worker(container.lifecycle, container.intervals, sync_jobs=sync_jobs)
    return 0


# --- terminal words (the bot's are in bot/texts.py) ---------------------------------------------------------
def summary(result: RetrainResult) -> dict:
    """The ``retrain --json`` object: per-breed tables stay in the registry, not on stdout."""
    data = result.to_json()
    data["metrics"] = result.metrics.headline() if result.metrics else {}
    return data


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code
