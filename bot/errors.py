"""One error handler for the whole bot, log redaction, and retries for Telegram's transient failures."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import AIORateLimiter

from bot import texts
from bot.context import DogContext
from dogbot import i18n

log = logging.getLogger(__name__)

# Methods that may be repeated after a timeout without the user seeing anything twice.
_SAFE_AFTER_TIMEOUT = frozenset(
    {"getMe", "getFile", "sendChatAction", "answerCallbackQuery", "editMessageText",
     "editMessageCaption", "editMessageReplyMarkup", "setMyCommands", "deleteWebhook", "setWebhook"}
)  # fmt: skip
_ADMIN_ALERT_INTERVAL_S = 60.0


class RetryingRateLimiter(AIORateLimiter):
    """PTB's limiter (Telegram's flood limits, retries on ``RetryAfter``) that also retries transient errors.

    A 5xx answer or a refused connection means Telegram did not act, so any call is retried; a timeout
    may mean it acted but the answer was lost, so only calls that are harmless to repeat are retried.
    """

    def __init__(self, max_retries: int, backoff_s: float = 0.5, **kwargs: Any) -> None:
        super().__init__(max_retries=max_retries, **kwargs)
        self.network_retries = max_retries
        self.backoff_s = backoff_s

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):  # type: ignore[override]
        timed_out = False
        for attempt in range(self.network_retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest as error:
                # The timed-out attempt did answer the query (only its reply was lost): Telegram now
                # refuses the repeat as "too old". That is the success the caller asked for.
                too_old = "query is too old" in error.message.lower()
                if timed_out and endpoint == "answerCallbackQuery" and too_old:
                    log.info("answerCallbackQuery had gone through before it timed out")
                    return True
                raise
            except TimedOut:
                if endpoint not in _SAFE_AFTER_TIMEOUT or attempt == self.network_retries:
                    raise
                timed_out = True
                log.info("%s timed out; retrying", endpoint)
            except NetworkError as error:
                if attempt == self.network_retries:
                    raise
                log.info("%s failed (%s); retrying", endpoint, error.message)
            await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


async def on_error(update: object, context: DogContext) -> None:
    """Log the failure without secrets or message content, apologise to the user, and alert admins."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("a user blocked the bot or left the chat: %s", error.message)
        return
    if isinstance(error, BadRequest) and "message is not modified" in error.message.lower():
        return
    where = place(update)
    log.error("error while handling %s", describe(update), exc_info=error)
    # A full disk or a read-only folder is not "try again in a moment": say what is wrong, so staff
    # keep the photo for later, and tell admins what to fix.
    problem = storage_problem(error)
    if isinstance(update, Update):
        with contextlib.suppress(TelegramError):
            if update.callback_query is not None:
                sorry = texts.answer_not_saved(problem) if problem else texts.internal_error()
                await update.callback_query.answer(sorry[:200], show_alert=True)
            elif update.effective_message is not None:
                sorry = texts.photo_not_saved(problem) if problem else texts.internal_error()
                await update.effective_message.reply_text(sorry)
    if problem:
        await _alert_admins(context, problem, partial(texts.storage_alert, problem, where))
    else:
        kind = type(error).__name__
        await _alert_admins(context, kind, partial(texts.error_for_admins, kind, where))


# Storage that refuses writes, whoever reports it: the photo folder (OSError), SQLite (its message),
# PostgreSQL (its SQLSTATE: 53100 disk_full, 25006 read_only_sql_transaction).
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_SQLITE_MESSAGES = (("database or disk is full", "full"), ("readonly database", "read_only"))
_SQLSTATES = {"53100": "full", "25006": "read_only"}


def storage_problem(error: BaseException | None) -> str | None:
    """``"full"`` or ``"read_only"`` when ``error`` (or an error behind it) says storage refuses writes."""
    seen = 0
    while error is not None and seen < 8:  # the error, what it wraps (SQLAlchemy's .orig), its causes
        seen += 1
        if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
            return "full"
        if isinstance(error, OSError) and error.errno in _READ_ONLY_ERRNOS:
            return "read_only"
        state = _SQLSTATES.get(getattr(error, "sqlstate", None) or "")
        if state:
            return state
        message = str(error).lower()
        for words, problem in _SQLITE_MESSAGES:
            if words in message and type(error).__module__.startswith(("sqlite3", "sqlalchemy")):
                return problem
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return None


def place(update: object) -> tuple[str, int | None]:
    """What was being handled (background, button, photo, document, text, ...) and from whom: no
    message text, file ids or secrets. bot/texts.py words it for admins; :func:`describe` for the log."""
    if not isinstance(update, Update):
        return "background", None
    user = update.effective_user
    who = user.id if user else None
    if update.callback_query is not None:
        return "button", who
    message = update.effective_message
    if message is not None:
        kinds = ("photo", "document", "text", "sticker", "voice", "animation")
        return next((k for k in kinds if getattr(message, k)), "message"), who
    return "update", who


def describe(update: object) -> str:
    """Where an error happened, in the log's English."""
    kind, who = place(update)
    if kind == "background":
        return "a background task"
    if kind == "update":
        return f"update {update.update_id}"
    return f"a {'button press' if kind == 'button' else kind}" + (f" from user {who}" if who else "")


async def _alert_admins(context: DogContext, kind: str, alert: Callable[[], str]) -> None:
    """Tell every admin, each in their own language (``alert`` words it)."""
    # At most one alert per kind of error a minute: a failure loop must not become a message flood.
    last: dict[str, float] = context.bot_data.setdefault("admin_alerts", {})
    now = time.monotonic()
    if now - last.get(kind, -_ADMIN_ALERT_INTERVAL_S) < _ADMIN_ALERT_INTERVAL_S:
        return
    last[kind] = now
    members = context.services.members
    for admin_id in sorted(members.admin_ids):
        with i18n.using(members.language(admin_id) or context.services.language):
            text = alert()
        try:
            await context.bot.send_message(admin_id, text)
        except TelegramError as failed:
            log.warning("could not alert admin %s: %s", admin_id, failed.message)


class Redact(logging.Filter):
    """Replaces secrets (the bot token, the webhook secret) in every log record it sees."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted, exc_text = self._clean(message), self._clean(record.exc_text)
        if redacted != message or exc_text != record.exc_text:
            record.msg, record.args, record.exc_text = redacted, None, exc_text
        return True

    def _clean(self, text: str | None) -> str | None:
        if text:
            for secret in self.secrets:
                text = text.replace(secret, "[redacted]")
        return text


def install_redaction(secrets: Iterable[str]) -> None:
    """Redact ``secrets`` from everything the root logger's handlers write."""
    redact = Redact(secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(redact)
    # httpx logs every request URL at INFO, and the URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
