"""A fake Telegram Bot API server over real HTTP, for end-to-end tests.

The real bot talks to it exactly as it talks to api.telegram.org: PTB's ``base_url`` and
``base_file_url`` point here, requests cross a real socket, and the answers are the JSON Telegram
sends. That exercises the wiring a fake ``BaseRequest`` skips: PTB's request layer, update parsing,
long polling, the webhook server, file downloads.

The test plays the users (``send_photo``, ``send_text``, ``press_button``, ...) and asserts on what
the bot did (``sent``, ``calls``, ``wait_for``). The server copies the Telegram behaviours that bots
get wrong, so end-to-end tests catch them: one poller per token, 409 while a webhook is set,
"message is not modified", the 20 MB download limit, callback data over 64 bytes, malformed HTML,
callback queries answered twice, unknown chats, blocked users.

Deliberate differences from Telegram: webhook URLs may be plain http; parse modes other than HTML
are passed through unparsed; only private chats exist (chat id == user id); inline mode, groups and
media groups sent by the bot are not implemented (an unknown method answers 404, as Telegram does).

Usage (polling; for webhooks see ``FakeTelegram.post_raw_webhook`` and the self-tests)::

    async with FakeTelegram() as server:
        app = (ApplicationBuilder().token(server.token)
               .base_url(server.base_url).base_file_url(server.base_file_url).build())
        async with app:
            await app.start()
            await app.updater.start_polling()
            await server.send_text(42, "/start")
            reply = await server.wait_for(lambda s: s.chat_id == 42 and "Welcome" in s.text)
            await app.updater.stop()
            await app.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from http import HTTPStatus
from typing import Any, Literal

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # what a bot may upload
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
THUMBNAIL_SIDE = 90  # Telegram's smallest photo size fits a 90x90 box
DOWNLOAD = "download"  # pseudo method name for fail_next on file downloads

FaultSpec = int | Literal["timeout"] | tuple[Literal["retry_after"], int]

# fmt: off
# Form-encoded requests carry every value as a string; these say how to read them back.
_JSON_PARAMS = frozenset({
    "reply_markup", "allowed_updates", "entities", "caption_entities", "commands", "scope",
    "link_preview_options", "reply_parameters",
})
_NUMBER_PARAMS = frozenset({
    "chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "max_connections",
    "reply_to_message_id", "message_thread_id", "user_id", "duration", "width", "height",
})
_BOOL_PARAMS = frozenset({
    "show_alert", "drop_pending_updates", "disable_notification", "protect_content",
    "disable_web_page_preview", "disable_content_type_detection", "has_spoiler",
    "allow_sending_without_reply", "allow_paid_broadcast",
})
# Update types Telegram leaves out unless a bot asks for them by name.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
# fmt: on
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_COMMAND_IN_TEXT = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
_CONFLICT_POLLER = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


class ApiError(Exception):
    """A refusal the server answers with Telegram's error JSON (HTTP status + description)."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def response(self) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.status)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request, as the bot uploaded it."""

    field_name: str
    file_name: str | None
    mime_type: str | None
    data: bytes


@dataclass
class ApiCall:
    """One Bot API request, as the server understood it.

    ``status`` is None while the answer is pending (a long poll, an injected timeout).
    """

    method: str  # canonical spelling ("sendMessage") whatever the case in the URL
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)
    status: int | None = None
    result: Any = None
    description: str | None = None  # Telegram's error description when it failed

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class StoredFile:
    """A file the server can hand out through getFile and the file download URL.

    ``file_size`` is what Telegram declares; it is ``len(data)`` unless a test declares a bigger
    size to simulate a file over the download limit without allocating it.
    """

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int
    file_name: str | None = None
    mime_type: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The common fields of Telegram's PhotoSize/Document/Voice/Sticker objects."""
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": self.file_size}


@dataclass(frozen=True)
class Sent:
    """A message the bot sent or edited, as it looked right after that call.

    ``text`` is what the user reads: the message text, or the caption of a photo or document
    ("" when there is none), with HTML tags already stripped. ``reply_markup`` is the markup the
    bot passed (reply keyboards included), or the message's inline keyboard after an edit.
    """

    method: str
    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    message: dict[str, Any]  # the Message JSON the server answered
    params: dict[str, Any] = field(default_factory=dict)
    file_data: bytes | None = None  # the uploaded photo or document, e.g. an exported CSV
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """The inline keyboard as (text, callback_data) pairs, row by row."""
        return _buttons(self.reply_markup)

    def __str__(self) -> str:
        line = f"{self.method} chat={self.chat_id} #{self.message_id}: {self.text!r}"
        if self.file_name or self.file_data is not None:
            line += f" file={self.file_name!r} ({len(self.file_data or b'')} B)"
        if self.buttons:
            line += " buttons=[" + ", ".join(f"{t}→{d}" for t, d in self.buttons) + "]"
        return line


@dataclass
class _Fault:
    spec: FaultSpec
    times: int
    description: str | None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class FakeTelegram:
    """An in-process Bot API server that end-to-end tests point the real bot at."""

    def __init__(
        self,
        token: str = "123456789:FAKE-telegram-token",
        *,
        bot_username: str = "dogbot_test_bot",
        bot_first_name: str = "Dogbot",
    ) -> None:
        bot_id, _, _ = token.partition(":")
        self.token = token
        self.bot_id = int(bot_id) if bot_id.isdigit() else 1
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.calls: list[ApiCall] = []
        self.sent: list[Sent] = []
        self.downloads: list[str] = []  # file_ids the bot downloaded, in order

        self._users: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._updates: dict[int, dict[str, Any]] = {}  # every update ever created, by id
        self._pending: list[dict[str, Any]] = []  # not yet confirmed by the bot
        self._allowed_updates: list[str] | None = None
        self._open_queries: set[str] = set()
        self._query_of_update: dict[int, str] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._webhook: _Webhook | None = None
        self._poll_generation = 0
        self._transcript: list[str] = []
        self._changed = asyncio.Condition()
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._methods = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getFile": self._get_file,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendChatAction": self._send_chat_action,
                "answerCallbackQuery": self._answer_callback_query,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "setMyCommands": self._set_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getMyCommands": self._get_my_commands,
                "close": self._always_true,
                "logOut": self._always_true,
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        # Long polls and injected timeouts end when _stopping is set, so a short grace period is enough.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._delivery = asyncio.create_task(self._deliver_webhook_updates(), name="fake-telegram-webhook")

    async def stop(self) -> None:
        """Release waiting long polls, stop webhook delivery and close the socket."""
        self._stopping = True
        await self._notify()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url``; PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url``; PTB appends the token."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot_env(self) -> dict[str, str]:
        """The settings that point a `dogbot run` process at this server instead of Telegram."""
        return {
            "DOGBOT_TELEGRAM_TOKEN": self.token,
            "DOGBOT_TELEGRAM_BASE_URL": self.base_url,
            "DOGBOT_TELEGRAM_BASE_FILE_URL": self.base_file_url,
        }

    # ------------------------------------------------------------------ users act

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> dict[str, Any]:
        """Register (or rename) a user; the bot may only message users the server knows.

        Users who send something are registered automatically; call this for users the bot
        messages first, such as admins notified of an error.
        """
        known = self._users.get(user_id)
        if known is not None and first_name is None:
            return known
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
            "language_code": language_code,
        }
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        self._users[user_id] = user
        return user

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sending to them answers 403 as Telegram does."""
        self.user(user_id)
        self._blocked.add(user_id)

    async def send_text(
        self, user_id: int, text: str, reply_to: Sent | dict[str, Any] | int | None = None
    ) -> int:
        """The user sends text, as a reply to ``reply_to`` if given; commands ("/status",
        "/start@bot x") carry bot_command entities."""
        content: dict[str, Any] = {"text": text}
        entities = [
            {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
            for m in _COMMAND_IN_TEXT.finditer(text)
        ]
        if entities:
            content["entities"] = entities
        summary = f"text {text!r}"
        if reply_to is not None:
            replied = self._messages.get(self._message_key(reply_to, user_id))
            if replied is None:
                raise AssertionError(f"cannot reply to {reply_to!r}: no such message in chat {user_id}")
            content["reply_to_message"] = {
                k: v for k, v in copy.deepcopy(replied).items() if k != "reply_to_message"
            }
            summary += f" reply_to=#{content['reply_to_message']['message_id']}"
        return await self._user_message(user_id, content, summary)

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: Sent | dict[str, Any] | int | None = None,
    ) -> int:
        """The user sends a (compressed) photo, as a reply to ``reply_to`` (a message in their chat) if given.

        Like Telegram, the update lists several sizes, smallest first: a real thumbnail when the
        bytes decode as an image (so a bot that reads ``photo[0]`` gets a tiny picture) and the
        original bytes as the largest size.
        """
        sizes = self._photo_sizes(data)
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        if reply_to is not None:
            replied = self._messages.get(self._message_key(reply_to, user_id))
            if replied is None:
                raise AssertionError(f"cannot reply to {reply_to!r}: no such message in chat {user_id}")
            # As Telegram does: the replied message as it is now, without its own reply.
            content["reply_to_message"] = {
                k: v for k, v in copy.deepcopy(replied).items() if k != "reply_to_message"
            }
        largest = sizes[-1]
        summary = f"photo {largest['width']}x{largest['height']} ({len(data)} B)"
        if caption is not None:
            summary += f" caption={caption!r}"
        if media_group_id is not None:
            summary += f" album={media_group_id}"
        if reply_to is not None:
            summary += f" reply_to=#{content['reply_to_message']['message_id']}"
        return await self._user_message(user_id, content, summary)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str = "file.bin",
        mime_type: str = "application/octet-stream",
        *,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> int:
        """The user sends a file (an uncompressed photo arrives this way too).

        ``file_size`` declares a bigger size than ``data`` to simulate a file over Telegram's 20 MB
        download limit cheaply; getFile then answers "file is too big".
        """
        if file_size is not None and file_size < len(data):
            raise ValueError("file_size may only declare more bytes than data holds")
        stored = self._store(data, "documents", file_name=file_name, mime_type=mime_type)
        stored.file_size = file_size if file_size is not None else len(data)
        document = {**stored.as_json(), "file_name": file_name, "mime_type": mime_type}
        content: dict[str, Any] = {"document": document}
        if caption is not None:
            content["caption"] = caption
        summary = f"document {file_name!r} {mime_type} ({stored.file_size} B)"
        return await self._user_message(user_id, content, summary)

    async def send_sticker(self, user_id: int, emoji: str = "🐶") -> int:
        """The user sends a sticker (something a photo bot should politely refuse)."""
        stored = self._store(b"RIFF\x00\x00\x00\x00WEBP", "stickers", mime_type="image/webp")
        sticker = {
            **stored.as_json(),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._user_message(user_id, {"sticker": sticker}, f"sticker {emoji}")

    async def send_voice(self, user_id: int, duration: int = 2) -> int:
        """The user sends a voice message."""
        stored = self._store(b"OggS" + bytes(60), "voice", mime_type="audio/ogg")
        voice = {**stored.as_json(), "duration": duration, "mime_type": "audio/ogg"}
        return await self._user_message(user_id, {"voice": voice}, f"voice {duration}s")

    async def press_button(
        self, user_id: int, message: Sent | dict[str, Any] | int, callback_data: str
    ) -> int:
        """The user presses an inline button of a message the bot sent; returns the update id.

        The callback query carries the message as it is now (after any edits). ``callback_data``
        is not checked against the keyboard, so abuse tests can forge it; use ``find_button`` to
        press a button the bot really offered.
        """
        key = self._message_key(message, user_id)
        current = self._messages.get(key)
        if current is None:
            raise AssertionError(f"message {key[1]} in chat {key[0]} does not exist (deleted or never sent)")
        query_id = f"{self.bot_id}{next(self._query_ids):06d}"
        query = {
            "id": query_id,
            "from": self.user(user_id),
            "message": copy.deepcopy(current),
            "chat_instance": f"ci{key[0]}",
            "data": callback_data,
        }
        self._open_queries.add(query_id)
        update_id = await self._push(
            "callback_query", query, f"user {user_id} → press #{key[1]} data={callback_data!r}"
        )
        self._query_of_update[update_id] = query_id
        return update_id

    def find_button(
        self, message: Sent | dict[str, Any] | int, text_substring: str, *, chat_id: int = 0
    ) -> str:
        """The callback_data of the one inline button whose label contains ``text_substring``.

        Reads the message's current keyboard (after edits). An exact label wins over substrings;
        no match or several matches fail the test with the list of buttons.
        """
        if isinstance(message, int) and not chat_id:
            raise ValueError("pass chat_id with a bare message id")
        key = self._message_key(message, chat_id)
        current = self._messages.get(key)
        if current is None and isinstance(message, dict):
            current = message
        buttons = _buttons((current or {}).get("reply_markup"))
        matches = [b for b in buttons if text_substring in b[0]]
        exact = [b for b in matches if b[0] == text_substring]
        if len(exact) == 1:
            matches = exact
        if len(matches) != 1:
            raise AssertionError(
                f"{len(matches)} buttons match {text_substring!r} on message {key[1]}; "
                f"buttons: {[label for label, _ in buttons]}"
            )
        label, data = matches[0]
        if data is None:
            raise AssertionError(f"button {label!r} has no callback_data")
        return data

    async def post_raw_webhook(
        self, body: bytes | dict[str, Any], secret: str | None, url: str | None = None
    ) -> int:
        """POST a body to the webhook (the one set, unless ``url`` is given); returns the HTTP status.

        For checking that the bot's webhook server refuses requests without the right secret.
        """
        target = url or (self._webhook.url if self._webhook else None)
        if target is None:
            raise AssertionError("no webhook is set and no url was given")
        if self._http is None:
            raise RuntimeError("FakeTelegram is not started")
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with self._http.post(target, data=payload, headers=headers) as response:
            return response.status

    # ------------------------------------------------------------------ what the bot did

    def messages_to(self, chat_id: int) -> list[Sent]:
        """The chat as the user sees it now: each bot message in its latest state, deleted ones left out."""
        latest: dict[int, Sent] = {}
        for sent in self.sent:
            if sent.chat_id == chat_id:
                latest[sent.message_id] = sent
        return [sent for mid, sent in sorted(latest.items()) if (chat_id, mid) not in self._deleted]

    @property
    def pending_update_count(self) -> int:
        """Updates the bot has not confirmed yet (getUpdates offset or webhook delivery)."""
        return len(self._pending)

    def calls_for(self, method: str) -> list[ApiCall]:
        """The calls of one Bot API method (any case), in order."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def update(self, update_id: int) -> dict[str, Any]:
        """An update the test created, as Telegram delivers it."""
        return self._updates[update_id]

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        """The command list the bot set for this scope and language."""
        return self._commands.get(_commands_key(scope, language_code), [])

    def transcript(self) -> str:
        """What the users and the bot did, one line each, for failure messages."""
        return "\n".join(self._transcript) or "(nothing happened)"

    async def wait_for(
        self, predicate: Callable[[Sent], bool], timeout: float = 5.0, *, since: int = 0
    ) -> Sent:
        """The first message in ``sent[since:]`` matching ``predicate``, waiting for it if need be.

        Pass ``since=len(server.sent)`` to ignore what was sent before. On timeout the test fails
        with the transcript, which usually says why.
        """
        return await self._wait(
            lambda: next((s for s in self.sent[since:] if predicate(s)), None), timeout, "a sent message"
        )

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """The first call of ``method`` in ``calls[since:]`` matching ``predicate``.

        Calls are seen as soon as they arrive; ``status`` is None while one is still pending (a long
        poll), so check ``call.ok`` in the predicate to wait for a successful answer.
        """

        def find() -> ApiCall | None:
            for call in self.calls[since:]:
                if call.method.lower() == method.lower() and (predicate is None or predicate(call)):
                    return call
            return None

        return await self._wait(find, timeout, f"a {method} call")

    async def wait_for_answer(self, update_id: int, timeout: float = 5.0) -> ApiCall:
        """The successful answerCallbackQuery for the button press that created ``update_id``."""
        query_id = self._query_of_update[update_id]
        return await self.wait_for_call(
            "answerCallbackQuery",
            lambda call: call.ok and call.params.get("callback_query_id") == query_id,
            timeout,
        )

    def fail_next(
        self,
        method: str,
        status: FaultSpec = 502,
        *,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (or ``DOWNLOAD``) fail.

        ``status`` is an HTTP status answered with Telegram's error JSON (``description`` overrides
        the text, e.g. "Forbidden: bot was blocked by the user"), ``"timeout"`` to never answer
        until the server stops (the client's read timeout fires), or ``("retry_after", seconds)``
        for flood control (429 with ``retry_after``). The failed call does nothing.
        """
        valid = (
            status == "timeout"
            or (isinstance(status, tuple) and status[0] == "retry_after")
            or (isinstance(status, int) and 400 <= status <= 599)
        )
        if not valid or times < 1:
            raise ValueError(f"cannot inject {status!r} {times} times")
        self._faults.setdefault(method.lower(), []).append(_Fault(status, times, description))

    # ------------------------------------------------------------------ HTTP layer

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        entry = self._methods.get(name.lower())
        try:
            params, files = await _read_params(request)
        except ApiError as error:
            return error.response()
        call = ApiCall(method=entry[0] if entry else name, params=params, files=files)
        self.calls.append(call)
        await self._notify()  # a test may wait for a call that is still pending, e.g. a long poll
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if entry is None:
                raise ApiError(404, "Not Found")
            await self._maybe_fail(call.method)
            call.result = await entry[1](call)
        except ApiError as error:
            call.status, call.description = error.status, error.description
            if error.description != _CONFLICT_POLLER:  # the normal end of a poll abandoned by PTB
                self._log(f"bot  ✗ {call.method} {_brief(params)} → {error.status} {error.description}")
            await self._notify()
            return error.response()
        call.status = 200
        await self._notify()
        return web.json_response({"ok": True, "result": call.result})

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            stored = self._files_by_path.get(request.match_info["file_path"])
            if stored is None:
                raise ApiError(404, "Not Found")
            await self._maybe_fail(DOWNLOAD)
        except ApiError as error:
            self._log(
                f"bot  ✗ download {request.match_info['file_path']} → {error.status} {error.description}"
            )
            return error.response()
        self.downloads.append(stored.file_id)
        self._log(f"bot  · download {stored.file_path} ({len(stored.data)} B)")
        await self._notify()
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _maybe_fail(self, method: str) -> None:
        """Apply the next injected fault for ``method``, if one is queued."""
        queue = self._faults.get(method.lower())
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.spec == "timeout":
            self._log(f"bot  … {method} hangs (injected timeout)")
            async with self._changed:
                await self._changed.wait_for(lambda: self._stopping)
            raise ApiError(504, "Gateway Timeout")
        if isinstance(fault.spec, tuple):
            seconds = fault.spec[1]
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
        raise ApiError(fault.spec, fault.description or _reason(fault.spec))

    # ------------------------------------------------------------------ updates and webhooks

    async def _get_me(self, call: ApiCall) -> dict[str, Any]:
        return self.bot_user

    async def _get_updates(self, call: ApiCall) -> list[dict[str, Any]]:
        """Long polling: answer at once if updates wait, else when one arrives or ``timeout`` ends.

        A newer getUpdates ends an older one with 409, as Telegram does when two processes poll.
        """
        if self._webhook is not None:
            raise ApiError(409, _CONFLICT_WEBHOOK)
        p = call.params
        self._poll_generation += 1
        generation = self._poll_generation
        await self._notify()  # wakes an older poll so that it can end with 409
        if "allowed_updates" in p:
            self._allowed_updates = list(p["allowed_updates"] or []) or None
        self._confirm(p.get("offset"))
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(float(p.get("timeout") or 0), 0.0)
        async with self._changed:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, _CONFLICT_POLLER)
                if self._webhook is not None:
                    raise ApiError(409, _CONFLICT_WEBHOOK)
                batch = self._deliverable()[:limit]
                remaining = deadline - loop.time()
                if batch or self._stopping or remaining <= 0:
                    return copy.deepcopy(batch)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()

    async def _set_webhook(self, call: ApiCall) -> bool:
        p = call.params
        url = p.get("url") or ""
        if not url:  # Telegram: an empty url removes the webhook
            self._webhook = None
            return True
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._pending.clear()
        if "allowed_updates" in p:
            self._allowed_updates = list(p["allowed_updates"] or []) or None
        self._webhook = _Webhook(
            url=url, secret_token=secret, max_connections=int(p.get("max_connections") or 40)
        )
        self._poll_generation += 1  # a poll still waiting ends with 409
        self._log(f"bot  · setWebhook {url}")
        return True

    async def _delete_webhook(self, call: ApiCall) -> bool:
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = None
        return True

    async def _get_webhook_info(self, call: ApiCall) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.last_error_date is not None:
                info["last_error_date"] = self._webhook.last_error_date
                info["last_error_message"] = self._webhook.last_error_message
        if self._allowed_updates:
            info["allowed_updates"] = self._allowed_updates
        return info

    async def _deliver_webhook_updates(self) -> None:
        """POST pending updates to the webhook one at a time, in order, retrying failures.

        Retries matter at start-up: PTB sets the webhook before its own server listens.
        """
        delay = 0.05
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._webhook is not None and bool(self._deliverable()))
                webhook, update = self._webhook, self._deliverable()[0]
            assert webhook is not None
            error = await self._post_update(webhook, update)
            if error is None:
                self._confirm(update["update_id"] + 1)
                delay = 0.05
                continue
            webhook.last_error_date, webhook.last_error_message = int(time.time()), error
            self._log(f"tg   ✗ webhook delivery of update {update['update_id']}: {error}")
            async with self._changed:
                # Back off, but wake early for a new webhook or a stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait_for(lambda failed=webhook: self._webhook is not failed)
            delay = min(delay * 2, 1.0)

    async def _post_update(self, webhook: _Webhook, update: dict[str, Any]) -> str | None:
        """Deliver one update; the error Telegram would report in getWebhookInfo, or None."""
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        try:
            async with self._http.post(
                webhook.url, data=json.dumps(update).encode(), headers=headers
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"Connection failed: {exc!r}"

    def _deliverable(self) -> list[dict[str, Any]]:
        return [u for u in self._pending if self._allowed(u)]

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self._allowed_updates is None:
            return kind not in _OPT_IN_UPDATE_TYPES
        return kind in self._allowed_updates

    def _confirm(self, offset: int | None) -> None:
        """Forget updates below ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset is None:
            return
        if offset < 0:
            self._pending = self._pending[offset:]
        else:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]

    # ------------------------------------------------------------------ files

    async def _get_file(self, call: ApiCall) -> dict[str, Any]:
        stored = self._files.get(call.params.get("file_id", ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        self._log(f"bot  · getFile {stored.file_path}")
        return {**stored.as_json(), "file_path": stored.file_path}

    def _store(
        self, data: bytes, folder: str, *, file_name: str | None = None, mime_type: str | None = None
    ) -> StoredFile:
        number = next(self._file_ids)
        suffix = ""
        if file_name and "." in file_name:
            suffix = file_name[file_name.rindex(".") :]
        elif folder == "photos":
            suffix = ".jpg"
        stored = StoredFile(
            file_id=f"AgAC-fake-{number}",
            file_unique_id=f"AQAD-{number}",
            file_path=f"{folder}/file_{number}{suffix}",
            data=data,
            file_size=len(data),
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        """PhotoSize objects, smallest first; one size when the bytes are not an image."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                thumbnail = image.convert("RGB")
        except (UnidentifiedImageError, OSError):
            # Deliberately corrupt uploads are valid test input: Telegram would not notice either.
            stored = self._store(data, "photos", mime_type="image/jpeg")
            return [{**stored.as_json(), "width": 1280, "height": 960}]
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        thumbnail.save(buffer, format="JPEG")
        small = self._store(buffer.getvalue(), "photos", mime_type="image/jpeg")
        large = self._store(data, "photos", mime_type="image/jpeg")
        return [
            {**small.as_json(), "width": thumbnail.width, "height": thumbnail.height},
            {**large.as_json(), "width": width, "height": height},
        ]

    def _input_file(self, call: ApiCall, key: str, folder: str) -> StoredFile:
        """The file a send method refers to: an upload, a known file_id, or a URL."""
        value = call.params.get(key)
        upload = call.files.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
        if upload is not None:
            if not upload.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            return self._store(upload.data, folder, file_name=upload.file_name, mime_type=upload.mime_type)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self._store(b"", folder, file_name=value.rsplit("/", 1)[-1] or None)
        if value:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        raise ApiError(400, f"Bad Request: there is no {key} in the request")

    # ------------------------------------------------------------------ sending

    async def _send_message(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        chat_id = self._target_chat(p)
        text, entities = _format(p.get("text"), p.get("parse_mode"), p.get("entities"))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        markup = _checked_markup(p.get("reply_markup"))
        message = self._bot_message(chat_id, p, {"text": text, "entities": entities}, markup)
        self._record(call, message, markup)
        return message

    async def _send_photo(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        chat_id = self._target_chat(p)
        content = self._caption(p)
        markup = _checked_markup(p.get("reply_markup"))
        stored = self._input_file(call, "photo", "photos")
        sizes = (
            self._photo_sizes(stored.data)
            if stored.data
            else [{**stored.as_json(), "width": 1280, "height": 960}]
        )
        message = self._bot_message(chat_id, p, {**content, "photo": sizes}, markup)
        self._record(call, message, markup, stored)
        return message

    async def _send_document(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        chat_id = self._target_chat(p)
        content = self._caption(p)
        markup = _checked_markup(p.get("reply_markup"))
        stored = self._input_file(call, "document", "documents")
        document = {**stored.as_json(), "file_name": stored.file_name, "mime_type": stored.mime_type}
        document = {k: v for k, v in document.items() if v is not None}
        message = self._bot_message(chat_id, p, {**content, "document": document}, markup)
        self._record(call, message, markup, stored)
        return message

    async def _send_chat_action(self, call: ApiCall) -> bool:
        chat_id = self._target_chat(call.params)
        action = call.params.get("action")
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._log(f"bot  · sendChatAction chat={chat_id} {action}")
        return True

    async def _answer_callback_query(self, call: ApiCall) -> bool:
        """Each query may be answered once, as on Telegram."""
        query_id = call.params.get("callback_query_id")
        if query_id not in self._open_queries:
            raise ApiError(400, _QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        text = call.params.get("text")
        self._log(f"bot  · answerCallbackQuery {query_id}" + (f" {text!r}" if text else ""))
        return True

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("caption") is None:
            return {}
        caption, entities = _format(
            params["caption"], params.get("parse_mode"), params.get("caption_entities")
        )
        if len(caption) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": caption, "caption_entities": entities}

    def _target_chat(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self._users:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _bot_message(
        self,
        chat_id: int,
        params: dict[str, Any],
        content: dict[str, Any],
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        replied = self._replied_message(chat_id, params)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        if replied is not None:
            message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        message.update({k: v for k, v in content.items() if v not in (None, [])})
        if _inline(markup):
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        return copy.deepcopy(message)

    def _replied_message(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message a send replies to (reply_parameters or the older reply_to_message_id)."""
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or params.get("reply_to_message_id")
        if message_id is None:
            return None
        replied = self._messages.get((chat_id, message_id))
        lenient = reply.get("allow_sending_without_reply") or params.get("allow_sending_without_reply")
        if replied is None and not lenient:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return replied

    def _record(
        self,
        call: ApiCall,
        message: dict[str, Any],
        markup: dict[str, Any] | None,
        stored: StoredFile | None = None,
    ) -> None:
        sent = Sent(
            method=call.method,
            chat_id=message["chat"]["id"],
            message_id=message["message_id"],
            text=message.get("text") or message.get("caption") or "",
            reply_markup=markup,
            message=copy.deepcopy(message),
            params=call.params,
            file_data=stored.data if stored else None,
            file_name=stored.file_name if stored else None,
            mime_type=stored.mime_type if stored else None,
        )
        self.sent.append(sent)
        self._log(f"bot  → {sent}")

    # ------------------------------------------------------------------ editing

    async def _edit_message_text(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        current = self._editable(p)
        if "text" not in current:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = _format(p.get("text"), p.get("parse_mode"), p.get("entities"))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return self._apply_edit(call, current, {"text": text, "entities": entities})

    async def _edit_message_caption(self, call: ApiCall) -> dict[str, Any]:
        current = self._editable(call.params)
        if "text" in current:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        content = self._caption(call.params) or {"caption": None, "caption_entities": None}
        return self._apply_edit(call, current, content)

    async def _edit_message_reply_markup(self, call: ApiCall) -> dict[str, Any]:
        return self._apply_edit(call, self._editable(call.params), {})

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not supported by the fake server")
        current = self._messages.get((params.get("chat_id"), params.get("message_id")))
        if current is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if current["from"]["id"] != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return current

    def _apply_edit(self, call: ApiCall, current: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        """Edit ``current``; an omitted reply_markup removes the inline keyboard, as on Telegram."""
        markup = _checked_markup(call.params.get("reply_markup"))
        edited = copy.deepcopy(current)
        for key, value in content.items():
            if value in (None, []):
                edited.pop(key, None)
            else:
                edited[key] = value
        edited.pop("reply_markup", None)
        if _inline(markup):
            edited["reply_markup"] = markup
        edited.pop("edit_date", None)
        if edited == {k: v for k, v in current.items() if k != "edit_date"}:
            raise ApiError(400, _NOT_MODIFIED)
        edited["edit_date"] = int(time.time())
        self._messages[(edited["chat"]["id"], edited["message_id"])] = edited
        self._record(call, edited, edited.get("reply_markup"))
        return copy.deepcopy(edited)

    async def _delete_message(self, call: ApiCall) -> bool:
        key = (call.params.get("chat_id"), call.params.get("message_id"))
        if self._messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self._deleted.add(key)
        self._log(f"bot  · deleteMessage chat={key[0]} #{key[1]}")
        return True

    # ------------------------------------------------------------------ commands and the rest

    async def _set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands") or []
        for command in commands:
            if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = _commands_key(call.params.get("scope"), call.params.get("language_code", ""))
        self._commands[key] = list(commands)
        self._log(f"bot  · setMyCommands {[c['command'] for c in commands]}")
        return True

    async def _delete_my_commands(self, call: ApiCall) -> bool:
        self._commands.pop(
            _commands_key(call.params.get("scope"), call.params.get("language_code", "")), None
        )
        return True

    async def _get_my_commands(self, call: ApiCall) -> list[dict[str, Any]]:
        return self.commands(call.params.get("scope"), call.params.get("language_code", ""))

    async def _always_true(self, call: ApiCall) -> bool:
        return True

    # ------------------------------------------------------------------ helpers

    async def _user_message(self, user_id: int, content: dict[str, Any], summary: str) -> int:
        message = {
            "message_id": self._next_message_id(user_id),
            "from": self.user(user_id),
            "chat": self._chat(user_id),
            "date": int(time.time()),
            **content,
        }
        self._messages[(user_id, message["message_id"])] = message
        return await self._push("message", message, f"user {user_id} → {summary}")

    async def _push(self, kind: str, payload: dict[str, Any], summary: str) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self._updates[update_id] = update
        self._pending.append(update)
        self._log(f"{summary} [update {update_id}]")
        await self._notify()
        return update_id

    def _chat(self, user_id: int) -> dict[str, Any]:
        user = self.user(user_id)
        chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def _next_message_id(self, chat_id: int) -> int:
        # Message ids count per private chat and are shared by both sides, as on Telegram.
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _message_key(self, message: Sent | dict[str, Any] | int, chat_id: int) -> tuple[int, int]:
        if isinstance(message, Sent):
            return message.chat_id, message.message_id
        if isinstance(message, dict):
            return message["chat"]["id"], message["message_id"]
        return chat_id, message

    def _log(self, line: str) -> None:
        self._transcript.append(line)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, find: Callable[[], Any], timeout: float, what: str) -> Any:
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    while (found := find()) is None:
                        await self._changed.wait()
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; transcript:\n{self.transcript()}"
                ) from None
        return found


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1, for the bot's webhook server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Parameters from the query string, a JSON body, a urlencoded form or multipart form data."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(400, "Bad Request: can't parse JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: parameters must be a JSON object")
        return {**_typed(raw), **body}, files
    if request.can_read_body:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                files[name] = Upload(name, value.filename, value.content_type, value.file.read())
            else:
                raw[name] = value
    return _typed(raw), files


def _typed(raw: dict[str, Any]) -> dict[str, Any]:
    """Read form values back to the types Telegram expects for each parameter."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            params[key] = value
        elif key in _JSON_PARAMS:
            try:
                params[key] = json.loads(value)
            except ValueError as exc:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
        elif key in _NUMBER_PARAMS and re.fullmatch(r"-?\d+", value):
            params[key] = int(value)
        elif key in _NUMBER_PARAMS and re.fullmatch(r"-?\d+\.\d*", value):
            params[key] = float(value)
        elif key in _BOOL_PARAMS:
            params[key] = value.lower() == "true"
        else:
            params[key] = value
    return params


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Error"


def _brief(params: dict[str, Any]) -> str:
    keys = ("chat_id", "message_id", "text", "caption", "callback_query_id", "file_id")
    return " ".join(f"{key}={params[key]!r}" for key in keys if key in params)


def _buttons(markup: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(button.get("text", ""), button.get("callback_data")) for row in rows for button in row]


def _inline(markup: dict[str, Any] | None) -> bool:
    return bool(markup and markup.get("inline_keyboard"))


def _checked_markup(markup: Any) -> dict[str, Any] | None:
    """Refuse the inline keyboards Telegram refuses, above all callback data over 64 bytes."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _commands_key(scope: dict[str, Any] | None, language_code: str | None) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def _utf16_len(text: str) -> int:
    """Telegram measures entity offsets in UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _format(
    text: Any, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list | None]:
    """The plain text the user sees and its entities; HTML is parsed as strictly as Telegram does."""
    plain = "" if text is None else str(text)
    if parse_mode and parse_mode.upper() == "HTML":
        return _parse_html(plain)
    return plain, entities or None


_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>"
)
_HTML_ATTRIBUTE = re.compile(r"([a-zA-Z-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))")
_HTML_ESCAPE = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def _parse_html(source: str) -> tuple[str, list | None]:
    """Telegram's HTML parse mode: a bare "<" or an unknown or unclosed tag is a 400.

    That is the usual bug when user text or breed names reach an HTML message unescaped.
    """
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, str]]] = []  # tag, UTF-16 offset, attributes
    position = 0

    def fail(message: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {message}")

    while position < len(source):
        char = source[position]
        if char == "<":
            match = _HTML_TAG.match(source, position)
            byte_offset = len(source[:position].encode())
            if match is None:
                raise fail(f"Unsupported start tag at byte offset {byte_offset}")
            closing, tag = match.group(1) == "/", match.group(2).lower()
            if tag not in _HTML_ENTITY_TYPES:
                raise fail(f'Unsupported start tag "{tag}" at byte offset {byte_offset}')
            offset = _utf16_len("".join(out))
            if not closing:
                attributes = {
                    m.group(1).lower(): unescape(next(g for g in m.groups()[1:] if g is not None))
                    for m in _HTML_ATTRIBUTE.finditer(match.group(3))
                }
                stack.append((tag, offset, attributes))
            else:
                if not stack or stack[-1][0] != tag:
                    raise fail(f"Unexpected end tag at byte offset {byte_offset}")
                _, start, attributes = stack.pop()
                entity: dict[str, Any] = {
                    "type": _HTML_ENTITY_TYPES[tag],
                    "offset": start,
                    "length": offset - start,
                }
                if tag == "a":
                    entity["url"] = attributes.get("href", "")
                if entity["length"] and not (tag == "code" and stack and stack[-1][0] == "pre"):
                    entities.append(entity)
            position = match.end()
        elif char == "&" and (escape := _HTML_ESCAPE.match(source, position)):
            out.append(unescape(escape.group()))
            position = escape.end()
        else:
            out.append(char)
            position += 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: e["offset"])
    return "".join(out), entities or None


__all__ = [
    "DOWNLOAD",
    "MAX_DOWNLOAD_BYTES",
    "ApiCall",
    "ApiError",
    "FakeTelegram",
    "Sent",
    "StoredFile",
    "Upload",
    "free_port",
]
