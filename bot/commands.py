"""Slash commands: /start, /help, /status, /stats, /breeds for staff; the rest for admins."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import CommandHandler

from bot import keyboards, texts
from bot.context import DogContext, admin_only, chat_action
from dogbot import i18n
from dogbot.core.api_clients import ClientError
from dogbot.core.members import MembershipError, Role, parse_user_id
from dogbot.core.standing import accuracy_now
from storage.vocabulary import NOT_A_DOG, PEOPLE

_MAX_MESSAGE = 4096


async def on_start(update: Update, context: DogContext) -> None:
    """/start: who the bot is and what the sender may do."""
    await update.effective_message.reply_text(texts.welcome(context.role, update.effective_user.first_name))


async def on_help(update: Update, context: DogContext) -> None:
    """/help: what the bot does and what each role can do."""
    await update.effective_message.reply_text(texts.help_text(context.role))


async def on_status(update: Update, context: DogContext) -> None:
    """/status: the serving model and the catalog at a glance."""
    services = context.services
    intake = services.catalog.intake
    report, lifecycle, accuracy = await asyncio.to_thread(
        lambda: (
            services.catalog.reporting.status(),
            services.lifecycle.status(),
            accuracy_now(intake.engine, intake.asking, fallback_threshold=intake.rules.auto_accept_threshold),
        )
    )
    await update.effective_message.reply_text(texts.status(report, lifecycle, services.timezone, accuracy))


async def on_stats(update: Update, context: DogContext) -> None:
    """/stats: catalog counts per breed, where labels came from, and disagreements."""
    catalog = context.services.catalog
    rows, disputed = await asyncio.to_thread(
        lambda: (list(catalog.reporting.export_rows()), len(catalog.reporting.conflicts()))
    )
    services = context.services
    # The rows carry the export's English names: back to keys, then the reader's words (as /dogs).
    keys = {breed.display_name: breed.key for breed in catalog.breeds.taxonomy.all()}
    keys["Not a dog"] = NOT_A_DOG

    def name(label: str) -> str:
        return services.breed_name(keys[label]) if label in keys else label

    text = texts.stats(rows, disputed, context.role, name=name)
    await update.effective_message.reply_text(text[:_MAX_MESSAGE])


async def on_breeds(update: Update, context: DogContext) -> None:
    """/breeds [NAME]: every breed the bot knows, or the ones matching NAME."""
    taxonomy = context.services.catalog.breeds.taxonomy
    typed = " ".join(context.args or [])
    if typed:
        found = [context.services.breed_name(breed.key) for breed, _ in taxonomy.suggest(typed, 10)]
        text = texts.breed_search(typed, found)
    else:
        text = texts.breed_list(sorted(context.services.breed_name(breed.key) for breed in taxonomy.all()))
    await update.effective_message.reply_text(text[:_MAX_MESSAGE])


async def on_language(update: Update, context: DogContext) -> None:
    """/language: which language the bot speaks to this person, with a button per language."""
    services = context.services
    await update.effective_message.reply_text(
        texts.language_menu(i18n.current(), i18n.LANGUAGES),
        reply_markup=keyboards.languages(services.codec, i18n.LANGUAGES),
    )


@admin_only
async def on_export(update: Update, context: DogContext) -> None:
    """/export (admins): the catalog as a CSV document."""
    chat_id = update.effective_chat.id
    async with chat_action(context, chat_id, ChatAction.UPLOAD_DOCUMENT):
        reporting = context.services.catalog.reporting
        csv_text = await asyncio.to_thread(reporting.export_csv)
        rows = max(0, csv_text.count("\n") - 1)
        name = f"dogbot-catalog-{reporting.clock().astimezone(context.services.timezone):%Y%m%d-%H%M}.csv"
        await context.bot.send_document(
            chat_id, document=csv_text.encode(), filename=name, caption=texts.export_caption(rows)
        )


@admin_only
async def on_conflicts(update: Update, context: DogContext) -> None:
    """/conflicts (admins): photos where staff gave different answers."""
    found = await asyncio.to_thread(context.services.catalog.reporting.conflicts)
    items = [
        (
            photo.id,
            [
                (label.user_name or label.user_id, label.source, label.breed)  # an API token by its name
                for label in labels
                if label.source in PEOPLE
            ],
        )
        for photo, labels in found
    ]
    text = texts.conflicts(items, context.services.breed_name)
    await update.effective_message.reply_text(text[:_MAX_MESSAGE])


@admin_only
async def on_add_breed(update: Update, context: DogContext) -> None:
    """/addbreed NAME (admins): add a breed the model does not know yet."""
    name = " ".join(context.args or [])
    if not name:
        await update.effective_message.reply_text(texts.usage_add_breed())
        return
    try:
        breed = await asyncio.to_thread(
            context.services.catalog.breeds.add_breed, name, by=update.effective_user.id
        )
    except ValueError as error:  # a name the taxonomy refuses (BreedRefused says why)
        await update.effective_message.reply_text(texts.breed_refused(error, context.services.breed_name))
        return
    await update.effective_message.reply_text(texts.breed_added(breed.display_name, breed.key))


@admin_only
async def on_add_staff(update: Update, context: DogContext) -> None:
    """/addstaff USER_ID (admins): give someone staff rights."""
    await _change_staff(update, context, add=True)


@admin_only
async def on_remove_staff(update: Update, context: DogContext) -> None:
    """/removestaff USER_ID (admins): take staff rights away."""
    await _change_staff(update, context, add=False)


async def _change_staff(update: Update, context: DogContext, *, add: bool) -> None:
    command = "addstaff" if add else "removestaff"
    args = context.args or []
    user_id = parse_user_id(args[0]) if len(args) == 1 else None
    if user_id is None:
        await update.effective_message.reply_text(texts.usage_user_id(command))
        return
    members, by = context.services.members, update.effective_user.id
    change = members.add_staff if add else members.remove_staff
    try:
        changed = await asyncio.to_thread(change, user_id, by=by)
    except MembershipError as error:
        await update.effective_message.reply_text(texts.staff_refused(error.code, error.user_id))
        return
    await update.effective_message.reply_text(texts.staff_changed(user_id, add, changed))


@admin_only
async def on_staff(update: Update, context: DogContext) -> None:
    """/staff (admins): who has staff rights."""
    members = context.services.members
    staff = await asyncio.to_thread(members.staff)
    names = await asyncio.to_thread(members.names)
    await update.effective_message.reply_text(texts.staff_list(members.admin_ids, staff, names))


@admin_only
async def on_api_token(update: Update, context: DogContext) -> None:
    """/apitoken NAME (admins): a new web API token, sent in a private message only."""
    message, admin_id = update.effective_message, update.effective_user.id
    name = " ".join(context.args or [])
    clients = context.services.api_clients
    if not name or clients is None:
        await message.reply_text(texts.usage_api_token())
        return
    try:
        token = await asyncio.to_thread(clients.create, name, by=admin_id)
    except ClientError as error:
        await message.reply_text(texts.token_refused(error.code, error.name))
        return
    try:
        await context.bot.send_message(admin_id, texts.api_token(name, token))
    except TelegramError:  # the admin never opened a private chat with the bot: nobody saw the token
        await asyncio.to_thread(clients.discard, name)
        await message.reply_text(texts.API_TOKEN_UNDELIVERED)
        return
    if message.chat_id != admin_id:
        await message.reply_text(texts.api_token_sent(name))


@admin_only
async def on_asm(update: Update, context: DogContext) -> None:
    """/asm (admins): dogs in Animal Shelter Manager, and what waits or failed, with Send now."""
    sync = context.services.asm
    if sync is None:
        await update.effective_message.reply_text(texts.asm_not_set_up())
        return
    overview = await asyncio.to_thread(sync.overview)
    await update.effective_message.reply_text(
        texts.asm_overview(overview)[:_MAX_MESSAGE],
        reply_markup=keyboards.asm_send_now(context.services.codec),
    )


async def on_asm_send_now(query, context: DogContext) -> None:
    """*Send now* under /asm (admins): sync at once, then say what went and what did not."""
    from jobs.lock import LockBusy

    sync = context.services.asm
    if context.role is not Role.ADMIN or sync is None:
        await query.answer(texts.admin_only(), show_alert=True)
        return
    await query.answer(texts.asm_sending())
    try:
        report = await asyncio.to_thread(sync.sync, send_all=True)
    except LockBusy:
        await query.message.reply_text(texts.asm_busy())
        return
    overview = await asyncio.to_thread(sync.overview)
    text = texts.asm_sync_result(report) + "\n\n" + texts.asm_overview(overview)
    await query.message.reply_text(text[:_MAX_MESSAGE])


async def on_unknown_command(update: Update, context: DogContext) -> None:
    """Any other /command."""
    await update.effective_message.reply_text(texts.TEXT_HINT)


def handlers() -> list[CommandHandler]:
    return [
        CommandHandler("start", on_start),
        CommandHandler("help", on_help),
        CommandHandler("status", on_status),
        CommandHandler("stats", on_stats),
        CommandHandler("breeds", on_breeds),
        CommandHandler("language", on_language),
        CommandHandler("export", on_export),
        CommandHandler("conflicts", on_conflicts),
        CommandHandler("addbreed", on_add_breed),
        CommandHandler("addstaff", on_add_staff),
        CommandHandler("removestaff", on_remove_staff),
        CommandHandler("staff", on_staff),
        CommandHandler("apitoken", on_api_token),
        CommandHandler("asm", on_asm),
    ]
