"""What every handler gets: the services (through ``context.services``) and one access check."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cached_property

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import CallbackContext, ExtBot

from bot import texts
from bot.batcher import MicroBatcher
from bot.callbacks import CallbackCodec
from bot.throttle import PerUserLimit
from dogbot.app import Container
from dogbot.catalog import Catalog
from dogbot.intake import Incoming, Received
from dogbot.limits import SharedPerUserLimit
from dogbot.members import Members, Role


@dataclass
class Services:
    container: Container
    members: Members
    codec: CallbackCodec
    batcher: MicroBatcher[Incoming, Received]
    photo_limit: PerUserLimit | SharedPerUserLimit
    stranger_limit: PerUserLimit
    max_download_bytes: int
    download_timeout_s: float

    @cached_property
    def catalog(self) -> Catalog:
        return self.container.catalog  # loads the model on first use (the bot warms it at start)

    def breed_name(self, key: str) -> str:
        """What people read for a breed key or special label."""
        special = texts.special_name(key)
        if special is not None:
            return special
        try:
            return self.catalog.taxonomy.get(key).display_name
        except KeyError:
            return key


class DogContext(CallbackContext[ExtBot, dict, dict, dict]):
    """PTB's context plus ``services``; see ``ContextTypes(context=DogContext)`` in :mod:`bot.app`."""

    @property
    def services(self) -> Services:
        return self.bot_data["services"]


async def member(update: Update, context: DogContext, *, admin: bool = False) -> Role | None:
    """The sender's role, or None after telling them (politely, and not too often) that they may not."""
    user = update.effective_user
    role = await asyncio.to_thread(context.services.members.role, user.id if user else None)
    if role is Role.STRANGER:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.NOT_STAFF_BUTTON, show_alert=True)
        elif (
            update.effective_message is not None
            and user is not None
            and context.services.stranger_limit.allow(user.id)
        ):
            await update.effective_message.reply_text(texts.stranger(user.id))
        return None
    if admin and role is not Role.ADMIN:
        if update.effective_message is not None:
            await update.effective_message.reply_text(texts.admin_only())
        return None
    return role


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
