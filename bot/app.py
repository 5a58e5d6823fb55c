"""Wiring the Telegram application: request settings, handlers, error handling, polling or webhook."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from functools import partial
from urllib.parse import urlsplit

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot import answers, commands, dogs, intake, texts
from bot.batcher import MicroBatcher
from bot.callbacks import CallbackCodec, derive_secret
from bot.context import DogContext, Services, gate
from bot.errors import RetryingRateLimiter, install_redaction, on_error
from bot.lifecycle import register_lifecycle_handlers
from bot.throttle import PerUserLimit
from dogbot import i18n
from dogbot.app import Container
from dogbot.core.api_clients import ApiClients
from dogbot.core.intake import receive
from dogbot.core.limits import SharedPerUserLimit
from dogbot.i18n import _
from jobs.scheduler import Intervals

log = logging.getLogger(__name__)

# Only what the handlers use: edited messages and other update types never reach the bot.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

_OTHER_MEDIA = (
    filters.ANIMATION
    | filters.Sticker.ALL
    | filters.VOICE
    | filters.AUDIO
    | filters.VIDEO
    | filters.VIDEO_NOTE
)


def build_application(
    container: Container,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> Application:
    """The bot, ready to run; ``request`` replaces the network layer (tests)."""
    settings = container.settings
    if not settings.telegram_token:
        raise ValueError("DOGBOT_TELEGRAM_TOKEN is not set")
    container.train_in_child = True  # before the jobs are built: this process never loads torch
    catalog = container.catalog  # loads the model now, so the first photo is answered as fast as the rest
    catalog.breeds.reserve(texts.button_words())  # /addbreed refuses every word on a button
    services = Services(
        catalog=catalog,
        lifecycle=container.lifecycle,
        members=container.members,
        codec=CallbackCodec(derive_secret(settings.telegram_token, settings.callback_secret)),
        batcher=MicroBatcher(
            lambda items: receive(catalog.intake, items),
            window_s=settings.batch_window_ms / 1000,
            max_size=settings.batch_max_size,
        ),
        photo_limit=(
            SharedPerUserLimit(container.engine, settings.photos_per_minute, 60.0)
            if settings.shared_rate_limit
            else PerUserLimit(settings.photos_per_minute, 60.0)
        ),
        stranger_limit=PerUserLimit(1, settings.stranger_reply_cooldown_s),
        max_download_bytes=catalog.intake.rules.max_bytes,
        timezone=container.timezone,
        language=settings.language,
        download_timeout_s=settings.download_timeout_s,
        data_dir=settings.data_dir,
        album_settle_s=settings.album_settle_s,
        api_clients=ApiClients(container.engine),
        asm=container.asm_sync if container.asm_configured else None,
    )
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .context_types(ContextTypes(context=DogContext))
        .rate_limiter(RetryingRateLimiter(max_retries=settings.telegram_max_retries))
        .post_init(partial(_post_init, services=services))
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(get_updates_request or request)
    else:
        # Uploads of review photos and CSV exports, downloads of 20 MB files: generous write/read
        # timeouts; a pool big enough for 20 staff sending at once.
        builder = builder.request(
            HTTPXRequest(
                connection_pool_size=64,
                connect_timeout=10.0,
                read_timeout=20.0,
                write_timeout=20.0,
                pool_timeout=10.0,
                media_write_timeout=60.0,
            )
        )
    application = builder.build()
    application.bot_data["services"] = services
    add_handlers(
        application,
        champion_check_s=settings.champion_check_seconds,
        jobs_in_bot=container.intervals if settings.jobs_in_bot else None,
        asm_sync_s=settings.asm_sync_minutes * 60 if settings.jobs_in_bot and services.asm else None,
    )
    return application


def add_handlers(
    application: Application,
    *,
    champion_check_s: float,
    jobs_in_bot: Intervals | None,
    asm_sync_s: float | None = None,
) -> None:
    # The gate runs first for every update: it resolves the sender's role and stops strangers.
    application.add_handler(TypeHandler(Update, gate), group=-1)
    register_lifecycle_handlers(
        application, champion_check_s=champion_check_s, jobs_in_bot=jobs_in_bot, asm_sync_s=asm_sync_s
    )
    for handler in commands.handlers():
        application.add_handler(handler)
    application.add_handler(CommandHandler("review", answers.on_review))
    application.add_handler(CommandHandler("dog", dogs.on_dog))
    application.add_handler(CommandHandler("dogs", dogs.on_dogs))
    # Photos never wait for each other: each is handled in its own task (block=False).
    application.add_handler(MessageHandler(filters.PHOTO, intake.on_photo, block=False))
    application.add_handler(MessageHandler(_OTHER_MEDIA, intake.on_other_media))
    application.add_handler(MessageHandler(filters.Document.ALL, intake.on_document, block=False))
    application.add_handler(CallbackQueryHandler(answers.on_button, block=False))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, answers.on_text))
    application.add_handler(MessageHandler(filters.COMMAND, commands.on_unknown_command))
    application.add_handler(MessageHandler(filters.ALL, intake.on_other_media))
    application.add_error_handler(on_error)


async def _post_init(application: Application, *, services: Services) -> None:
    await _set_commands(application, services)


async def _post_shutdown(application: Application) -> None:
    await application.bot_data["services"].batcher.stop()


async def _set_commands(application: Application, services: Services) -> None:
    """The command menu: staff commands for everyone, plus admin commands in admins' chats, in every
    language the bot speaks (Telegram shows each person the one their app uses)."""
    # Each language's menu for apps in that language, and the shelter's as the default for the rest.
    menus = [(language, language) for language in i18n.LANGUAGES] + [(services.language, None)]
    for language, code in menus:
        with i18n.using(language):
            staff = [BotCommand(name, _(what)) for name, what in texts.COMMANDS_STAFF.items()]
            admin = staff + [BotCommand(name, _(what)) for name, what in texts.COMMANDS_ADMIN.items()]
        try:
            await application.bot.set_my_commands(staff, scope=BotCommandScopeDefault(), language_code=code)
        except TelegramError as error:
            log.warning("could not set the command menu: %s", error.message)
        for admin_id in sorted(services.members.admin_ids):
            try:
                await application.bot.set_my_commands(
                    admin, scope=BotCommandScopeChat(admin_id), language_code=code
                )
            except TelegramError as error:  # an admin who never opened the bot: "chat not found"
                log.info("no admin command menu for %s: %s", admin_id, error.message)


def webhook_secret(token: str, configured: str = "") -> str:
    """The secret Telegram sends with every webhook request: configured, else derived from the token."""
    if configured:
        return configured
    return hmac.new(token.encode(), b"dogbot webhook v1", hashlib.sha256).hexdigest()


def run_bot(container: Container) -> int:
    """Run until stopped (Ctrl-C, SIGTERM); webhook mode when DOGBOT_WEBHOOK_URL is set, else polling."""
    settings = container.settings
    if not settings.telegram_token:
        print(texts.BOTFATHER, file=sys.stderr)
        return 2
    secret = webhook_secret(settings.telegram_token, settings.webhook_secret)
    # The webhook's path is a secret too (anyone who knows it can post updates to the bot's port).
    path = urlsplit(settings.webhook_url).path.lstrip("/")
    install_redaction([settings.telegram_token, secret, settings.callback_secret, path])
    application = build_application(container)
    _announce_when_connected(
        application, settings.webhook_url, settings.webhook_listen, settings.webhook_port
    )
    quiet = _QuietStartupRetries()
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    try:
        if settings.webhook_url:
            log.info("webhook mode on %s:%s", settings.webhook_listen, settings.webhook_port)
            application.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path=path,
                webhook_url=settings.webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,  # photos sent while the bot was down are still answered
                bootstrap_retries=settings.telegram_start_retries,
            )
        else:
            log.info("polling mode")
            application.run_polling(
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
                bootstrap_retries=settings.telegram_start_retries,
            )
    except InvalidToken:
        print(texts.TOKEN_REFUSED, file=sys.stderr)
        return 2
    except NetworkError as error:  # after PTB's start-up retries: Telegram cannot be reached at all
        print(texts.telegram_unreachable(settings.telegram_base_url, error.message), file=sys.stderr)
        return 3
    return 0


def ready_line(username: str, webhook_url: str, listen: str, port: int) -> str:
    """What `dogbot run` prints once Telegram has answered: who the bot is and how updates arrive."""
    if not webhook_url:
        return f"connected to Telegram as @{username}; polling for updates (Ctrl-C stops)"
    # Only the host: the webhook's path is a secret (anyone who knows it can post updates).
    return (
        f"connected to Telegram as @{username}; webhook for {urlsplit(webhook_url).hostname}, "
        f"listening on {listen}:{port} (Ctrl-C stops)"
    )


def _announce_when_connected(application: Application, webhook_url: str, listen: str, port: int) -> None:
    """Print :func:`ready_line` after start-up reached Telegram (PTB runs post_init after getMe)."""
    before = application.post_init

    async def announce(app: Application) -> None:
        if before is not None:
            await before(app)
        print(ready_line(app.bot.username, webhook_url, listen, port), flush=True)

    application.post_init = announce


class _QuietStartupRetries(logging.Filter):
    """Drops PTB's start-up retry records (a traceback each): run_bot says in one line what failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("telegram.ext") and "Bootstrap" in record.getMessage())
