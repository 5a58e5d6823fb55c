"""Shelter time (issue 25): what people read is on the shelter's clock (DOGBOT_TIMEZONE), not UTC.
23:30 on 31 December in Los Angeles is 07:30 on 1 January in UTC: it belongs to 31 December."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

LA = "America/Los_Angeles"
LATE = datetime(2027, 1, 1, 7, 30, tzinfo=UTC)  # 2026-12-31 23:30 in Los Angeles
MORNING = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # 2026-12-31 10:00 in Los Angeles


@pytest.fixture
def photo(shared_manifest, eval_data_dir):
    def pick(breed: str) -> bytes:
        rows = [r for r in shared_manifest("manifest.csv") if r["breed"] == breed]
        return (eval_data_dir / rows[0]["path"]).read_bytes()

    return pick


def test_the_export_writes_times_on_the_shelters_clock_with_the_offset(make_catalog, database_url, photo):
    now = [LATE]
    catalog = make_catalog(database_url, clock=lambda: now[0], timezone=LA)
    photo_id = catalog.intake.submit(photo("pug"), source="telegram").photo.id
    catalog.labelling.record_label(photo_id, "pug", source="staff", user_id=7)
    (row,) = csv.DictReader(io.StringIO(catalog.reporting.export_csv()))
    assert row["received_at"] == "2026-12-31T23:30:00-08:00"
    assert row["labeled_at"] == "2026-12-31T23:30:00-08:00"
    assert datetime.fromisoformat(row["received_at"]) == LATE  # the same moment, nothing lost


def test_photos_today_counts_from_the_shelters_midnight(make_catalog, database_url, photo):
    now = [MORNING]
    catalog = make_catalog(database_url, clock=lambda: now[0], timezone=LA)
    catalog.intake.submit(photo("pug"), source="telegram")
    now[0] = LATE  # still 31 December at the shelter: the morning's photo came in today
    assert catalog.reporting.status().photos_today == 1
    now[0] = datetime(2027, 1, 1, 8, 30, tzinfo=UTC)  # 00:30 on 1 January there: a new day
    assert catalog.reporting.status().photos_today == 0


# --- the bot: /export and /status, through the real Application (tests/conftest.py's `bot`) ------


@pytest.fixture
def bot_settings() -> dict:
    return {"timezone": LA}


@pytest.fixture
def bot_container(bot_container):
    bot_container.clock = lambda: LATE  # before the bot builds its catalog
    return bot_container


async def test_the_bots_export_and_status_are_on_the_shelters_clock(bot, dog_photos) -> None:
    from conftest import ADMIN_ID

    await bot.send_photo(ADMIN_ID, dog_photos["sure"])
    await bot.send_text(ADMIN_ID, "/status")
    assert "1 today, 1 in total" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/export")
    ((file_name, content, *_),) = bot.last_reply(ADMIN_ID).files.values()
    assert file_name == "dogbot-catalog-20261231-2330.csv"
    (row,) = csv.DictReader(io.StringIO(content.decode()))
    assert row["received_at"] == "2026-12-31T23:30:00-08:00"


# --- the command line: `dogbot models` --------------------------------------------------------------


def test_dogbot_models_names_and_lists_models_on_the_shelters_clock(tmp_path, database_url, capsys):
    import argparse

    from dogbot.app import Container
    from dogbot.lifecycle_cli import cmd_models
    from dogbot.settings import Settings
    from jobs import registry
    from storage.db import session
    from storage.lifecycle_tables import ModelVersion

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url, timezone=LA)
    container = Container(settings, clock=lambda: LATE)
    engine = container.engine
    registry.ensure_base(engine, backbone="lite0", breed_keys=["pug"], now=MORNING)
    with session(engine) as s:
        s.add(ModelVersion(version="lite0-v1", backbone="lite0", created_at=LATE, breed_keys=["pug"]))
        s.commit()
    registry.promote(engine, "lite0-v1", reason="better", actor="cli", now=LATE)
    assert cmd_models(container, argparse.Namespace(json=False)) == 0
    printed = capsys.readouterr().out
    assert "31 Dec" in printed and "23:30" in printed and "1 Jan" not in printed  # the model of 31 December
    assert "2026-12-31 23:30  promote" in printed  # the champion's history, on the same clock
    engine.dispose()


def test_a_dog_card_says_the_shelters_day_another_dog_came_in(make_catalog, database_url, photo):
    from zoneinfo import ZoneInfo

    from bot import texts
    from dogbot.core.dogs import SameDog

    catalog = make_catalog(database_url, clock=lambda: LATE, timezone=LA)
    earlier = catalog.dogs.get(catalog.intake.submit(photo("pug"), source="telegram").photo.dog_id)
    now = catalog.dogs.answer(catalog.intake.submit(photo("boxer"), source="telegram").photo.dog_id)
    card = texts.dog_card(now, str, SameDog(earlier, 0.9, previous_of_sender=False), tz=ZoneInfo(LA))
    assert "who came in on 31 Dec 2026?" in card
