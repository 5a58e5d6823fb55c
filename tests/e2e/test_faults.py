"""Fault tests: Telegram failing mid-conversation, the database briefly unavailable, a full disk.

The real application runs in this process against the fake Bot API server over HTTP (livebot.py);
the fault is injected at one step of a staff conversation (photo → answer → "It is a dog" → breed).
After each: every photo is stored once, every label once, nothing half-written, and the bot answers
the next photo. The process killed between storing and answering is in test_crash.py.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from fake_telegram import DOWNLOAD, FakeTelegram, FaultSpec, Sent
from livebot import ADMIN, STAFF, LiveBot, distinct_jpeg, live_bot

from storage.blobs import LocalPhotoStore, sha256_of
from storage.tables import Label, Photo, Prediction

pytestmark = pytest.mark.slow

SORRY = "something went wrong"


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch):
    """PTB 22 warns when RetryAfter.retry_after is read as seconds; opt in to its future timedelta."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


async def send_until_answered(bot: LiveBot, data: bytes) -> Sent:
    """Send a photo; if the answer was lost and the bot apologised instead, send it again (as staff do)."""
    since = len(bot.server.sent)
    message_id = await bot.send_photo(STAFF, data)
    first = await bot.server.wait_for(
        lambda s: (
            s.chat_id == STAFF
            and s.method == "sendMessage"
            # a dog's card, the not-a-dog answer (no dog code until someone says it is a dog), or sorry
            and (s.text.startswith("🐕 Dog ") or "does not look like a dog" in s.text or SORRY in s.text)
            and (s.message.get("reply_to_message") or {}).get("message_id") in (None, message_id)
        ),
        timeout=30,
        since=since,
    )
    if SORRY not in first.text:
        return first
    return await bot.photo(STAFF, data, expect="seen this photo before")


async def label_it(bot: LiveBot, answer: Sent) -> str:
    """Overrule "not a dog" and choose the first breed offered; returns the breed's name."""
    assert "does not look like a dog" in answer.text, answer.text
    await bot.press(STAFF, answer, "It is a dog")
    await bot.server.wait_for(
        lambda s: s.message_id == answer.message_id and s.method == "editMessageText", timeout=30
    )
    breed = bot.breed_buttons(answer)[0]
    since = len(bot.server.sent)
    toast = await bot.press(STAFF, bot.current(answer), breed)
    assert toast in (f"Saved: {breed}", "Already saved."), toast
    await bot.reply(STAFF, f": {breed}", since=since)  # the question now says what was recorded
    return breed


def assert_nothing_lost_or_doubled(bot: LiveBot, sent: list[bytes], labelled: int) -> None:
    photos = bot.rows(Photo)
    assert sorted(p.sha256 for p in photos) == sorted({sha256_of(d) for d in sent}), "each photo once"
    store = bot.container.photo_store
    assert all(store.exists(p.sha256) for p in photos), "no row without its bytes"
    people = bot.people_labels()
    assert len(people) == labelled and len(set(people)) == labelled, people
    predictions = bot.rows(Prediction)
    assert len({p.photo_id for p in predictions}) == len(predictions), "one prediction per photo"


# (method, fault, step it hits). Steps: the photo's download and answer, the "It is a dog" press
# (answerCallbackQuery, editMessageText: the text changes with the buttons), the breed press
# (answerCallbackQuery, editMessageText).
TELEGRAM_FAULTS: list[tuple[str, FaultSpec]] = [
    ("sendMessage", 502),
    ("sendMessage", ("retry_after", 1)),
    ("sendMessage", "timeout"),
    ("getFile", 502),
    ("getFile", ("retry_after", 1)),
    ("getFile", "timeout"),
    (DOWNLOAD, 502),
    (DOWNLOAD, "timeout"),
    ("answerCallbackQuery", 502),
    ("answerCallbackQuery", ("retry_after", 1)),
    ("answerCallbackQuery", "timeout"),
    ("editMessageText", 502),
    ("editMessageText", ("retry_after", 1)),
]


@pytest.mark.parametrize(("method", "fault"), TELEGRAM_FAULTS, ids=lambda v: str(v).replace(" ", ""))
async def test_telegram_fault_mid_conversation(
    tmp_path: Path, predictor, one_torch_thread, method: str, fault: FaultSpec
) -> None:
    async with live_bot(tmp_path / "data", predictor) as bot:
        first, second = distinct_jpeg(1), distinct_jpeg(2)
        bot.server.fail_next(method, fault)
        answer = await send_until_answered(bot, first)
        await label_it(bot, answer)
        transcript = bot.server.transcript()
        assert "✗" in transcript or "hangs" in transcript, "the fault was injected"

        answer = await bot.photo(STAFF, second, expect="does not look like a dog")  # the next photo
        assert_nothing_lost_or_doubled(bot, [first, second], labelled=1)
        unexpected = [e for e in bot.errors if fault != "timeout" or "Timed out" not in str(e)]
        assert unexpected == [], f"only an unrepeatable timeout may reach the error handler: {bot.errors!r}"


# --- the database briefly unavailable --------------------------------------------------------------
def hold_sqlite_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another process's writer: an exclusive transaction held for ``seconds``."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


def hold_postgres_lock(url: str, seconds: float, taken: threading.Event) -> None:
    """Another session locks the catalog tables (no reads, no writes) for ``seconds``."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("LOCK TABLE photo, prediction, label IN ACCESS EXCLUSIVE MODE")
            taken.set()
            time.sleep(seconds)
    finally:
        engine.dispose()


def kill_connections(url: str, application_name: str) -> int:
    """pg_terminate_backend for every connection the bot holds (a restarted or failed-over server)."""
    engine = sqlalchemy.create_engine(
        url.replace(application_name, "dogbot-test-killer"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            killed = connection.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).scalar_one()
    finally:
        engine.dispose()
    return killed


async def test_database_briefly_unavailable(
    tmp_path: Path, predictor, one_torch_thread, database_url
) -> None:
    """A writer holding the database for 2 s delays answers but loses nothing; so do killed connections."""
    postgres = database_url.startswith("postgresql")
    name = f"dogbot-fault-{uuid.uuid4().hex[:8]}"
    if postgres:
        database_url += f"&application_name={name}"
    async with live_bot(tmp_path / "data", predictor, database_url=database_url) as bot:
        first, second, third = distinct_jpeg(11), distinct_jpeg(12), distinct_jpeg(13)
        answer = await bot.photo(STAFF, first, expect="does not look like a dog")

        taken = threading.Event()
        if postgres:
            holder = threading.Thread(target=hold_postgres_lock, args=(database_url, 2.0, taken))
        else:
            db_file = Path(bot.container.settings.sqlalchemy_url.split("///", 1)[1])
            holder = threading.Thread(target=hold_sqlite_lock, args=(db_file, 2.0, taken))
        holder.start()
        try:
            assert taken.wait(10)
            since = len(bot.server.sent)
            message_id = await bot.send_photo(STAFF, second)  # its row waits for the lock
            await label_it(bot, answer)  # so does this label
            await bot.reply(STAFF, "does not look like a dog", since=since, to_message=message_id)
        finally:
            holder.join()

        if postgres:
            assert kill_connections(database_url, name) >= 1
            answer = await bot.photo(STAFF, third, expect="does not look like a dog")
            await label_it(bot, answer)
        else:
            await bot.photo(STAFF, third, expect="does not look like a dog")
        assert_nothing_lost_or_doubled(bot, [first, second, third], labelled=1 + postgres)
        assert bot.errors == []


# --- the disk is full ------------------------------------------------------------------------------
class FullDisk(LocalPhotoStore):
    """A photo store on a disk that has just filled up: the next ``failures`` writes fail with ENOSPC."""

    def __init__(self, root: Path, failures: int = 1) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, data: bytes) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().put(data)


async def test_disk_full_when_saving_a_photo(tmp_path: Path, predictor, one_torch_thread) -> None:
    store = FullDisk(tmp_path / "data" / "photos")
    async with live_bot(tmp_path / "data", predictor, photo_store=store) as bot:
        bot.server.user(ADMIN)
        first, second = distinct_jpeg(21), distinct_jpeg(22)
        answer = await bot.photo(STAFF, first, expect="")
        assert "storage is full" in answer.text and "send it again later" in answer.text, answer.text
        assert bot.rows(Photo) == [] and bot.rows(Label) == [], "nothing half-saved"
        alert = await bot.reply(ADMIN, "storage is full", since=0)
        assert "No space" not in alert.text and "Free some disk space" in alert.text  # what to fix

        answer = await bot.photo(STAFF, first, expect="does not look like a dog")  # space freed: resent
        await label_it(bot, answer)
        await bot.photo(STAFF, second, expect="does not look like a dog")
        assert_nothing_lost_or_doubled(bot, [first, second], labelled=1)
        assert [type(e) for e in bot.errors] == [OSError]


# --- Telegram acted, but its answer was lost -------------------------------------------------------
class LossyTelegram(FakeTelegram):
    """Telegram carries out the next call of ``lose`` and then never answers in time: the bot's read
    timeout fires although the call took effect (what a real timeout often is). A repeat of an
    answerCallbackQuery is then "query is too old"; of an edit, "message is not modified"."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: set[str] = set()

    async def _lost(self, method: str) -> None:
        if method in self.lose:
            self.lose.discard(method)
            self._log(f"bot  … {method} acted, answer lost")
            await asyncio.sleep(2.5)  # past the bot's 2 s read timeout

    async def _answer_callback_query(self, call):
        result = await super()._answer_callback_query(call)
        await self._lost("answerCallbackQuery")
        return result

    async def _edit_message_text(self, call):
        result = await super()._edit_message_text(call)
        await self._lost("editMessageText")
        return result

    async def _edit_message_reply_markup(self, call):
        result = await super()._edit_message_reply_markup(call)
        await self._lost("editMessageReplyMarkup")
        return result


@pytest.mark.parametrize("method", ["answerCallbackQuery", "editMessageText"])
async def test_telegram_acted_but_the_answer_was_lost(
    tmp_path: Path, predictor, one_torch_thread, method
) -> None:
    async with LossyTelegram() as server, live_bot(tmp_path / "data", predictor, server=server) as bot:
        first, second = distinct_jpeg(41), distinct_jpeg(42)
        answer = await bot.photo(STAFF, first, expect="does not look like a dog")
        server.lose.add(method)
        await label_it(bot, answer)
        assert method not in server.lose, "the loss was injected"
        await bot.photo(STAFF, second, expect="does not look like a dog")
        assert_nothing_lost_or_doubled(bot, [first, second], labelled=1)
        assert bot.errors == [], "a repeat that finds the work done is a success, not an error"
