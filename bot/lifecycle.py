"""Admin lifecycle commands (/retrain, /drift, /models, /rollback, /report) and the model-refresh job.

Each handler (admins only: ``@admin_only``) runs one lifecycle service in a worker thread (torch and
SQLite work never blocks the event loop), and replies with text and, where there is one, a chart.
A repeating job makes this process serve a champion promoted elsewhere (by ``dogbot worker``) and
tells admins about drift alarms and models the worker trained; with ``DOGBOT_JOBS_IN_BOT`` the
scheduled jobs themselves also run here, through PTB's JobQueue, on the same plain functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from telegram import Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CommandHandler

from bot import texts
from bot.context import DogContext, admin_only
from dogbot import i18n
from dogbot.lifecycle_text import model_list, retrain_report
from dogbot.simulation_report import last_report
from jobs.lock import LockBusy
from jobs.registry import RegistryError
from jobs.retrain import FullRetrainUnavailable
from jobs.scheduler import JOB_ORDER, Intervals, run_scheduled

log = logging.getLogger(__name__)

_MAX_CAPTION = 1024
_MAX_MESSAGE = 4096


def register_lifecycle_handlers(
    application: Application, *, champion_check_s: float, jobs_in_bot: Intervals | None
) -> None:
    """Add /retrain, /drift, /models, /rollback, /report and the repeating registry check.

    ``jobs_in_bot``: the schedule of fold, drift and retrain when this process runs them too.
    """
    application.add_handler(CommandHandler("retrain", on_retrain, block=False))
    application.add_handler(CommandHandler("drift", on_drift, block=False))
    application.add_handler(CommandHandler("models", on_models))
    application.add_handler(CommandHandler("rollback", on_rollback))
    application.add_handler(CommandHandler("report", on_report))
    queue = application.job_queue
    if queue is None:  # PTB without its job-queue extra: no background refresh
        log.warning("no JobQueue: a champion promoted elsewhere is served only after a restart")
        return
    queue.run_repeating(
        check_registry,
        interval=champion_check_s,
        first=champion_check_s,
        name="champion-check",
        job_kwargs={"coalesce": True, "max_instances": 1},
    )
    if jobs_in_bot is not None:
        every = jobs_in_bot
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


@admin_only
async def on_retrain(update: Update, context: DogContext) -> None:
    """/retrain [full] (admins): train a new model now, report progress, then the result and its chart."""
    full = any(arg.lower() in ("full", "--full") for arg in context.args or [])
    lifecycle = context.services.lifecycle
    status = await update.effective_message.reply_text(texts.retrain_step("starting"))
    loop = asyncio.get_running_loop()
    edits = []

    def progress(step: str) -> None:
        edits.append(asyncio.run_coroutine_threadsafe(_edit(status, texts.retrain_step(step)), loop))

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
        await _edit(status, texts.not_retrained(str(refusal)))
        return
    await _edit(status, texts.retrain_done(result.promoted))
    await _reply_with_chart(update, retrain_report(result, context.services.breed_name), result.report)


@admin_only
async def on_drift(update: Update, context: DogContext) -> None:
    """/drift (admins): compare recent photos with the model's reference now; reply with the chart."""
    await update.effective_message.reply_text(texts.CHECKING_DRIFT)
    lifecycle = context.services.lifecycle
    result = await asyncio.to_thread(lifecycle.drift, trigger="telegram")
    await _reply_with_chart(update, texts.drift_report(result, context.services.breed_name), result.chart)


@admin_only
async def on_models(update: Update, context: DogContext) -> None:
    """/models (admins): every model version, which one serves, and why others were rejected."""
    rows = await asyncio.to_thread(context.services.lifecycle.models)
    await update.effective_message.reply_text(model_list(rows, context.services.timezone)[:_MAX_MESSAGE])


@admin_only
async def on_rollback(update: Update, context: DogContext) -> None:
    """/rollback [reason] (admins): serve the previous champion again."""
    actor = str(update.effective_user.id) if update.effective_user else None
    reason = " ".join(context.args or [])
    lifecycle = context.services.lifecycle
    try:
        old, new = await asyncio.to_thread(lambda: lifecycle.rollback(actor=actor, reason=reason))
    except (RegistryError, LockBusy) as refused:
        await update.effective_message.reply_text(texts.not_rolled_back(str(refused)))
        return
    await update.effective_message.reply_text(texts.rolled_back(old, new))


@admin_only
async def on_report(update: Update, context: DogContext) -> None:
    """/report (admins): the chart of the last `dogbot simulate --report` run."""
    found = last_report(context.services.data_dir)
    if found is None:
        await update.effective_message.reply_text(texts.NO_SIMULATION_REPORT)
        return
    summary, chart = found
    await _reply_with_chart(update, summary, str(chart))


async def check_registry(context: DogContext) -> None:
    """Serve a newly promoted champion; tell admins about drift alarms and models trained elsewhere."""
    lifecycle = context.services.lifecycle
    await asyncio.to_thread(lifecycle.refresh)
    reports, models = await asyncio.to_thread(lifecycle.recent_events)
    news = _news(reports, models, context.bot_data)
    services = context.services
    for write, chart in news:
        for admin_id in sorted(services.members.admin_ids):
            chosen = await asyncio.to_thread(services.members.language, admin_id)
            with i18n.using(chosen or services.language):
                text = write()
            with contextlib.suppress(TelegramError):  # an admin who never opened the bot
                if chart and Path(chart).is_file():
                    with Path(chart).open("rb") as picture:
                        await context.bot.send_photo(admin_id, picture, caption=text[:_MAX_CAPTION])
                else:
                    await context.bot.send_message(admin_id, text[:_MAX_MESSAGE])


async def run_job_in_bot(context: DogContext) -> None:
    """One-process mode: a scheduled lifecycle job, in a worker thread, recorded like the worker's."""
    await asyncio.to_thread(run_scheduled, context.services.lifecycle, context.job.data)


def _news(reports, models, bot_data: dict) -> list[tuple[Callable[[], str], str | None]]:
    """Drift alarms and models trained by others since the last check (nothing on the first check),
    each as a function that words it: called per admin, in that admin's language."""
    last_report = bot_data.get("seen_drift_report")
    last_model = bot_data.get("seen_model")
    bot_data["seen_drift_report"] = max((r.id for r in reports), default=0)
    bot_data["seen_model"] = max((m.id for m in models), default=0)
    if last_report is None or last_model is None:
        return []
    news = []
    for report in sorted(reports, key=lambda r: r.id):
        if report.id > last_report and report.drift and report.trigger == "schedule":
            alarms = [t["name"] for t in report.tests if t["alarm"]]
            news.append((partial(texts.drift_alarm, alarms), report.chart))
    for model in models:
        if model.id > last_model and model.actor in ("scheduler", "cli"):
            chart = str(Path(model.report)) if model.report else None
            news.append((partial(texts.model_trained_elsewhere, model), chart))
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
