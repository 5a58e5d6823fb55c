"""Staff answering questions: button presses, typed breed names after "Other…", and /review."""

from __future__ import annotations

import asyncio
import weakref

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest

from bot import commands, dogs, keyboards, texts
from bot.callbacks import Action, Press, breed_matches
from bot.context import DogContext, chat_action
from dogbot import i18n
from dogbot.core import review
from dogbot.core.dogs import NewDog
from dogbot.core.labelling import LabelResult, UnknownBreed
from dogbot.core.members import Role
from dogbot.core.text import clean_text
from storage.vocabulary import MIXED_BREED, SKIP, SPECIAL_LABELS, LabelSource


async def on_button(update: Update, context: DogContext) -> None:
    """A press on a question's button: record the answer, or offer more choices."""
    query = update.callback_query
    # One person's presses apply in the order they were made: PTB starts each press's task in
    # update order, and this lock (first-come, first-served) is taken before anything is awaited.
    async with _person_lock(context, query.from_user.id):
        await _on_press(update, context)


async def _on_press(update: Update, context: DogContext) -> None:
    query = update.callback_query
    press = context.services.codec.decode(query.data)  # not None: the gate refused forged data
    role = context.role
    if press.action is Action.LANGUAGE:
        await _choose_language(query, context, press.arg)
    elif press.action is Action.LABEL:
        await _record(query, context, press, role, update.update_id)
    elif press.action in (Action.SEX, Action.AGE, Action.SAME_DOG, Action.NEW_DOG):
        await dogs.on_dog_button(update, context, press)
    elif press.action in (Action.MIX_PRIMARY, Action.MIX_SECOND):
        await _record_mix(query, context, press, role, update.update_id)
    elif press.action is Action.OTHER:
        await _ask_breed_name(query, context, press)
    elif press.action is Action.MORE_DOGS:
        await dogs.on_more_dogs(update, context, press)
    elif press.action is Action.ASM_SEND_NOW:
        await commands.on_asm_send_now(query, context)
    else:  # WRONG, IS_DOG: show the full question again
        await _reopen(query, context, press)


async def _choose_language(query: CallbackQuery, context: DogContext, language: str) -> None:
    if language not in i18n.LANGUAGES:
        await query.answer(texts.FORGED, show_alert=True)
        return
    await asyncio.to_thread(context.services.members.choose_language, query.from_user.id, language)
    i18n.set_language(language)
    said = texts.language_set(i18n.LANGUAGES, language)
    await query.answer(said)
    try:
        await query.edit_message_text(said)
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            raise


async def _answer(
    query: CallbackQuery,
    context: DogContext,
    press: Press,
    role: Role,
    breed: str,
    *,
    update_id: int,
    primary: str | None = None,
    secondary: str | None = None,
) -> tuple[LabelResult, str | None] | None:
    """Record the presser's answer and say so in the toast, with a line saying what it replaces
    when it changes an earlier answer (the person's own, else another person's, named); None (after
    saying why) when the question is out of date or the breed is gone."""
    services = context.services
    before = await asyncio.to_thread(
        review.earlier_answer, services.catalog, press.prediction_id, query.from_user.id
    )
    try:
        result = await asyncio.to_thread(
            review.answer,
            services.catalog,
            press.prediction_id,
            breed,
            source=LabelSource.ADMIN if role is Role.ADMIN else LabelSource.STAFF,
            user_id=query.from_user.id,
            primary=primary,
            secondary=secondary,
            update_id=update_id,
        )
    except review.StaleAnswer:
        await query.answer(texts.STALE, show_alert=True)
        return None
    except review.OlderPress:  # pressed again since, and that press was applied first (another replica)
        await query.answer(texts.NEWER_ANSWER_STANDS)
        return None
    except UnknownBreed:
        await query.answer(texts.UNKNOWN_BREED, show_alert=True)
        return None
    replaced = before is not None and result.created and before.breed != breed
    if replaced:
        # A press on an older message changes a later answer: say what it replaces, and when.
        when = texts.local_time(before.created_at, services.timezone)[-5:]
        by = None  # the presser's own answer
        if before.user_id != query.from_user.id:
            known = (
                await asyncio.to_thread(services.members.name_of, before.user_id) if before.user_id else None
            )
            by = known or before.user_name or ""
        note = texts.answer_replaces(before.breed, breed, when, services.breed_name, by=by)
        await query.answer(note)
        return result, note
    await query.answer(texts.answer_toast(breed, result.created, services.breed_name))
    return result, None


async def _record(
    query: CallbackQuery, context: DogContext, press: Press, role: Role, update_id: int
) -> None:
    services = context.services
    breed = _breed_key(press.arg, context)
    # Where /review goes on: after this dog, found before the answer changes which photos wait.
    position = (
        await asyncio.to_thread(review.review_position, services.catalog, press.prediction_id)
        if press.review
        else 0
    )
    answered = await _answer(query, context, press, role, breed, update_id=update_id)
    if answered is None:
        return
    result, replaced = answered
    if not result.created:
        return  # a double tap: the message already says this
    photo_id = result.label.photo_id
    code = await _card_code(context, query)
    if breed == MIXED_BREED and code is not None:
        # The first of two taps: which breed the mix looks most like (restart-safe: the next press
        # carries the prediction id, and the mix so far is the person's latest label).
        question = await asyncio.to_thread(review.current_question, services.catalog, press.prediction_id)
        choices = [(b.key, b.display_name) for b, _ in question.top]
        async with _message_lock(context, query):
            await _edit(
                query,
                texts.mixed_primary_question(code),
                keyboards.mix_primary(services.codec, press.prediction_id, choices, review=press.review),
            )
        return
    # Presses racing each other (one person's quick taps, or two staff at once) finish in any order:
    # the message is drawn from the catalog as it stands after this write, one edit of it at a time,
    # so the last edit shows the label that stands and any disagreement, whatever order they ran in.
    async with _message_lock(context, query):
        mine, resolved = await asyncio.to_thread(
            services.catalog.labelling.answers_now, photo_id, query.from_user.id
        )
        given = mine or breed
        decided = resolved.breed if resolved else None
        conflict = bool(resolved and resolved.conflict)
        if code is not None:  # a dog card: drawn again from the whole dog, its state line saying it
            note = texts.card_answer_note(given, decided, services.breed_name)
            note = "\n".join(line for line in (replaced, note) if line) or None
            dog_id = await _dog_of(context, photo_id)
            await dogs.update_card(context, query.message, dog_id, footer=note)
            await dogs.refresh_cards(context, dog_id, but=query.message)
        elif replaced:
            given_line = await _answer_line(context, photo_id, given, decided, conflict)
            said = f"{replaced}\n{given_line}"
            markup = None if given == SKIP else keyboards.wrong(services.codec, press.prediction_id)
            await _edit(query, said, markup)
            await dogs.refresh_cards(context, await _dog_of(context, photo_id), but=query.message)
        else:
            said = await _answer_line(context, photo_id, given, decided, conflict)
            markup = None if given == SKIP else keyboards.wrong(services.codec, press.prediction_id)
            await _edit(query, said, markup)
    if press.review:
        await send_next_for_review(context, query.message.chat.id, after=position)


async def _record_mix(
    query: CallbackQuery, context: DogContext, press: Press, role: Role, update_id: int
) -> None:
    """The two taps after "Mixed breed" on a dog card: the breed it looks most like, then the other."""
    services = context.services
    user_id = query.from_user.id
    if press.action is Action.MIX_PRIMARY:
        primary = None if press.arg == keyboards.UNKNOWN_MIX else _breed_key(press.arg, context)
        secondary = None
    else:
        primary = await asyncio.to_thread(
            review.mix_primary_of, services.catalog, press.prediction_id, user_id
        )
        secondary = None if press.arg == keyboards.ONE_BREED_MIX else _breed_key(press.arg, context)
        if secondary == primary:
            secondary = None
    answered = await _answer(
        query, context, press, role, MIXED_BREED, update_id=update_id, primary=primary, secondary=secondary
    )
    if answered is None:
        return
    result = answered[0]
    code = await _card_code(context, query)
    async with _message_lock(context, query):
        if press.action is Action.MIX_PRIMARY and primary is not None and code is not None:
            question = await asyncio.to_thread(review.current_question, services.catalog, press.prediction_id)
            choices = [(b.key, b.display_name) for b, _ in question.top if b.key != primary]
            name = services.breed_name(primary)
            markup = keyboards.mix_secondary(
                services.codec, press.prediction_id, choices, name, review=press.review
            )
            await _edit(query, texts.mixed_secondary_question(code, name), markup)
            return
        if query.message is not None:
            await dogs.update_card(context, query.message, await _dog_of(context, result.label.photo_id))
    if press.review and query.message is not None:  # the mix is told: /review goes on to the next dog
        position = await asyncio.to_thread(review.review_position, services.catalog, press.prediction_id)
        await send_next_for_review(context, query.message.chat.id, after=position)


async def photo_words(context: DogContext, photo_id: int) -> str:
    """ "photo 2 of D-2026-0042 Max": the photo as staff name it (by its dog), for a message."""
    ref = await asyncio.to_thread(context.services.catalog.dogs.photo_ref, photo_id)
    return texts.photo_words(ref, photo_id)


async def _answer_line(context: DogContext, photo_id: int, given: str, decided, conflict: bool) -> str:
    ref = await asyncio.to_thread(context.services.catalog.dogs.photo_ref, photo_id)
    words = texts.photo_words(ref, photo_id)
    code = ref.code if ref is not None else None
    return texts.answer_saved(words, code, given, decided, conflict, context.services.breed_name)


async def _card_code(context: DogContext, query: CallbackQuery) -> str | None:
    """The code of the dog a pressed card shows (None: the message is not a dog card)."""
    shown = await dogs.shown_dog(context, query.message)
    return shown[0].code if shown is not None and shown[1] is None else None


async def _dog_of(context: DogContext, photo_id: int) -> int:
    photo = await asyncio.to_thread(context.services.catalog.labelling.photo, photo_id)
    return photo.dog_id


async def _reopen(query: CallbackQuery, context: DogContext, press: Press) -> None:
    services = context.services
    try:
        question = await asyncio.to_thread(review.current_question, services.catalog, press.prediction_id)
    except review.StaleAnswer:
        await query.answer(texts.STALE, show_alert=True)
        return
    await query.answer()
    choices = [(breed.key, services.breed_name(breed.key)) for breed in question.button_breeds]
    markup = keyboards.question(services.codec, press.prediction_id, choices, review=press.review)
    # The text changes with the buttons: "does not look like a dog" above breed buttons, or
    # "Registered as …" above a question, would each say one thing while the buttons say another.
    overruled = press.action is Action.IS_DOG
    code = await _card_code(context, query)
    if overruled and question.photo.dog_id is None and query.message is not None:
        # Someone says it is a dog: now it gets its dog and code, and this message becomes its card.
        photo = question.photo
        spec = NewDog(source=photo.source, sender_id=photo.sender_id, chat_id=photo.chat_id)
        photo = await asyncio.to_thread(services.catalog.dogs.give_dog, photo.id, spec)
        code = (await asyncio.to_thread(services.catalog.dogs.get, photo.dog_id)).code
        async with _message_lock(context, query):
            said = texts.reopened_dog(code, overruled_not_a_dog=True)
            await dogs.update_card(context, query.message, photo.dog_id, state=said, markup=markup)
            await dogs.remember(context, query.message, photo.dog_id)
        return
    async with _message_lock(context, query):
        if code is not None:  # a dog card: its state line becomes the question
            said = texts.reopened_dog(code, overruled_not_a_dog=overruled)
            dog_id = await _dog_of(context, question.photo.id)
            await dogs.update_card(context, query.message, dog_id, state=said, markup=markup)
            return
        words = await photo_words(context, question.photo.id)
        await _edit(query, texts.reopened(words, overruled_not_a_dog=overruled), markup)


async def _ask_breed_name(query: CallbackQuery, context: DogContext, press: Press) -> None:
    try:
        question = await asyncio.to_thread(
            review.current_question, context.services.catalog, press.prediction_id
        )
    except review.StaleAnswer:
        await query.answer(texts.STALE, show_alert=True)
        return
    await query.answer()
    # The typed name usually comes back as a reply to this message; user_data covers clients that drop it.
    context.user_data["asked_photo"] = question.photo.id
    asked = await query.message.reply_text(
        texts.ask_breed_name(await photo_words(context, question.photo.id)),
        reply_markup=keyboards.type_breed(),
    )
    await dogs.remember(context, asked, question.photo.dog_id, question.photo.id)


async def on_text(update: Update, context: DogContext) -> None:
    """Plain text: a breed name after "Other…", else a hint that photos are what this bot wants."""
    message = update.effective_message
    role = context.role
    photo_id = await _asked_photo(update, context)
    if photo_id is None:
        await message.reply_text(texts.TEXT_HINT)
        return
    typed = clean_text(message.text, 64)
    services = context.services
    prediction, found = await asyncio.to_thread(review.breed_choices, services.catalog, photo_id, typed)
    if prediction is None:
        await message.reply_text(texts.STALE)
        return
    if not found:
        await message.reply_text(texts.no_breed_match(typed, role))
        return
    context.user_data.pop("asked_photo", None)
    choices = [(breed.key, services.breed_name(breed.key)) for breed in found]
    await message.reply_text(
        texts.breed_matches(await photo_words(context, photo_id), typed),
        reply_markup=keyboards.matches(services.codec, prediction.id, choices),
    )


async def on_review(update: Update, context: DogContext) -> None:
    """/review: the oldest dog still waiting for an answer, with its photos and one question."""
    await send_next_for_review(context, update.effective_chat.id, after=0)


async def send_next_for_review(context: DogContext, chat_id: int, *, after: int) -> None:
    """The next dog waiting after position ``after`` (see ``review.next_to_review``): its waiting
    photos, then its card asking one question whose answer labels the whole dog."""
    services = context.services
    async with chat_action(context, chat_id, ChatAction.UPLOAD_PHOTO):
        found = await asyncio.to_thread(review.next_to_review, services.catalog, after)
        if found is None:
            await context.bot.send_message(chat_id, texts.REVIEW_DONE)
            return
        if isinstance(found, review.DogReview):
            await _send_dog_for_review(context, chat_id, found)
            return
        question, data = found  # a photo in no dog (the model said it is not one)
        top = [(services.breed_name(breed.key), p) for breed, p in question.top]
        caption = texts.review_caption(
            await photo_words(context, question.photo.id),
            texts.local_time(question.photo.received_at, services.timezone),
            top,
            question.prediction.is_dog,
        )
        choices = [(breed.key, services.breed_name(breed.key)) for breed in question.button_breeds]
        markup = keyboards.question(services.codec, question.prediction.id, choices, review=True)
        await context.bot.send_photo(chat_id, photo=data, caption=caption, reply_markup=markup)


async def _send_dog_for_review(context: DogContext, chat_id: int, found: review.DogReview) -> None:
    services = context.services
    dog = await asyncio.to_thread(services.catalog.dogs.get, found.dog_id)
    first = found.photos[0][0]
    state = texts.review_dog_question(
        texts.dog_title(dog.code, dog.name), texts.local_time(first.received_at, services.timezone)
    )
    text, markup = await dogs.card(context, dog.id, state=state, review=True)
    if len(found.photos) == 1:  # one photo: the card is its caption
        sent = await context.bot.send_photo(
            chat_id, photo=found.photos[0][1], caption=text[:1024], reply_markup=markup
        )
        await dogs.remember(context, sent, dog.id)
        return
    for photo, data in found.photos:  # each photo named by its dog, then the one question
        caption = texts.review_photo(await photo_words(context, photo.id))
        shown = await context.bot.send_photo(chat_id, photo=data, caption=caption)
        await dogs.remember(context, shown, dog.id, photo.id)
    sent = await context.bot.send_message(chat_id, text, reply_markup=markup)
    await dogs.remember(context, sent, dog.id)


async def _asked_photo(update: Update, context: DogContext) -> int | None:
    """Which photo a typed breed name is for: the question it replies to (by the record of that
    message, never digits in its text), else the last one asked."""
    replied = update.effective_message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        shown = await dogs.shown_dog(context, replied)
        if shown is None:
            return None  # a reply to a message that asks about no photo is not an answer
        dog, photo_id = shown
        if photo_id is not None:
            return photo_id
        photos = await asyncio.to_thread(context.services.catalog.dogs.photos_of, dog.id)
        return photos[0].id if photos else None
    return context.user_data.get("asked_photo")


def _breed_key(arg: str, context: DogContext) -> str:
    """The breed key a button names (buttons for very long custom names carry a hash of the key)."""
    taxonomy = context.services.catalog.breeds.taxonomy
    if arg in SPECIAL_LABELS or arg in taxonomy:
        return arg
    return next((breed.key for breed in taxonomy.all() if breed_matches(arg, breed.key)), arg)


def _person_lock(context: DogContext, user_id: int) -> asyncio.Lock:
    """One lock per person in this process, kept only while some press of theirs holds or awaits it."""
    locks: weakref.WeakValueDictionary = context.bot_data.setdefault(
        "person_locks", weakref.WeakValueDictionary()
    )
    lock = locks.get(user_id)
    if lock is None:
        lock = locks[user_id] = asyncio.Lock()
    return lock


def _message_lock(context: DogContext, query: CallbackQuery) -> asyncio.Lock:
    """One lock per question message in this process, kept only while some press holds or awaits it."""
    locks: weakref.WeakValueDictionary = context.bot_data.setdefault(
        "message_locks", weakref.WeakValueDictionary()
    )
    key = (query.message.chat.id, query.message.message_id) if query.message else query.id
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


async def _edit(query: CallbackQuery, said: str, markup: InlineKeyboardMarkup | None) -> None:
    """Put the outcome under the question, keeping the model's verdict above it."""
    message = query.message
    is_photo = bool(getattr(message, "photo", None))
    current = (message.caption if is_photo else getattr(message, "text", None)) or ""
    text = current.split(texts.ANSWER_SEPARATOR)[0] + texts.ANSWER_SEPARATOR + said
    try:
        if is_photo:
            await query.edit_message_caption(caption=text[:1024], reply_markup=markup)
        else:
            await query.edit_message_text(text[:4096], reply_markup=markup)
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            raise
