"""End to end, the catalog's accuracy (issue 28): spot checks reach staff, and what they say is counted.

The real application (in this process, livebot.py) against the fake Bot API server, on SQLite and on
PostgreSQL. Every answer accepted without asking is a spot check here (``spot_check_share=1``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from livebot import ADMIN, STAFF, live_bot

from dogbot.core.accuracy import estimate_from_catalog
from storage.tables import Label, Prediction
from storage.vocabulary import LabelSource

pytestmark = pytest.mark.slow


async def test_a_spot_check_asks_staff_and_their_answer_counts(
    tmp_path: Path, predictor, dog_photos, one_torch_thread, database_url
) -> None:
    settings = {"spot_check_share": 1.0, "auto_accept_threshold": 0.05}
    async with live_bot(tmp_path / "data", predictor, database_url=database_url, **settings) as bot:
        card = await bot.photo(STAFF, dog_photos["sure"], expect="Quick check, picked at random")
        shown = bot.breed_buttons(card)[0]  # the model's answer, the first breed button
        assert f"is it a {shown}?" in card.text and "Registered as D-" in card.text
        assert estimate_from_catalog(bot.container.engine) is None  # nobody checked yet

        since = len(bot.server.sent)
        assert await bot.press(STAFF, card, shown) == f"Saved: {shown}"
        done = await bot.reply(STAFF, f": {shown}.", since=since)
        assert "Quick check" not in done.text and "Wrong?" in [text for text, _ in done.buttons]

        (label,) = [lb for lb in bot.rows(Label) if lb.user_id == STAFF]
        (prediction,) = bot.rows(Prediction)
        assert (label.source, label.breed, label.prediction_id) == (
            LabelSource.STAFF,
            prediction.breed,
            prediction.id,
        )
        assert prediction.spot_check and prediction.auto_accepted
        estimate = estimate_from_catalog(bot.container.engine)
        assert estimate is not None and estimate.spot_checks == 1 and estimate.value == 1.0

        # What the one check says reaches admins in words: /status, and /report week by week.
        since = len(bot.server.sent)
        await bot.server.send_text(ADMIN, "/status")
        status = (await bot.reply(ADMIN, "Catalog: about 100 % right (", since=since)).text
        assert "from 1 spot check; the target is 95 %." in status
        assert "When I ask: below 5 % sure, until people have answered 40 of my questions" in status
        since = len(bot.server.sent)
        await bot.server.send_text(ADMIN, "/report")
        report = (await bot.reply(ADMIN, "week by week", since=since)).text
        assert report.count("Week of ") == 4 and report.count("from 1 spot check.") == 1
        assert bot.errors == []
