"""What every handler gets: typed services (``context.services``), the sender's role, one access gate.

The gate (:func:`gate`, a ``TypeHandler`` in group -1, as python-telegram-bot's ``contexttypesbot``
example does cross-cutting work) resolves the sender's role once per update and stops strangers
before any handler runs; :func:`admin_only` guards the admin commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ApplicationHandlerStop, CallbackContext, ExtBot

from bot import texts
from bot.batcher import MicroBatcher
from bot.callbacks import CallbackCodec
from bot.throttle import PerUserLimit
from dogbot import i18n
from dogbot.core.api_clients import ApiClients
from dogbot.core.catalog import Catalog
from dogbot.core.intake import Incoming, Received
from dogbot.core.limits import SharedPerUserLimit
from dogbot.core.members import Members, Role
from jobs.asm_sync import AsmSync
from jobs.service import LifecycleJobs


@dataclass
class Services:
    """What handlers depend on, built by :func:`bot.app.build_application` from the composition root."""

    catalog: Catalog
    lifecycle: LifecycleJobs
    members: Members
    codec: CallbackCodec
    batcher: MicroBatcher[Incoming, Received]
    photo_limit: PerUserLimit | SharedPerUserLimit
    stranger_limit: PerUserLimit
    max_download_bytes: int
    download_timeout_s: float
    data_dir: Path  # the catalog's folder
    album_settle_s: float  # an album's one card waits this long for the rest of its photos
    timezone: tzinfo = UTC  # the shelter's clock, for every time shown
    language: str = i18n.SOURCE_LANGUAGE  # the shelter's language, for people who chose none
    api_clients: ApiClients | None = None  # web API tokens (/apitoken)
    asm: AsmSync | None = None  # the shelter's Animal Shelter Manager (/asm); None: not set up

    def breed_name(self, key: str) -> str:
        """What people read for a breed key or special label, in the current language."""
        special = texts.special_name(key)
        if special is not None:
            return special
        try:
            return i18n.breed_name(key, self.catalog.breeds.breed_name(key))
        except KeyError:
            return key


class DogContext(CallbackContext[ExtBot, dict, dict, dict]):
    """PTB's context plus ``services`` and ``role`` (``ContextTypes(context=DogContext)``, bot/app.py)."""

    # Set by the gate for every update from staff or an admin; handlers never see a stranger.
    role: Role

    @property
    def services(self) -> Services:
        return self.bot_data["services"]


async def gate(update: Update, context: DogContext) -> None:
    """Group -1: refuse forged buttons; resolve the sender's role once; tell a stranger (politely, not
    too often) and stop."""
    query = update.callback_query
    if query is not None and context.services.codec.decode(query.data) is None:
        await query.answer(texts.FORGED, show_alert=True)  # whoever pressed it: nothing to act on
        raise ApplicationHandlerStop
    user = update.effective_user
    user_id = user.id if user else None
    role = context.services.members.known_role(user_id)
    if role is None:  # the cache is stale: read the database in a worker thread
        role = await asyncio.to_thread(context.services.members.role, user_id)
    chosen = context.services.members.language(user_id)  # read with the role: cached, no query
    # Everything said while handling this update is in this person's language (dogbot.i18n).
    i18n.set_language(i18n.choose(chosen, user.language_code if user else None, context.services.language))
    if role is Role.STRANGER:
        if query is not None:
            await query.answer(texts.NOT_STAFF_BUTTON, show_alert=True)
        elif (
            update.effective_message is not None
            and user is not None
            and context.services.stranger_limit.allow(user.id)
        ):
            await update.effective_message.reply_text(texts.stranger(user.id))
        raise ApplicationHandlerStop
    context.role = role
    # Records people read (ASM's comments) name who answered: keep the name they go by, once per change.
    if (
        user is not None
        and user.full_name
        and not context.services.members.name_is_known(user.id, user.full_name)
    ):
        await asyncio.to_thread(context.services.members.remember_name, user.id, user.full_name)


Handler = Callable[[Update, DogContext], Awaitable[None]]


def admin_only(handler: Handler) -> Handler:
    """A command for admins: staff are told it is not theirs, and the handler does not run."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: DogContext) -> None:
        if context.role is not Role.ADMIN:
            if update.effective_message is not None:
                await update.effective_message.reply_text(texts.admin_only())
            return
        await handler(update, context)

    return guarded


@contextlib.asynccontextmanager
async def chat_action(
    context: DogContext, chat_id: int, action: str = ChatAction.TYPING
) -> AsyncIterator[None]:
    """Show "typing…" (Telegram shows it for 5 s) until the block ends, without delaying the block."""

    async def keep_showing() -> None:
        while True:
            with contextlib.suppress(Exception):  # a lost "typing…" is not worth an error
                await context.bot.send_chat_action(chat_id, action)
            await asyncio.sleep(4.5)

    task = asyncio.create_task(keep_showing(), name="dogbot:chat-action")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
