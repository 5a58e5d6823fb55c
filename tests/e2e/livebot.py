"""The real bot Application in the test's own process, talking to the fake Bot API server over HTTP.

Faster to start than `dogbot run` (no torch import, the session's model), and the test can reach
inside: swap the photo store for one whose disk is full, lock the database, read the rows. Every
request still crosses a real socket through PTB's HTTPXRequest, the retrying rate limiter and long
polling, so Telegram's failures (5xx, timeouts, flood control) hit the same code they hit in
production. Timeouts are short (``timeout_s``) so an injected hang costs seconds, not minutes.

Used by the fault tests (test_faults.py), the load test (test_load.py) and bench/bench_load.py.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from fake_telegram import FakeTelegram, Sent
from PIL import Image, ImageDraw
from sqlalchemy import func
from sqlmodel import select
from telegram.request import HTTPXRequest

from bot.app import ALLOWED_UPDATES, build_application
from dogbot.app import Container
from dogbot.settings import Settings
from storage.db import session as open_session
from storage.tables import Label, Photo

ADMIN = 1001
STAFF = 2002
STRANGER = 6666
# Buttons that are not breeds: the question's specials, a dog card's details and its Same dog? row.
CHOICES = (
    "Mixed breed", "Not a dog", "Other…", "Skip",
    "♂ Male", "♀ Female", "Puppy", "Adult", "Senior", "Same dog", "New dog",
)  # fmt: skip


@dataclass
class LiveBot:
    server: FakeTelegram
    application: object
    container: Container
    errors: list[BaseException] = field(default_factory=list)
    answer_timeout: float = 30.0

    @property
    def catalog(self):
        return self.container.catalog

    def rows(self, table) -> list:
        with open_session(self.container.engine) as session:
            return list(session.exec(select(table)))

    def count(self, table) -> int:
        with open_session(self.container.engine) as session:
            return session.exec(select(func.count()).select_from(table)).one()

    def people_labels(self) -> list[tuple[int, str, int | None]]:
        """(photo id, breed, user id) of every label a person gave, in order."""
        return [(lb.photo_id, lb.breed, lb.user_id) for lb in self.rows(Label) if lb.user_id is not None]

    async def reply(
        self,
        user_id: int,
        contains: str = "",
        *,
        since: int,
        to_message: int | None = None,
        timeout: float | None = None,
    ) -> Sent:
        """The first message (or edit) to ``user_id`` after ``since`` whose text contains ``contains``.

        With ``to_message``: only a new message quoting that message of the user, or one quoting none.
        """

        def fits(s: Sent) -> bool:
            if s.chat_id != user_id or contains not in s.text:
                return False
            if to_message is None:
                return True
            quoted = (s.message.get("reply_to_message") or {}).get("message_id")
            return s.method.startswith("send") and quoted in (None, to_message)

        return await self.server.wait_for(fits, timeout=timeout or self.answer_timeout, since=since)

    async def send_photo(self, user_id: int, data: bytes) -> int:
        """``user_id`` sends a photo; the id of their message (answers quote it)."""
        update_id = await self.server.send_photo(user_id, data)
        return self.server.update(update_id)["message"]["message_id"]

    async def photo(self, user_id: int, data: bytes, expect: str = "photo") -> Sent:
        """``user_id`` sends a photo; the bot's answer to it."""
        since = len(self.server.sent)
        message_id = await self.send_photo(user_id, data)
        return await self.reply(user_id, expect, since=since, to_message=message_id)

    async def press(self, user_id: int, message: Sent, label: str) -> str | None:
        """Press the button labelled ``label`` on ``message`` as it is now; the toast text shown."""
        update_id = await self.server.press_button(user_id, message, self.server.find_button(message, label))
        answered = await self.server.wait_for_answer(update_id, timeout=self.answer_timeout)
        return answered.params.get("text")

    def current(self, message: Sent) -> Sent:
        """``message`` in its latest state (after the bot edited it)."""
        return next(s for s in reversed(self.server.sent) if s.message_id == message.message_id
                    and s.chat_id == message.chat_id)  # fmt: skip

    def breed_buttons(self, message: Sent) -> list[str]:
        return [text for text, _ in self.current(message).buttons if text not in CHOICES]


@contextlib.asynccontextmanager
async def live_bot(
    data_dir: Path,
    predictor,
    *,
    database_url: str = "",
    staff_ids: list[int] | tuple[int, ...] = (STAFF,),
    photo_store=None,
    timeout_s: float = 2.0,
    server: FakeTelegram | None = None,
    **settings,
) -> AsyncIterator[LiveBot]:
    """Start the bot (long polling) against a fresh fake server; stop both afterwards."""
    # A spot check (a random tenth of the sure answers, picked by the photo's hash) turns a sure
    # answer's card into a question: only the tests of spot checks ask for them.
    settings.setdefault("spot_check_share", 0.0)
    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            server = await stack.enter_async_context(FakeTelegram())
        container = Container(
            Settings(
                _env_file=None,
                data_dir=data_dir,
                database_url=database_url,
                telegram_token=server.token,
                telegram_base_url=server.base_url,
                telegram_base_file_url=server.base_file_url,
                admin_ids=[ADMIN],
                staff_ids=list(staff_ids),
                download_timeout_s=timeout_s,
                **settings,
            )
        )
        predictor.use_head(predictor.base_head(), "lite0-v0")
        container.predictor = predictor  # the session's model (cached_property: the instance wins)
        if photo_store is not None:
            container.photo_store = photo_store
        stack.callback(lambda: container.engine.dispose())

        def request(pool: int) -> HTTPXRequest:
            return HTTPXRequest(
                connection_pool_size=pool,
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                write_timeout=timeout_s,
                pool_timeout=30.0,
            )

        application = build_application(container, request=request(128), get_updates_request=request(1))
        bot = LiveBot(server, application, container)

        async def record(update, context) -> None:
            bot.errors.append(context.error)

        application.add_error_handler(record)
        await stack.enter_async_context(application)
        await application.start()
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, timeout=1, poll_interval=0)
        try:
            yield bot
        finally:
            await application.updater.stop()
            await application.stop()
            await application.bot_data["services"].batcher.stop()


def distinct_jpeg(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    """A small JPEG of varied content, different for every seed >= 0: shapes and colours, not one tone."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = x0 + rng.randrange(8, 48), y0 + rng.randrange(8, 48)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


__all__ = ["ADMIN", "CHOICES", "STAFF", "STRANGER", "LiveBot", "Photo", "distinct_jpeg", "live_bot"]
