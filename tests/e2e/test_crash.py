"""The bot process killed (SIGKILL) after storing a photo and before answering it, then restarted.

`dogbot run` as users start it, against the fake Bot API server. The answer to the photo hangs (an
injected Telegram timeout); once the photo's row is committed the process is killed without warning.
After the restart the photo is in the catalog once and waits in /review (the update is not
redelivered: PTB confirmed it when it fetched the next batch), a staff member labels it from
/review, sending it again is recognised as a duplicate, and the next photo is answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from livebot import STAFF, distinct_jpeg
from sqlmodel import select

from storage.db import make_engine
from storage.db import session as open_session
from storage.tables import Dog, Label, Photo

pytestmark = pytest.mark.slow

DOGBOT = Path(sys.executable).parent / "dogbot"
START_TIMEOUT = 120.0  # importing torch and loading the model on a busy 2-core machine


def rows(data_dir: Path, table) -> list:
    engine = make_engine(f"sqlite:///{data_dir / 'dogbot.db'}", prepare_schema=False)
    try:
        with open_session(engine) as session:
            return list(session.exec(select(table)))
    finally:
        engine.dispose()


async def start_bot(server: FakeTelegram, home: Path, log_name: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **server.bot_env,
        "DOGBOT_DATA_DIR": str(home / "data"),
        "DOGBOT_STAFF_IDS": str(STAFF),
        "DOGBOT_TORCH_THREADS": "1",
        # Every photo is "a dog" the model is unsure about: each one asks, so an unanswered one waits
        # in /review instead of being auto-labelled.
        "DOGBOT_DOG_THRESHOLD": "0",
        "DOGBOT_AUTO_ACCEPT_THRESHOLD": "1.0",  # the highest Settings allows: nothing is that sure
    }
    since = len(server.calls)
    with (home / log_name).open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(DOGBOT), "-v", "run", env=env, cwd=home, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await server.wait_for_call(
            "getUpdates", lambda call: call.status in (None, 200), timeout=START_TIMEOUT, since=since
        )
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return process


async def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_killed_between_storing_and_answering(tmp_path: Path) -> None:
    data = tmp_path / "data"
    photo, other = distinct_jpeg(31), distinct_jpeg(32)
    async with FakeTelegram() as server:
        process = await start_bot(server, tmp_path, "first.log")
        try:
            server.fail_next("sendMessage", "timeout")
            since = len(server.calls)
            await server.send_photo(STAFF, photo)
            await server.wait_for_call("sendMessage", timeout=60, since=since)  # the answer is on its way
            assert len(rows(data, Photo)) == 1, "stored before answering"
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert not [s for s in server.sent if s.chat_id == STAFF], "killed before the answer got out"

        process = await start_bot(server, tmp_path, "second.log")
        try:
            await asyncio.sleep(1.0)  # a redelivered update would be answered within this time
            assert len(rows(data, Photo)) == 1
            (stored,) = rows(data, Photo)

            since = len(server.sent)
            await server.send_text(STAFF, "/review")
            shown = await server.wait_for(
                lambda s: s.chat_id == STAFF and s.method == "sendPhoto", timeout=30, since=since
            )
            (dog,) = rows(data, Dog)
            assert shown.text.startswith(f"🐕 Dog {dog.code}") and shown.file_data == photo
            pressed = await server.press_button(STAFF, shown, server.find_button(shown, "Mixed breed"))
            await server.wait_for_answer(pressed, timeout=30)
            mix = await server.wait_for(
                lambda s: s.message_id == shown.message_id and "Unknown mix" in [t for t, _ in s.buttons],
                timeout=30,
                since=since,
            )
            pressed = await server.press_button(STAFF, mix, server.find_button(mix, "Unknown mix"))
            await server.wait_for_answer(pressed, timeout=30)
            await server.wait_for(lambda s: s.chat_id == STAFF and "Nothing is waiting" in s.text, timeout=30)
            assert {(lb.photo_id, lb.breed, lb.user_id) for lb in rows(data, Label)} == {
                (stored.id, "mixed_breed", STAFF)
            }

            since = len(server.sent)
            await server.send_photo(STAFF, photo)  # the staff member never saw an answer: sends it again
            again = await server.wait_for(
                lambda s: s.chat_id == STAFF and "seen this photo before" in s.text, timeout=30, since=since
            )
            assert again.text.startswith("🐕 Dog D-")  # the card of the dog the photo is in
            since = len(server.sent)
            await server.send_photo(STAFF, other)
            await server.wait_for(
                lambda s: s.chat_id == STAFF and "Which breed" in s.text, timeout=30, since=since
            )
            assert sorted(p.id for p in rows(data, Photo)) == [stored.id, stored.id + 1]
            assert len(rows(data, Label)) == 1
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
    log = (tmp_path / "second.log").read_text(errors="replace")
    assert process.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    for name in ("first.log", "second.log"):
        assert server.token.split(":")[1] not in (tmp_path / name).read_text(errors="replace")
