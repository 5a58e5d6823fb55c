"""Photo intake handlers: a photo (or image file) in, its dog's card (breed and a question) out.

Each handler checks who is asking before touching the file (nothing of a stranger's is downloaded,
stored or classified), checks the declared size before downloading, then hands the bytes to the
micro-batcher, which stores every photo before classifying it.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.error import BadRequest, NetworkError

from bot import dogs, keyboards, texts
from bot.context import DogContext, Services, chat_action
from bot.throttle import PerUserLimit
from dogbot.core.intake import Incoming

log = logging.getLogger(__name__)

# Files Telegram calls documents that are certainly not photos: refused without downloading.
_NOT_IMAGES = ("text/", "audio/", "video/", "application/pdf", "application/zip", "application/msword")


async def on_photo(update: Update, context: DogContext) -> None:
    """A compressed photo: classify its largest size."""
    message = update.effective_message
    largest = message.photo[-1]
    await _take(update, context, largest.file_id, largest.file_size, file_name=None)


async def on_document(update: Update, context: DogContext) -> None:
    """A file: classify it if it is an image (uncompressed photos arrive this way), else say why not."""
    message = update.effective_message
    document = message.document
    mime = (document.mime_type or "").lower()
    if mime.startswith(_NOT_IMAGES):
        await message.reply_text(texts.not_an_image(document.file_name, document.mime_type))
        return
    await _take(update, context, document.file_id, document.file_size, file_name=document.file_name)


async def on_other_media(update: Update, context: DogContext) -> None:
    """Stickers, voice, GIFs, videos: a clear "I need a photo"."""
    message = update.effective_message
    if message.sticker:
        reply = texts.STICKER
    elif message.voice or message.audio or message.video_note:
        reply = texts.VOICE
    elif message.animation:
        reply = texts.ANIMATION
    elif message.video:
        reply = texts.VIDEO
    else:
        reply = texts.UNSUPPORTED
    await message.reply_text(reply)


async def _take(
    update: Update, context: DogContext, file_id: str, file_size: int | None, *, file_name: str | None
) -> None:
    message, services = update.effective_message, context.services
    user_id = update.effective_user.id
    if file_size is not None and file_size > services.max_download_bytes:
        await message.reply_text(texts.too_big(file_size, services.max_download_bytes // (1024 * 1024)))
        return
    if not await _within_limit(services, user_id):
        await message.reply_text(texts.slow_down(services.photo_limit.limit))
        return
    async with chat_action(context, message.chat_id):
        data = await _download(context, file_id)
        if isinstance(data, str):
            await message.reply_text(data)
            return
        placement = await dogs.place(message, context, user_id)
        received = await services.batcher.submit(
            Incoming(
                data,
                sender_id=user_id,
                chat_id=message.chat_id,
                file_name=file_name,
                dog_id=placement.dog_id,
                new_dog=placement.new_dog,
            )
        )
    dog_id = placement.dog_id
    if received.rejected is not None:
        log.info("photo from %s refused: %s", user_id, received.rejected.code)
        await message.reply_text(texts.rejected(received.rejected.message))
    elif received.stored is not None:
        ref = await asyncio.to_thread(services.catalog.dogs.photo_ref, received.stored.id)
        await message.reply_text(texts.stored_unclassified(texts.photo_words(ref, received.stored.id)))
        dog_id = received.stored.dog_id
    else:
        dog_id = received.classification.photo.dog_id
        if dog_id is None:  # the model is sure it is not a dog: no dog code, no dog card
            result = received.classification
            if result.spot_check:  # picked at random for staff to check: the question's buttons
                choices = [(key, services.breed_name(key)) for key in result.button_breeds]
                markup = keyboards.question(services.codec, result.prediction.id, choices)
            else:
                markup = keyboards.not_a_dog(services.codec, result.prediction.id)
            await message.reply_text(
                texts.classification(result, services.breed_name), reply_markup=markup, do_quote=True
            )
            return
        if placement.card is not None and dog_id != placement.dog_id:
            # A photo already in another dog with more photos stays there: say which, change nothing.
            code = await asyncio.to_thread(lambda: services.catalog.dogs.get(dog_id).code)
            await message.reply_text(texts.already_in_dog(code))
            return
        group = placement.new_dog.group if placement.new_dog is not None else None
        if group is not None and received.classification.duplicate:
            # An album photo the catalog has in another dog: say where it is (the album's card,
            # if the album has new photos, counts only those).
            album_dog = await asyncio.to_thread(services.catalog.dogs.group_dog, group)
            if album_dog is None or album_dog.id != dog_id:
                code = await asyncio.to_thread(lambda: services.catalog.dogs.get(dog_id).code)
                await message.reply_text(texts.already_in_dog(code))
        if placement.album is None and placement.card is None:
            # The breeds staff taught lately that this photo looks like stay among the buttons.
            placement.extra["breeds"] = received.classification.button_breeds
            placement.extra["duplicate"] = received.classification.duplicate
    if received.classification is not None or placement.album is not None:
        await dogs.after_photo(message, context, placement, dog_id)


async def _within_limit(services: Services, user_id: int) -> bool:
    """Count the photo against the sender's limit: in memory here, or in the database off the event loop."""
    limit = services.photo_limit
    if isinstance(limit, PerUserLimit):
        return limit.allow(user_id)
    return await asyncio.to_thread(limit.allow, user_id)


async def _download(context: DogContext, file_id: str, attempts: int = 3) -> bytes | str:
    """The file's bytes, retrying network errors; else what to tell the sender."""
    timeout = context.services.download_timeout_s
    for attempt in range(attempts):
        try:
            file = await context.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray(read_timeout=timeout, write_timeout=timeout))
        except BadRequest as error:  # "file is too big", "wrong file_id": retrying will not help
            log.info("cannot download a file: %s", error.message)
            if "too big" in error.message.lower():
                limit_mb = context.services.max_download_bytes // (1024 * 1024)
                return texts.too_big(None, limit_mb)
            return texts.download_failed()
        except NetworkError as error:
            log.warning("download attempt %d failed: %s", attempt + 1, error.message)
            await asyncio.sleep(0.5 * 2**attempt)
    return texts.download_failed()
