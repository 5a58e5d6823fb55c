"""Dogs in the chat: which dog a photo shows, one card per dog, and the card's buttons.

Which dog a photo joins: an album (one ``media_group_id``) is one dog; a photo sent as a reply to a
dog's card joins that dog; any other photo starts a new dog, since staff often catalog several dogs
in a row and time alone never merges photos. A caption names the dog. When a new dog looks like an
earlier one (``Dogs.same_dog``) its card asks, and one tap merges them.

An album's photos arrive as separate updates handled at once (``block=False``): the first makes the
dog, the others wait for it, and the last to finish (after ``album_settle_s`` without a new photo)
sends the one card. A photo of the album that comes after the card updates it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest

from bot import keyboards, texts
from bot.callbacks import Action, Press
from bot.context import DogContext, chat_action
from dogbot.core.dogs import DogAnswer, NewDog, SameDog, UnknownDog
from dogbot.core.text import clean_text
from storage.vocabulary import AgeGroup, Sex

log = logging.getLogger(__name__)

ALBUM_MEMORY_S = 600.0  # how long this process remembers an album's card (the dog is in the database)


@dataclass
class Album:
    """This process's part of an album: when to send its one card. Which dog it is lives in the
    database (``DogGroup``), so photos of one album taken by two replicas make one dog."""

    key: str
    arrived: int = 0
    finished: int = 0
    last_arrival: float = 0.0
    first: Message | None = None
    card: Message | None = None  # the dog card, once sent
    sending: bool = False


@dataclass(frozen=True)
class Placement:
    """Where a photo goes: ``dog_id``, else ``new_dog`` (its album's dog, or a dog of its own, made
    with the photo)."""

    dog_id: int | None
    new_dog: NewDog | None = None
    album: Album | None = None
    card: Message | None = None  # the card a reply photo joins (to update)
    name: str | None = None  # the caption, when it names the dog
    extra: dict = field(default_factory=dict)


async def place(message: Message, context: DogContext, user_id: int) -> Placement:
    """Decide which dog an incoming photo belongs to; the dog itself is made with the stored photo."""
    services = context.services
    name = clean_text(message.caption, 64) or None
    if message.media_group_id:
        loop = asyncio.get_running_loop()
        albums: dict = context.bot_data.setdefault("albums", {})
        key = f"tg:{message.chat_id}:{message.media_group_id}"
        album = albums.get(key)
        if album is None:
            album = albums[key] = Album(key, first=message)
            loop.call_later(ALBUM_MEMORY_S, albums.pop, key, None)
        album.arrived += 1
        album.last_arrival = loop.time()
        spec = NewDog(source="telegram", group=key, sender_id=user_id, chat_id=message.chat_id)
        return Placement(None, new_dog=spec, album=album, name=name)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        # By identity: the message it answers, as recorded when the bot sent it; never digits in text.
        shown = await asyncio.to_thread(services.catalog.dogs.shown_in, replied.chat_id, replied.message_id)
        if shown is not None:
            return Placement(shown[0].id, card=replied, name=name)
    spec = NewDog(source="telegram", sender_id=user_id, chat_id=message.chat_id)
    return Placement(None, new_dog=spec, name=name)


async def shown_dog(context: DogContext, message: Message | None) -> tuple | None:
    """The dog (and photo) a bot message shows, from the database record of it."""
    if message is None:
        return None
    return await asyncio.to_thread(
        context.services.catalog.dogs.shown_in, message.chat_id, message.message_id
    )


async def remember(context: DogContext, message: Message, dog_id: int, photo_id: int | None = None) -> None:
    """Record which dog a message the bot sent shows."""
    await asyncio.to_thread(
        context.services.catalog.dogs.remember_message,
        message.chat_id,
        message.message_id,
        dog_id,
        photo_id,
        caption=bool(message.photo),
    )


async def refresh_cards(context: DogContext, dog_id: int, *, but: Message | None = None) -> None:
    """Draw again every other card of this dog the bot sent, so no message shows an answer that no
    longer stands (a press on an older message changed it)."""
    cards = await asyncio.to_thread(context.services.catalog.dogs.cards_of, dog_id)
    skip = (but.chat_id, but.message_id) if but is not None else None
    for chat_id, message_id, caption in cards:
        if (chat_id, message_id) == skip:
            continue
        text, markup = await card(context, dog_id)
        try:
            if caption:
                await context.bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=text[:1024], reply_markup=markup
                )
            else:
                await context.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, reply_markup=markup
                )
        except BadRequest as error:  # unchanged, or deleted from the chat meanwhile
            log.info("card %s/%s not redrawn: %s", chat_id, message_id, error.message)


async def after_photo(
    message: Message, context: DogContext, placement: Placement, dog_id: int | None
) -> None:
    """Answer a photo with its dog's card: a new card, the album's one card, or the card it replied to."""
    services = context.services
    if placement.name and dog_id is not None:
        await asyncio.to_thread(services.catalog.dogs.set_details, dog_id, name=placement.name)
    if placement.album is not None:
        await _album_card(context, placement.album)
        return
    if dog_id is None:
        return
    if placement.card is not None:
        await update_card(context, placement.card, dog_id)
        return
    seen_before = placement.extra.get("duplicate", False)
    text, markup = await card(
        context,
        dog_id,
        ask_same_dog=not seen_before,
        extra_breeds=placement.extra.get("breeds", ()),
        seen_before=seen_before,
    )
    sent = await message.reply_text(text, reply_markup=markup, do_quote=True)
    await remember(context, sent, dog_id)


async def _album_card(context: DogContext, album: Album) -> None:
    album.finished += 1
    settle = context.services.album_settle_s
    loop = asyncio.get_running_loop()
    while True:
        if album.card is not None:  # a late photo: the card is out already
            dog = await asyncio.to_thread(context.services.catalog.dogs.group_dog, album.key)
            if dog is not None:
                await update_card(context, album.card, dog.id)
            return
        if album.sending or album.finished < album.arrived:
            return  # another photo's handler will send it
        quiet = loop.time() - album.last_arrival
        if quiet >= settle:
            break
        await asyncio.sleep(settle - quiet)
    album.sending = True
    dog = await asyncio.to_thread(context.services.catalog.dogs.group_dog, album.key)
    if dog is None:
        return  # no photo of the album was stored (each was refused, and told why): no dog
    text, markup = await card(context, dog.id, ask_same_dog=True)
    album.card = await album.first.reply_text(text, reply_markup=markup, do_quote=True)
    await remember(context, album.card, dog.id)


async def card(
    context: DogContext,
    dog_id: int,
    *,
    ask_same_dog: bool = False,
    extra_breeds=(),
    seen_before: bool = False,
    state: str | None = None,
    review: bool = False,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A dog's card: text and buttons, drawn from the catalog as it stands (``state``: a state line
    other than the catalog's, e.g. the question again after “Wrong?”; ``review``: /review asks the
    breed question whatever the model said, and an answer shows the next dog)."""
    services = context.services
    answer, prediction_id, same = await asyncio.to_thread(_card_parts, services.catalog, dog_id, ask_same_dog)
    in_asm = await asyncio.to_thread(services.asm.sent_at, answer.dog.code) if services.asm else None
    if in_asm is not None:  # stored in UTC (SQLite hands it back without a zone): the shelter's day
        in_asm = (in_asm if in_asm.tzinfo else in_asm.replace(tzinfo=UTC)).astimezone(services.timezone)
    text = texts.dog_card(
        answer,
        services.breed_name,
        same,
        seen_before=seen_before,
        state=state,
        in_asm_since=in_asm,
        tz=services.timezone,
    )
    if prediction_id is None:
        return text, None
    if review:
        kind = "ask"
    elif answer.not_a_dog:
        kind = "not_a_dog"
    elif answer.breed is not None and not answer.spot_check:  # a spot check asks, as a question does
        kind = "decided"
    else:
        kind = "ask"
    keys = [breed.key for breed, _ in answer.top]
    keys += [key for key in extra_breeds if key not in keys]
    choices = [(key, services.breed_name(key)) for key in keys]
    markup = keyboards.dog_card(
        services.codec,
        prediction_id,
        kind=kind,
        breeds=choices,
        same_dog_id=same.dog.id if same else None,
        review=review,
    )
    return text, markup


def _card_parts(catalog, dog_id: int, ask_same_dog: bool) -> tuple[DogAnswer, int | None, SameDog | None]:
    answer = catalog.dogs.answer(dog_id)
    prediction = catalog.labelling.latest_prediction(answer.best_photo.id) if answer.best_photo else None
    same = catalog.dogs.same_dog(answer.dog.id) if ask_same_dog else None
    return answer, prediction.id if prediction else None, same


async def update_card(
    context: DogContext,
    message: Message,
    dog_id: int,
    *,
    footer: str | None = None,
    state: str | None = None,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Draw the card again in place (after a press, or a photo that joined the dog); ``state`` and
    ``markup`` replace the catalog's state line and the card's own buttons."""
    text, own_markup = await card(context, dog_id, state=state)
    markup = markup or own_markup
    if footer:
        text = f"{text}\n{footer}"  # under the state line it adds to
    try:
        if message.photo:  # /dog's card is the dog's best photo with the card as its caption
            await context.bot.edit_message_caption(
                chat_id=message.chat_id,
                message_id=message.message_id,
                caption=text[:1024],
                reply_markup=markup,
            )
        else:
            await context.bot.edit_message_text(
                text, chat_id=message.chat_id, message_id=message.message_id, reply_markup=markup
            )
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            raise


# --- commands ------------------------------------------------------------------------------------
async def on_dog(update: Update, context: DogContext) -> None:
    """/dog CODE: that dog's card, with its buttons."""
    message = update.effective_message
    code = " ".join(context.args or []).strip()
    if not code:
        await message.reply_text(texts.usage_dog())
        return
    try:
        dog = await asyncio.to_thread(context.services.catalog.dogs.by_code, code)
    except UnknownDog:
        await message.reply_text(texts.no_such_dog(code))
        return
    catalog = context.services.catalog
    text, markup = await card(context, dog.id)
    best = await asyncio.to_thread(lambda: catalog.dogs.answer(dog.id).best_photo)
    data = await asyncio.to_thread(catalog.dogs.photo_bytes, best) if best is not None else None
    if data is None:
        sent = await message.reply_text(text, reply_markup=markup)
    else:
        async with chat_action(context, message.chat_id, ChatAction.UPLOAD_PHOTO):
            sent = await message.reply_photo(photo=data, caption=text[:1024], reply_markup=markup)
    await remember(context, sent, dog.id)


DOGS_PAGE = 15


async def on_dogs(update: Update, context: DogContext) -> None:
    """/dogs: the dogs that came in lately, newest first, a page at a time."""
    text, markup = await dogs_page(context, 0)
    await update.effective_message.reply_text(text, reply_markup=markup)


async def on_more_dogs(update: Update, context: DogContext, press: Press) -> None:
    """*More* under /dogs: the next page, as a new message (the page above stays readable)."""
    query = update.callback_query
    shown = int(press.arg) if press.arg.isdigit() else 0
    await query.answer()
    text, markup = await dogs_page(context, shown)
    await query.message.reply_text(text, reply_markup=markup)


async def dogs_page(context: DogContext, shown: int) -> tuple[str, InlineKeyboardMarkup | None]:
    services = context.services
    catalog = services.catalog

    def read():
        # One more than a page: whether a *More* button is needed.
        dogs = catalog.dogs.recent(DOGS_PAGE + 1, offset=shown)
        return [catalog.dogs.answer(d.id) for d in dogs[:DOGS_PAGE]], len(dogs) > DOGS_PAGE

    answers, more = await asyncio.to_thread(read)
    text = texts.dog_list(answers, services.breed_name, services.timezone, first=shown + 1)
    markup = keyboards.more_dogs(services.codec, shown + len(answers)) if more else None
    return text, markup


# --- buttons on a dog card --------------------------------------------------------------------------
async def on_dog_button(update: Update, context: DogContext, press: Press) -> None:
    """Sex, age group, Same dog / New dog."""
    query = update.callback_query
    catalog = context.services.catalog
    user_id = query.from_user.id
    prediction = await asyncio.to_thread(catalog.labelling.prediction, press.prediction_id)
    photo = await asyncio.to_thread(catalog.labelling.photo, prediction.photo_id) if prediction else None
    if photo is None or photo.dog_id is None:
        await query.answer(texts.STALE, show_alert=True)
        return
    if press.action is Action.SEX and press.arg in tuple(Sex):
        await asyncio.to_thread(catalog.dogs.set_details, photo.dog_id, sex=press.arg)
        await query.answer(texts.dog_detail_toast("sex", press.arg))
        dog_id = photo.dog_id
    elif press.action is Action.AGE and press.arg in tuple(AgeGroup):
        await asyncio.to_thread(catalog.dogs.set_details, photo.dog_id, age_group=press.arg)
        await query.answer(texts.dog_detail_toast("age", press.arg))
        dog_id = photo.dog_id
    elif press.action is Action.SAME_DOG and press.arg.isdigit():
        kept = await asyncio.to_thread(catalog.dogs.merge, photo.dog_id, int(press.arg), user_id=user_id)
        await query.answer(texts.MERGED_TOAST)
        dog_id = kept.id
    elif press.action is Action.NEW_DOG:
        # After *Same dog* on this card, *New dog* undoes the merge: the texts say what happened.
        merged = await asyncio.to_thread(catalog.dogs.merged_record_of, photo.id)
        if merged is not None:
            apart = await asyncio.to_thread(catalog.dogs.unmerge, merged.id, user_id=user_id)
            await query.answer(texts.unmerged_toast(apart.code))
            dog_id = apart.id
        else:
            await query.answer(texts.KEPT_APART_TOAST)
            dog_id = photo.dog_id
    else:
        await query.answer(texts.STALE, show_alert=True)
        return
    if query.message is not None:
        await update_card(context, query.message, dog_id)
