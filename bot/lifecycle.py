"""Admin lifecycle commands (/retrain, /drift, /models, /rollback) and the model-refresh job.

Each handler checks the sender is an admin, runs one lifecycle service in a worker thread (torch and
SQLite work never blocks the event loop), and replies with text and, where there is one, a chart.
A repeating job makes this process serve a champion promoted elsewhere (by ``dogbot worker``) and
tells admins about drift alarms and models the worker trained; with ``DOGBOT_JOBS_IN_BOT`` the
scheduled jobs themselves also run here, through PTB's JobQueue, on the same plain functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from telegram import Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CommandHandler

from bot.context import DogContext, member
from jobs.commands import format_models, format_retrain
from jobs.lock import LockBusy
from jobs.registry import RegistryError
from jobs.retrain import FullRetrainUnavailable
from jobs.scheduler import JOB_ORDER, run_scheduled
from jobs.wiring import intervals
from storage import lifecycle_repository as repo
from storage.db import session as open_session

log = logging.getLogger(__name__)

_MAX_CAPTION = 1024
_MAX_MESSAGE = 4096


def register_lifecycle_handlers(application: Application, container) -> None:
    """Add /retrain, /drift, /models, /rollback and the repeating registry check to ``application``."""
    application.add_handler(CommandHandler("retrain", on_retrain, block=False))
    application.add_handler(CommandHandler("drift", on_drift, block=False))
    application.add_handler(CommandHandler("models", on_models))
    application.add_handler(CommandHandler("rollback", on_rollback))
    application.add_handler(CommandHandler("report", on_report))
    queue = application.job_queue
    if queue is None:  # PTB without its job-queue extra: no background refresh
        log.warning("no JobQueue: a champion promoted elsewhere is served only after a restart")
        return
    settings = container.settings
    queue.run_repeating(
        check_registry,
        interval=settings.champion_check_seconds,
        first=settings.champion_check_seconds,
        name="champion-check",
        job_kwargs={"coalesce": True, "max_instances": 1},
    )
    if settings.jobs_in_bot:
        every = intervals(container)
        for offset, name in enumerate(JOB_ORDER):
            queue.run_repeating(
                run_job_in_bot,
                interval=every.of(name).total_seconds(),
                first=30 + 20 * offset,
                name=name,
                data=name,
                job_kwargs={
                    "coalesce": True,
                    "max_instances": 1,
                    "misfire_grace_time": int(every.misfire_grace.total_seconds()),
                },
            )


async def on_retrain(update: Update, context: DogContext) -> None:
    """/retrain [full] (admins): train a new model now, report progress, then the result and its chart."""
    if await member(update, context, admin=True) is None:
        return
    full = any(arg.lower() in ("full", "--full") for arg in context.args or [])
    lifecycle = context.services.container.lifecycle
    status = await update.effective_message.reply_text("Retraining: starting…")
    loop = asyncio.get_running_loop()
    edits = []

    def progress(step: str) -> None:
        edits.append(asyncio.run_coroutine_threadsafe(_edit(status, f"Retraining: {step}…"), loop))

    actor = str(update.effective_user.id) if update.effective_user else None
    refusal = None
    try:
        result = await asyncio.to_thread(
            lifecycle.retrain, trigger="manual", actor=actor, full=full, progress=progress
        )
    except (LockBusy, FullRetrainUnavailable) as refused:
        refusal = refused
    # Progress edits land before the final one, never after it.
    await asyncio.gather(*(asyncio.wrap_future(edit) for edit in edits), return_exceptions=True)
    if refusal is not None:
        await _edit(status, f"Not retrained: {refusal}")
        return
    await _edit(status, ("New model promoted." if result.promoted else "Retrain finished.")[:_MAX_MESSAGE])
    await _reply_with_chart(update, format_retrain(result), result.report)


async def on_drift(update: Update, context: DogContext) -> None:
    """/drift (admins): compare recent photos with the model's reference now; reply with the chart."""
    if await member(update, context, admin=True) is None:
        return
    await update.effective_message.reply_text("Checking for drift…")
    lifecycle = context.services.container.lifecycle
    result = await asyncio.to_thread(lifecycle.drift, trigger="telegram")
    await _reply_with_chart(update, drift_text(result.to_json()), result.chart)


async def on_models(update: Update, context: DogContext) -> None:
    """/models (admins): every model version, which one serves, and why others were rejected."""
    if await member(update, context, admin=True) is None:
        return
    rows = await asyncio.to_thread(context.services.container.lifecycle.models)
    await update.effective_message.reply_text(format_models(rows)[-_MAX_MESSAGE:])


async def on_rollback(update: Update, context: DogContext) -> None:
    """/rollback [reason] (admins): serve the previous champion again."""
    if await member(update, context, admin=True) is None:
        return
    actor = str(update.effective_user.id) if update.effective_user else None
    reason = " ".join(context.args or [])
    lifecycle = context.services.container.lifecycle
    try:
        old, new = await asyncio.to_thread(lambda: lifecycle.rollback(actor=actor, reason=reason))
    except (RegistryError, LockBusy) as refused:
        await update.effective_message.reply_text(f"Not rolled back: {refused}")
        return
    await update.effective_message.reply_text(f"Rolled back: {old} -> {new}. Now serving {new}.")


async def on_report(update: Update, context: DogContext) -> None:
    """/report (admins): the chart of the last `dogbot simulate --report` run."""
    if await member(update, context, admin=True) is None:
        return
    from dogbot.simulation_report import last_report

    found = last_report(context.services.container.settings.data_dir)
    if found is None:
        await update.effective_message.reply_text(
            "No simulation report yet. Run `dogbot simulate --manifest CSV --report DIR` on the server."
        )
        return
    summary, chart = found
    await _reply_with_chart(update, summary, str(chart))


async def check_registry(context: DogContext) -> None:
    """Serve a newly promoted champion; tell admins about drift alarms and models trained elsewhere."""
    container = context.services.container
    await asyncio.to_thread(container.refresh_model)
    news = await asyncio.to_thread(_news, container.engine, context.bot_data)
    for text, chart in news:
        for admin_id in sorted(context.services.members.admin_ids):
            with contextlib.suppress(TelegramError):  # an admin who never opened the bot
                if chart and Path(chart).is_file():
                    with Path(chart).open("rb") as picture:
                        await context.bot.send_photo(admin_id, picture, caption=text[:_MAX_CAPTION])
                else:
                    await context.bot.send_message(admin_id, text[:_MAX_MESSAGE])


async def run_job_in_bot(context: DogContext) -> None:
    """One-process mode: a scheduled lifecycle job, in a worker thread, recorded like the worker's."""
    await asyncio.to_thread(run_scheduled, context.services.container.lifecycle, context.job.data)


def drift_text(result: dict) -> str:
    """A drift report as a few lines an admin can read."""
    head = "DRIFT: " if result["drift"] else "No drift: "
    lines = [
        f"{head}last {result['current_n']} photos vs {result['reference']} ({result['reference_n']}), "
        f"model {result['model_version']}"
    ]
    if not result["tests"]:
        lines.append(result.get("reason", ""))
    for test in result["tests"]:
        mark = "⚠️" if test["alarm"] else ("·" if test["statistic"] is None else "✓")
        lines.append(f"{mark} {test['name']}: {test['detail']}")
    return "\n".join(lines)


def _news(engine, bot_data: dict) -> list[tuple[str, str | None]]:
    """Drift alarms and models trained by others since the last check (nothing on the first check)."""
    with open_session(engine) as session:
        reports = repo.drift_reports(session=session, limit=20)
        models = repo.model_versions(session=session)
    last_report = bot_data.get("seen_drift_report")
    last_model = bot_data.get("seen_model")
    bot_data["seen_drift_report"] = max((r.id for r in reports), default=0)
    bot_data["seen_model"] = max((m.id for m in models), default=0)
    if last_report is None or last_model is None:
        return []
    news = []
    for report in sorted(reports, key=lambda r: r.id):
        if report.id > last_report and report.drift and report.trigger == "schedule":
            alarms = ", ".join(t["name"] for t in report.tests if t["alarm"])
            news.append((f"Drift alarm ({alarms}): recent photos differ from the reference.", report.chart))
    for model in models:
        if model.id > last_model and model.actor in ("scheduler", "cli"):
            verdict = "promoted, now serving" if model.status == "promoted" else "rejected"
            chart = str(Path(model.report)) if model.report else None
            news.append((f"Model {model.version} ({model.trigger}) {verdict}: {model.reason}", chart))
    return news


async def _reply_with_chart(update: Update, text: str, chart: str | None) -> None:
    message = update.effective_message
    if chart and Path(chart).is_file():
        with Path(chart).open("rb") as picture:
            await message.reply_photo(picture, caption=text[:_MAX_CAPTION])
        if len(text) > _MAX_CAPTION:
            await message.reply_text(text[:_MAX_MESSAGE])
    else:
        await message.reply_text(text[:_MAX_MESSAGE])


async def _edit(message, text: str) -> None:
    try:
        await message.edit_text(text)
    except BadRequest as error:  # "Message is not modified": the same step twice is fine
        if "not modified" not in str(error).lower():
            raise
