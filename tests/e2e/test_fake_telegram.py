"""Self-tests of the fake Bot API server: PTB's own client must accept everything it answers.

A plain ``telegram.Bot`` checks the API methods one by one; a tiny real ``Application`` checks the
whole loop (polling, webhook, downloads, inline buttons) that the end-to-end tests of dogbot rely on.
"""

import asyncio
import io
import time

import aiohttp
import pytest
from fake_telegram import DOWNLOAD, MAX_DOWNLOAD_BYTES, FakeTelegram, free_port
from PIL import Image
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

TOKEN = "123456789:FAKE-telegram-token"
USER = 4242


def jpeg(width: int = 640, height: int = 480) -> bytes:
    """A small real JPEG, so that the fake can make a genuine thumbnail of it."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (180, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
async def server():
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


def make_bot(server: FakeTelegram, token: str = TOKEN, read_timeout: float = 5.0) -> Bot:
    return Bot(
        token,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        request=HTTPXRequest(read_timeout=read_timeout),
    )


@pytest.fixture
async def bot(server):
    async with make_bot(server) as client:
        yield client


# ---------------------------------------------------------------- plain Bot, method by method


async def test_get_me_and_send_message(bot: Bot, server: FakeTelegram):
    assert bot.username == "dogbot_test_bot"
    server.user(USER, "Ann")

    message = await bot.send_message(USER, "Hello")

    assert (message.chat.id, message.text, message.from_user.id) == (USER, "Hello", bot.id)
    [sent] = server.messages_to(USER)
    assert (sent.method, sent.message_id, sent.text) == ("sendMessage", message.message_id, "Hello")


async def test_wrong_token_is_unauthorized(server: FakeTelegram):
    with pytest.raises(InvalidToken, match="rejected"):
        async with make_bot(server, token="1:wrong"):
            pass

    assert [(c.method, c.status, c.description) for c in server.calls] == [("getMe", 401, "Unauthorized")]


async def test_unknown_method_is_404_and_names_ignore_case(bot: Bot, server: FakeTelegram):
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("flipTable")

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}{TOKEN}/flipTable") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{server.base_url}{TOKEN}/GETME") as response:
            assert (await response.json())["result"]["username"] == "dogbot_test_bot"


async def test_long_poll_wakes_up_when_an_update_arrives(bot: Bot, server: FakeTelegram):
    poll = asyncio.create_task(bot.get_updates(timeout=3))
    await server.wait_for_call("getUpdates", lambda call: call.params.get("timeout") == 3)
    started = time.monotonic()

    update_id = await server.send_text(USER, "/status now")
    [update] = await asyncio.wait_for(poll, 1)

    assert time.monotonic() - started < 1
    assert update.update_id == update_id
    assert update.message.text == "/status now"
    assert [(e.type, e.offset, e.length) for e in update.message.entities] == [("bot_command", 0, 7)]
    assert await bot.get_updates(offset=update_id + 1) == ()
    assert server.pending_update_count == 0


async def test_allowed_updates_filter_what_get_updates_returns(bot: Bot, server: FakeTelegram):
    await server.send_text(USER, "hi")

    assert await bot.get_updates(allowed_updates=["callback_query"]) == ()
    [update] = await bot.get_updates(allowed_updates=["message"])
    assert update.message.text == "hi"


async def test_second_poller_ends_the_first_with_conflict(bot: Bot, server: FakeTelegram):
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await server.wait_for_call("getUpdates")

    async with make_bot(server) as other:
        assert await other.get_updates() == ()

    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 1)


async def test_photo_has_sizes_and_the_largest_downloads_as_sent(bot: Bot, server: FakeTelegram):
    data = jpeg(640, 480)
    await server.send_photo(USER, data, caption="new arrival")

    [update] = await bot.get_updates()
    small, large = update.message.photo
    assert max(small.width, small.height) <= 90
    assert (large.width, large.height, large.file_size) == (640, 480, len(data))
    assert update.message.caption == "new arrival"
    file = await bot.get_file(large.file_id)
    assert bytes(await file.download_as_bytearray()) == data
    assert server.downloads == [large.file_id]


async def test_document_over_20_mb_cannot_be_downloaded(bot: Bot, server: FakeTelegram):
    await server.send_document(USER, b"%PDF-1.4", "big.pdf", "application/pdf", file_size=25 * 1024 * 1024)

    [update] = await bot.get_updates()
    assert update.message.document.file_size > MAX_DOWNLOAD_BYTES
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_sticker_and_voice_arrive_as_such(bot: Bot, server: FakeTelegram):
    await server.send_sticker(USER)
    await server.send_voice(USER)

    sticker, voice = await bot.get_updates()
    assert sticker.message.sticker.emoji == "🐶"
    assert voice.message.voice.mime_type == "audio/ogg"


async def test_uploaded_document_is_kept_for_the_test(bot: Bot, server: FakeTelegram):
    server.user(USER)
    csv = b"photo_id,breed\n1,beagle\n"

    message = await bot.send_document(USER, document=csv, filename="labels.csv", caption="export")

    sent = await server.wait_for(lambda s: s.method == "sendDocument")
    assert (sent.file_data, sent.file_name, sent.mime_type, sent.text) == (
        csv,
        "labels.csv",
        "text/csv",
        "export",
    )
    assert message.document.file_size == len(csv)
    file = await bot.get_file(message.document.file_id)
    assert bytes(await file.download_as_bytearray()) == csv


async def test_edit_to_identical_content_is_not_modified(bot: Bot, server: FakeTelegram):
    server.user(USER)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Beagle", callback_data="r:1:beagle")]])
    message = await bot.send_message(USER, "Which breed?", reply_markup=keyboard)

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Which breed?", USER, message.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("Thanks!", USER, message.message_id, reply_markup=keyboard)
    assert edited.edit_date is not None
    await bot.edit_message_reply_markup(USER, message.message_id)  # removes the keyboard
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(USER, message.message_id)

    [current] = server.messages_to(USER)
    assert (current.text, current.buttons) == ("Thanks!", [])
    assert [s.method for s in server.sent] == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]


async def test_html_is_parsed_and_refused_like_telegram(bot: Bot, server: FakeTelegram):
    server.user(USER)

    message = await bot.send_message(USER, "<b>Labrador</b> 93% &amp; more", parse_mode=ParseMode.HTML)

    assert message.text == "Labrador 93% & more"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 8)]
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(USER, "score <3", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(USER, "<b>unclosed", parse_mode=ParseMode.HTML)


async def test_telegram_limits_and_unreachable_chats(bot: Bot, server: FakeTelegram):
    server.user(USER)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]])

    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(USER, "pick", reply_markup=too_long)
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "who?")
    server.block(USER)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_chat_action(USER, ChatAction.TYPING)


async def test_callback_query_can_be_answered_once(bot: Bot, server: FakeTelegram):
    server.user(USER)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes ✅", callback_data="r:7:yes")]])
    message = await bot.send_message(USER, "Correct?", reply_markup=keyboard)
    sent = await server.wait_for(lambda s: s.message_id == message.message_id)

    update_id = await server.press_button(USER, sent, server.find_button(sent, "Yes"))

    [update] = await bot.get_updates()
    query = update.callback_query
    assert (query.data, query.message.message_id, query.message.text) == (
        "r:7:yes",
        message.message_id,
        "Correct?",
    )
    assert await query.answer("Saved")
    assert (await server.wait_for_answer(update_id)).params["text"] == "Saved"
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()


async def test_find_button_fails_with_the_buttons_it_saw(bot: Bot, server: FakeTelegram):
    server.user(USER)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y")]])
    message = await bot.send_message(USER, "Correct?", reply_markup=keyboard)

    with pytest.raises(AssertionError, match=r"0 buttons match 'No'.*\['Yes'\]"):
        server.find_button(message.message_id, "No", chat_id=USER)


async def test_injected_faults_surface_as_ptb_errors(server: FakeTelegram, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # else RetryAfter warns about its int attribute
    server.user(USER)
    async with make_bot(server, read_timeout=0.3) as bot:
        server.fail_next("sendMessage", 502)
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(USER, "one")
        server.fail_next("sendMessage", ("retry_after", 3))
        with pytest.raises(RetryAfter, match="0:00:03"):
            await bot.send_message(USER, "two")
        server.fail_next("SENDMESSAGE", "timeout")
        with pytest.raises(TimedOut):
            await bot.send_message(USER, "three")
        server.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(USER, "four")

        await bot.send_message(USER, "five")

    assert [s.text for s in server.sent] == ["five"]


async def test_download_faults(bot: Bot, server: FakeTelegram):
    await server.send_document(USER, b"a,b\n", "in.csv", "text/csv")
    [update] = await bot.get_updates()
    file = await bot.get_file(update.message.document.file_id)

    server.fail_next(DOWNLOAD, 500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await file.download_as_bytearray()
    assert bytes(await file.download_as_bytearray()) == b"a,b\n"


async def test_webhook_blocks_polling_until_deleted(bot: Bot, server: FakeTelegram):
    url = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens: delivery keeps failing

    assert await bot.set_webhook(url, secret_token="s3cret")
    await server.send_text(USER, "hello")

    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (url, 1)
    assert await bot.delete_webhook()
    [update] = await bot.get_updates()
    assert update.message.text == "hello"


async def test_commands_are_stored_per_scope(bot: Bot, server: FakeTelegram):
    assert await bot.set_my_commands([BotCommand("status", "Queue status")])

    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [("status", "Queue status")]
    assert server.commands() == [{"command": "status", "description": "Queue status"}]
    with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Status!", "bad")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_wait_for_timeout_shows_the_transcript(server: FakeTelegram):
    await server.send_text(USER, "anyone there?")

    with pytest.raises(AssertionError, match="user 4242 → text 'anyone there\\?'"):
        await server.wait_for(lambda sent: True, timeout=0.05)


# ---------------------------------------------------------------- a tiny real Application


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo the text back."""
    await update.message.reply_text(update.message.text)


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Download the largest size and say how many bytes it had."""
    await update.message.reply_chat_action(ChatAction.TYPING)
    file = await update.message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    await update.message.reply_text(f"got {len(data)} bytes")


async def on_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer one inline button."""
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Flip", callback_data="v1:flip")]])
    await update.message.reply_text("Flip?", reply_markup=keyboard)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the query and edit the message; refuse data the bot never sent."""
    query = update.callback_query
    if query.data != "v1:flip":
        await query.answer("Unknown button")
        return
    await query.answer()
    await query.edit_message_text("Flipped")


def build_app(server: FakeTelegram, errors: list[object]) -> Application:
    app = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("menu", on_menu))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)  # PTB would only log it

    app.add_error_handler(on_error)
    return app


async def converse(server: FakeTelegram) -> None:
    """One user's session: text, photo, command, a real button and a forged one."""
    await server.send_text(USER, "hello")
    await server.wait_for(lambda s: s.chat_id == USER and s.text == "hello")

    photo = jpeg()
    await server.send_photo(USER, photo)
    await server.wait_for(lambda s: s.text == f"got {len(photo)} bytes")
    await server.wait_for_call("sendChatAction", lambda call: call.params["action"] == "typing")

    await server.send_text(USER, "/menu")
    menu = await server.wait_for(lambda s: s.text == "Flip?")
    pressed = await server.press_button(USER, menu, server.find_button(menu, "Flip"))
    await server.wait_for_answer(pressed)
    await server.wait_for(lambda s: s.method == "editMessageText" and s.text == "Flipped")

    forged = await server.press_button(USER, menu, "v1:drop-table")
    assert (await server.wait_for_answer(forged)).params["text"] == "Unknown button"
    assert [s.text for s in server.messages_to(USER)] == ["hello", f"got {len(photo)} bytes", "Flipped"]


async def test_application_in_polling_mode(server: FakeTelegram):
    errors: list[object] = []
    app = build_app(server, errors)
    async with app:
        await app.start()
        await app.updater.start_polling(timeout=2)
        try:
            await converse(server)
        finally:
            await app.updater.stop()
            await app.stop()

    assert errors == []
    assert server.pending_update_count == 0  # PTB confirmed every update on stop


async def test_application_in_webhook_mode(server: FakeTelegram):
    errors: list[object] = []
    app = build_app(server, errors)
    port = free_port()
    async with app:
        await app.start()
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret-token",
        )
        try:
            forged = {
                "update_id": 999,
                "message": {
                    "message_id": 999,
                    "date": int(time.time()),
                    "chat": {"id": USER, "type": "private"},
                    "from": server.user(USER),
                    "text": "forged",
                },
            }
            assert await server.post_raw_webhook(forged, secret="wrong") == 403
            assert await server.post_raw_webhook(forged, secret=None) == 403
            with pytest.raises(Conflict):
                await app.bot.get_updates()
            await converse(server)
        finally:
            await app.updater.stop()
            await app.stop()

    assert errors == []
    assert not any(s.text == "forged" for s in server.sent)
    assert server.pending_update_count == 0
