"""Load: 50 staff send 200 photos and press 200 buttons at once, through the fake Bot API over HTTP.

The scaled-down version of bench/bench_load.py (1,000 photos and 1,000 presses), run by `make test`
on SQLite and PostgreSQL. It asserts on counts, not speed: every photo stored once and answered
once, every press recorded once, with the presser's id, and nothing reaching the error handler.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from livebot import distinct_jpeg, live_bot
from loadgen import ALWAYS_ASK, LoadServer, run_load

from storage.blobs import sha256_of
from storage.tables import Photo, Prediction

pytestmark = pytest.mark.slow

STAFF = list(range(3001, 3051))
PHOTOS = 200
PRESSES = 200


async def test_fifty_staff_photos_and_presses(
    tmp_path: Path, predictor, one_torch_thread, database_url
) -> None:
    photos = [distinct_jpeg(1000 + i) for i in range(PHOTOS)]
    async with (
        LoadServer() as server,
        live_bot(
            tmp_path / "data", predictor, database_url=database_url, staff_ids=STAFF, server=server,
            timeout_s=10.0, **ALWAYS_ASK,
        ) as bot,
    ):  # fmt: skip
        result = await run_load(server, STAFF, photos, presses=PRESSES, timeout=120)

        stored = bot.rows(Photo)
        assert len(stored) == PHOTOS, "every photo stored once"
        assert {p.sha256 for p in stored} == {sha256_of(d) for d in photos}
        assert all(bot.container.photo_store.exists(p.sha256) for p in stored)
        senders = Counter(p.sender_id for p in stored)
        assert senders == Counter({user: PHOTOS // len(STAFF) for user in STAFF})
        assert len(bot.rows(Prediction)) == PHOTOS

        answered = Counter(server.answers_to[key] for key in result.photo_messages)
        assert answered == Counter({1: PHOTOS}), "every photo answered exactly once"

        labels = bot.people_labels()
        assert len(labels) == PRESSES, "every press recorded once"
        assert len({(photo_id, user) for photo_id, _, user in labels}) == PRESSES
        by_photo = {p.id: p.sender_id for p in stored}
        assert all(by_photo[photo_id] == user for photo_id, _, user in labels), "each label by its presser"
        assert all(toast.startswith("Saved: ") for toast in result.toasts), Counter(result.toasts)
        assert bot.errors == []
        batches = bot.application.bot_data["services"].batcher.batches
        assert max(batches) > 1, "concurrent photos share forward passes"
