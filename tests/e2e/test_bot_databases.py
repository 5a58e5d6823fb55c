"""The end-to-end scenario of test_bot_e2e.py on SQLite and on PostgreSQL, over HTTP.

The real application (in this process, livebot.py) talks to the fake Bot API server; the database
comes from the ``database_url`` fixture: a SQLite file, or a fresh PostgreSQL schema (marker
``postgres``). A staff member's photo is answered and corrected, the label lands with their id, a
stranger is refused, and an admin reads /status and /export.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from livebot import ADMIN, STAFF, STRANGER, live_bot

from storage.tables import Photo

pytestmark = pytest.mark.slow


async def test_scenario(tmp_path: Path, predictor, dog_photos, one_torch_thread, database_url) -> None:
    async with live_bot(tmp_path / "data", predictor, database_url=database_url) as bot:
        server = bot.server
        answer = await bot.photo(STAFF, dog_photos["sure"], expect="Registered as D-")
        (photo,) = bot.rows(Photo)
        code = answer.text.split()[2]  # "🐕 Dog D-2026-0001 (1 photo)"
        assert answer.text.startswith(f"🐕 Dog {code}") and photo.sender_id == STAFF

        await bot.press(STAFF, answer, "Wrong?")
        await server.wait_for(lambda s: s.method == "editMessageText", timeout=30)
        correction = bot.breed_buttons(answer)[1]  # the runner-up: a real correction
        since = len(server.sent)
        assert await bot.press(STAFF, bot.current(answer), correction) == f"Saved: {correction}"
        await bot.reply(STAFF, f"Registered as {code}: {correction}", since=since)
        assert [(photo_id, user) for photo_id, _, user in bot.people_labels()] == [(photo.id, STAFF)]

        since, downloads = len(server.sent), len(server.downloads)
        await server.send_photo(STRANGER, dog_photos["unsure"])
        await bot.reply(STRANGER, "only for the shelter's staff", since=since)
        assert len(server.downloads) == downloads and bot.count(Photo) == 1

        since = len(server.sent)
        await server.send_text(ADMIN, "/status")
        assert "1 in total" in (await bot.reply(ADMIN, "Model:", since=since)).text
        await server.send_text(ADMIN, "/export")
        export = await server.wait_for(
            lambda s: s.chat_id == ADMIN and s.method == "sendDocument", timeout=30
        )
        table = list(csv.DictReader(io.StringIO(export.file_data.decode())))
        assert [(r["photo_id"], r["label"], r["labeled_by"]) for r in table] == [
            (str(photo.id), correction, str(STAFF))
        ]
        assert bot.errors == []
