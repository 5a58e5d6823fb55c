"""Admin lifecycle commands (/retrain, /drift, /models, /rollback, /report, /errors) and the
model-refresh job.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from telegram import InputMediaPhoto, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot import keyboards, texts
from bot.callbacks import Action, is_incident_press
from bot.context import DogContext, admin_only
from dogbot import i18n
from dogbot.core.accuracy import weekly_estimates
from dogbot.core.errors import analyse_errors
from dogbot.core.members import Role
from dogbot.core.standing import newly_strict
from dogbot.intake_report import accuracy_weeks, intake_days, intake_png, intake_summary
from dogbot.lifecycle_text import chart_words, model_list, model_namer, retrain_report, retrain_step
from jobs.charts import errors_png
from jobs.incidents import IncidentClosed, IncidentFacts
from jobs.lock import LockBusy
from jobs.registry import NoEarlierModel, RegistryError
from jobs.retrain import FullRetrainUnavailable, RetrainStep
from jobs.scheduler import JOB_ORDER, Intervals, run_scheduled

log = logging.getLogger(__name__)

_MAX_CAPTION = 1024
_MAX_MESSAGE = 4096


def register_lifecycle_handlers(
    application: Application,
    *,
    champion_check_s: float,
    jobs_in_bot: Intervals | None,
    asm_sync_s: float | None = None,
) -> None:
    """Add /retrain, /drift, /models, /rollback, /report, /errors and the repeating registry check.

    ``jobs_in_bot``: the schedule of fold, drift and retrain when this process runs them too;
    ``asm_sync_s``: how often it sends dogs to Animal Shelter Manager then (None: the worker does).
    """
    application.add_handler(CommandHandler("retrain", on_retrain, block=False))
    application.add_handler(CommandHandler("drift", on_drift, block=False))
    application.add_handler(CommandHandler("models", on_models))
    application.add_handler(CommandHandler("rollback", on_rollback))
    application.add_handler(CommandHandler("report", on_report))
    application.add_handler(CommandHandler("errors", on_errors))
    application.add_handler(CallbackQueryHandler(on_incident_button, pattern=is_incident_press, block=False))
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
    if asm_sync_s is not None:
        queue.run_repeating(
            run_asm_sync_in_bot,
            interval=asm_sync_s,
            first=30 + 20 * len(JOB_ORDER),
            name="asm_sync",
            job_kwargs={"coalesce": True, "max_instances": 1},
        )


@admin_only
async def on_retrain(update: Update, context: DogContext) -> None:
    """/retrain [full] (admins): train a new model now, report progress, then the result and its chart."""
    full = any(arg.lower() in ("full", "--full") for arg in context.args or [])
    actor = str(update.effective_user.id) if update.effective_user else None
    await _retrain(update.effective_message, context, actor=actor, full=full)


async def _retrain(message, context: DogContext, *, actor: str | None, full: bool = False) -> None:
    """Retrain, editing one reply to ``message`` with progress, then the result and its chart."""
    lifecycle = context.services.lifecycle
    status = await message.reply_text(retrain_step("starting"))
    loop = asyncio.get_running_loop()
    edits = []
    language = i18n.current()

    def progress(step: RetrainStep) -> None:
        with i18n.using(language):  # called from the training thread: word it in the admin's language
            line = retrain_step(step)
        edits.append(asyncio.run_coroutine_threadsafe(_edit(status, line), loop))

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
        busy = isinstance(refusal, LockBusy)
        await _edit(status, texts.not_retrained(texts.RETRAIN_BUSY if busy else texts.NO_FULL_RETRAIN))
        return
    await _edit(status, texts.retrain_done(result.promoted))
    names = model_namer(await asyncio.to_thread(lifecycle.models), context.services.timezone)
    report = retrain_report(result, context.services.breed_name, names)
    await _reply_with_chart(message, report, result.report)


async def on_incident_button(update: Update, context: DogContext) -> None:
    """A press under a drift incident's message (admins): retrain now, or accept the new normal."""
    query = update.callback_query
    press = context.services.codec.decode(query.data)  # not None: the gate refused forged data
    if context.role is not Role.ADMIN:
        await query.answer(texts.admin_only(), show_alert=True)
        return
    lifecycle = context.services.lifecycle
    actor = str(query.from_user.id)
    incident = await asyncio.to_thread(lifecycle.incident, press.incident_id)
    if incident is None:
        await query.answer(texts.NO_INCIDENT, show_alert=True)
        return
    if incident.closed_at is not None:
        await query.answer(texts.incident_closed(incident.closed_how), show_alert=True)
        return
    if press.action is Action.RETRAIN_NOW:
        await query.answer()
        await _retrain(query.message, context, actor=actor)
        return
    try:
        accepted = await asyncio.to_thread(lifecycle.accept_new_normal, press.incident_id, actor=actor)
    except IncidentClosed:
        await query.answer(texts.incident_closed(None), show_alert=True)
        return
    await query.answer()
    with contextlib.suppress(BadRequest):  # the buttons were removed already
        await query.edit_message_reply_markup(None)
    await query.message.reply_text(texts.new_normal_accepted(len(accepted.new_normal or [])))


@admin_only
async def on_drift(update: Update, context: DogContext) -> None:
    """/drift (admins): compare recent photos with the model's reference now; reply with the chart."""
    await update.effective_message.reply_text(texts.CHECKING_DRIFT)
    lifecycle = context.services.lifecycle
    result = await asyncio.to_thread(lifecycle.drift, trigger="telegram")
    await _reply_with_chart(
        update.effective_message, texts.drift_report(result, context.services.breed_name), result.chart
    )


@admin_only
async def on_models(update: Update, context: DogContext) -> None:
    """/models (admins): every model version, which one serves, and why others were rejected."""
    rows = await asyncio.to_thread(context.services.lifecycle.models)
    text = model_list(rows, context.services.timezone, name=context.services.breed_name)
    await update.effective_message.reply_text(text[:_MAX_MESSAGE])


@admin_only
async def on_rollback(update: Update, context: DogContext) -> None:
    """/rollback [reason] (admins): serve the previous champion again."""
    actor = str(update.effective_user.id) if update.effective_user else None
    reason = " ".join(context.args or [])
    lifecycle = context.services.lifecycle
    try:
        old, new = await asyncio.to_thread(lambda: lifecycle.rollback(actor=actor, reason=reason))
    except NoEarlierModel:
        await update.effective_message.reply_text(texts.not_rolled_back(texts.NO_EARLIER_MODEL))
        return
    except LockBusy:
        await update.effective_message.reply_text(texts.not_rolled_back(texts.RETRAIN_BUSY))
        return
    except RegistryError as refused:  # rare and technical (a model of another backbone): as the log says
        await update.effective_message.reply_text(texts.not_rolled_back(str(refused)))
        return
    names = model_namer(await asyncio.to_thread(lifecycle.models), context.services.timezone)
    await update.effective_message.reply_text(texts.rolled_back(names(old), names(new)))


@admin_only
async def on_errors(update: Update, context: DogContext) -> None:
    """/errors (admins): what the model gets wrong most by people's answers, and what the bot does now."""
    services = context.services
    intake = services.catalog.intake

    def build() -> tuple[str, bytes | None]:
        analysis = analyse_errors(
            intake.engine,
            intake.asking,
            fallback_threshold=intake.rules.auto_accept_threshold,
            now=datetime.now(UTC),
        )
        text = texts.errors(analysis, services.breed_name)
        if not analysis.confusions:
            return text, None
        pairs = [(c.predicted, c.said, c.times) for c in analysis.confusions]
        return text, errors_png(pairs, days=analysis.days, name=services.breed_name, words=chart_words())

    text, chart = await asyncio.to_thread(build)  # the thread keeps the admin's language
    if chart is None:
        await update.effective_message.reply_text(text[:_MAX_MESSAGE])
        return
    await update.effective_message.reply_photo(chart, caption=text[:_MAX_CAPTION])
    if len(text) > _MAX_CAPTION:
        await update.effective_message.reply_text(text[:_MAX_MESSAGE])


@admin_only
async def on_report(update: Update, context: DogContext) -> None:
    """/report (admins): the shelter's own intake day by day, in words and a chart."""
    services = context.services

    def build() -> tuple[str, bytes | None]:
        rows = list(services.catalog.reporting.export_rows())
        alarms, promotions = services.lifecycle.timeline()
        today = datetime.now(services.timezone).date()
        days = intake_days(rows, alarms, promotions, today=today, tz=services.timezone)
        if not days:
            return intake_summary(days), None
        weeks = weekly_estimates(
            services.catalog.intake.engine,
            today=today,
            tz=services.timezone,
            min_answers=services.catalog.intake.asking.rules.min_answers,
        )
        return intake_summary(days) + "\n" + accuracy_weeks(weeks), intake_png(days)

    summary, chart = await asyncio.to_thread(build)  # the thread keeps the admin's language
    if chart is None:
        await update.effective_message.reply_text(summary)
        return
    await update.effective_message.reply_photo(chart, caption=summary[:_MAX_CAPTION])


async def check_registry(context: DogContext) -> None:
    """Serve a newly promoted champion; tell admins about drift incidents, models trained elsewhere
    and the catalog falling below its target accuracy."""
    services = context.services
    lifecycle = services.lifecycle
    await asyncio.to_thread(lifecycle.refresh)
    incidents, models = await asyncio.to_thread(lifecycle.recent_events)
    news = _news(incidents, models, context.bot_data)
    intake = services.catalog.intake
    strict = await asyncio.to_thread(
        newly_strict,
        intake.engine,
        intake.asking,
        fallback_threshold=intake.rules.auto_accept_threshold,
        now=datetime.now(UTC),
    )
    if strict is not None:  # this process turned the rule strict first: it tells admins, once
        news.append(_News(partial(texts.catalog_below_target, strict), None))
    for item in news:
        examples = await asyncio.to_thread(_example_photos, services, item.examples)
        for admin_id in sorted(services.members.admin_ids):
            chosen = await asyncio.to_thread(services.members.language, admin_id)
            with i18n.using(chosen or services.language):  # each admin reads it in their language
                text = item.write()
                markup = keyboards.incident(services.codec, item.incident_id) if item.incident_id else None
            with contextlib.suppress(TelegramError):  # an admin who never opened the bot
                if len(examples) >= 2:
                    await context.bot.send_media_group(admin_id, [InputMediaPhoto(data) for data in examples])
                if item.chart and Path(item.chart).is_file():
                    with Path(item.chart).open("rb") as picture:
                        await context.bot.send_photo(
                            admin_id, picture, caption=text[:_MAX_CAPTION], reply_markup=markup
                        )
                else:
                    await context.bot.send_message(admin_id, text[:_MAX_MESSAGE], reply_markup=markup)


def _example_photos(services, hashes: list[str]) -> list[bytes]:
    photos = []
    for sha256 in hashes:
        try:
            photos.append(services.catalog.labelling.stored_bytes(sha256))
        except OSError:
            log.warning("example photo %s of a drift incident cannot be read", sha256[:12])
    return photos


async def run_job_in_bot(context: DogContext) -> None:
    """One-process mode: a scheduled lifecycle job, in a worker thread, recorded like the worker's."""
    with i18n.using(context.services.language):  # its charts in the shelter's language
        await asyncio.to_thread(run_scheduled, context.services.lifecycle, context.job.data)


async def run_asm_sync_in_bot(context: DogContext) -> None:
    """One-process mode: send due dogs to Animal Shelter Manager (the outbox keeps what fails)."""
    from jobs.lock import LockBusy

    try:
        await asyncio.to_thread(context.services.asm.sync, check_asm=False)
    except LockBusy:
        log.info("asm sync: another process is sending")


@dataclass(frozen=True)
class _News:
    write: Callable[[], str]  # words it: called per admin, in that admin's language
    chart: str | None
    examples: list[str] = field(default_factory=list)  # photo hashes (a drift incident's)
    incident_id: int | None = None  # a drift incident: its buttons go under the message


def _news(incidents, models, bot_data: dict) -> list[_News]:
    """Drift incidents opened and models trained by others since the last check (nothing on the
    first check: what happened before this process started was told by the one before it)."""
    last_incident = bot_data.get("seen_incident")
    last_model = bot_data.get("seen_model")
    bot_data["seen_incident"] = max((i.id for i in incidents), default=last_incident or 0)
    bot_data["seen_model"] = max((m.id for m in models), default=last_model or 0)
    if last_incident is None or last_model is None:
        return []
    news = []
    for incident in sorted(incidents, key=lambda i: i.id):
        if incident.id > last_incident:
            facts = IncidentFacts.from_json(incident.facts)
            write = partial(texts.drift_incident, facts, _breed_name_of(bot_data), _timezone_of(bot_data))
            news.append(_News(write, facts.chart, facts.examples, incident.id))
    for model in models:
        if model.id > last_model and model.actor in ("scheduler", "cli"):
            chart = str(Path(model.report)) if model.report else None
            tz = _timezone_of(bot_data)
            news.append(_News(partial(texts.model_trained_elsewhere, model, tz), chart))
    return news


def _timezone_of(bot_data: dict):
    services = bot_data.get("services")
    return services.timezone if services is not None else UTC


def _breed_name_of(bot_data: dict):
    services = bot_data.get("services")
    return services.breed_name if services is not None else str


async def _reply_with_chart(message, text: str, chart: str | None) -> None:
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
