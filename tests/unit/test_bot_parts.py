"""The bot's small parts without Telegram: roles, batching, throttling, texts, redaction, settings."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from pathlib import Path

import pytest

from bot import texts
from bot.app import run_bot, webhook_secret
from bot.batcher import MicroBatcher
from bot.errors import Redact
from bot.throttle import PerUserLimit
from dogbot.core.members import Members, MembershipError, Role, parse_user_id
from dogbot.settings import Settings
from storage.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


# --- roles -------------------------------------------------------------------------------------
def test_parse_user_id_takes_positive_telegram_ids_only() -> None:
    assert parse_user_id("123456789") == 123456789
    assert parse_user_id(str(2**52 - 1)) == 2**52 - 1
    for typed in ("0", "-5", "²", "١٢٣", "1e3", " 7", "99999999999999999999999", "9" * 5000, ""):
        assert parse_user_id(typed) is None, typed


def test_staff_ids_out_of_range_never_reach_the_database(database_url) -> None:
    engine = make_engine(database_url)
    members = Members(engine, admin_ids=[1], cache_seconds=30)
    for user_id in (0, -100123456, 2**63, 10**23):
        with pytest.raises(MembershipError, match="not a Telegram user id"):
            members.add_staff(user_id, by=1)
    assert members.staff() == []
    engine.dispose()


@pytest.fixture
def members(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield Members(engine, admin_ids=[1], staff_ids=[2, 1], cache_seconds=30)
    engine.dispose()


def test_roles_from_settings_and_database(members: Members) -> None:
    assert [members.role(uid) for uid in (1, 2, 3, None)] == [
        Role.ADMIN,
        Role.STAFF,
        Role.STRANGER,
        Role.STRANGER,
    ]
    assert members.add_staff(3, by=1) is True
    assert members.add_staff(3, by=1) is False
    assert members.role(3) is Role.STAFF and members.staff() == [2, 3]
    assert members.remove_staff(3, by=1) is True and members.role(3) is Role.STRANGER
    assert members.remove_staff(3, by=1) is False
    with pytest.raises(MembershipError):
        members.remove_staff(1, by=1)
    with pytest.raises(MembershipError):
        members.remove_staff(2, by=1)


def test_roles_added_by_another_process_show_up_after_the_cache(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    now = [0.0]
    reader = Members(engine, cache_seconds=30, clock=lambda: now[0])
    writer = Members(engine, cache_seconds=30)
    assert reader.role(7) is Role.STRANGER
    writer.add_staff(7, by=None)
    assert reader.role(7) is Role.STRANGER  # cached
    now[0] = 31.0
    assert reader.role(7) is Role.STAFF
    engine.dispose()


def test_known_role_answers_from_the_cache_only_and_never_reads_the_database(members: Members) -> None:
    assert members.known_role(1) is Role.ADMIN and members.known_role(None) is Role.STRANGER
    assert members.known_role(2) is None  # nothing loaded yet: ask the database (in a worker thread)
    members.add_staff(5, by=1)
    assert members.role(5) is Role.STAFF  # loads the cache
    assert [members.known_role(uid) for uid in (2, 5, 3)] == [Role.STAFF, Role.STAFF, Role.STRANGER]
    members.remove_staff(5, by=1)
    assert members.known_role(5) is None  # a change empties the cache


# --- batching and throttling -------------------------------------------------------------------
async def test_micro_batcher_groups_a_burst_and_keeps_order() -> None:
    seen: list[list[int]] = []

    def double(items):
        seen.append(list(items))
        return [item * 2 for item in items]

    batcher = MicroBatcher(double, window_s=0.05, max_size=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(6)))
    await batcher.stop()
    assert results == [0, 2, 4, 6, 8, 10]
    assert [len(batch) for batch in seen] == [4, 2]


async def test_micro_batcher_failure_fails_only_its_batch() -> None:
    def picky(items):
        if 13 in items:
            raise ValueError("unlucky")
        return list(items)

    batcher = MicroBatcher(picky, window_s=0.001, max_size=16)
    with pytest.raises(ValueError):
        await batcher.submit(13)
    assert await batcher.submit(14) == 14
    await batcher.stop()


def test_per_user_limit_slides() -> None:
    now = [0.0]
    limit = PerUserLimit(2, 60, clock=lambda: now[0])
    assert [limit.allow(1), limit.allow(1), limit.allow(1), limit.allow(2)] == [True, True, False, True]
    now[0] = 60.0
    assert limit.allow(1)
    assert PerUserLimit(0).allow(1)


@pytest.mark.parametrize("shared", [False, True])
def test_replicas_may_share_the_photo_limit(tmp_path, shared) -> None:
    from bot.app import build_application
    from dogbot.app import Container
    from dogbot.core.limits import SharedPerUserLimit

    settings = Settings(_env_file=None, data_dir=tmp_path, telegram_token="123:abc", shared_rate_limit=shared)
    container = Container(settings)
    limit = build_application(container).bot_data["services"].photo_limit
    assert isinstance(limit, SharedPerUserLimit if shared else PerUserLimit) and limit.limit == 60
    container.engine.dispose()


# --- texts -------------------------------------------------------------------------------------
def test_help_differs_by_role() -> None:
    assert "/export" in texts.help_text(Role.ADMIN) and "/export" not in texts.help_text(Role.STAFF)
    assert "/review" in texts.help_text(Role.STAFF)


def test_percent_and_status_before_lifecycle_jobs() -> None:
    from dogbot.core.reporting import CatalogStatus
    from jobs.service import LifecycleStatus
    from storage.lifecycle_tables import ModelVersion

    assert [texts.percent(p) for p in (0.934, 0.004)] == ["93%", "<1%"]
    status = texts.status(CatalogStatus("lite0-v0", 10, 2, 3, 7, 1), LifecycleStatus(None, None, None, None))
    assert "n/a" not in status and "starting model" in status
    assert "Last check for changed photos: never" in status and "2 today, 10 in total" in status
    trained = ModelVersion(
        version="lite0-v3", backbone="lite0", status="promoted", created_at=datetime(2026, 1, 2, 9, 30)
    )
    made = datetime(2026, 1, 2, 9, 30)
    status = texts.status(
        CatalogStatus("lite0-v3", 1, 1, 0, 1, 0),
        LifecycleStatus("lite0-v3", 0.91, None, trained, model_created_at=made, checked=(41, 60)),
    )
    # Named by date, as /models names it; the judge's count, not a bare percentage.
    assert "Model: the model of 2 Jan, 09:30, right on 41 of 60 labelled photos" in status
    assert "Last retrain: the model of 2 Jan, 09:30, now answering" in status
    assert "lite0-v3" not in status


def test_status_after_a_rollback_does_not_call_the_rolled_back_model_serving() -> None:
    from dogbot.core.reporting import CatalogStatus
    from jobs.service import LifecycleStatus
    from storage.lifecycle_tables import ModelVersion

    trained = ModelVersion(
        version="lite0-v2", backbone="lite0", status="promoted", created_at=datetime(2026, 1, 2, 9, 30)
    )
    status = texts.status(
        CatalogStatus("lite0-v0", 1, 1, 0, 1, 0), LifecycleStatus("lite0-v0", None, None, trained)
    )
    assert "Model: the starting model (no retrain has been better yet)" in status
    assert "the model of 2 Jan, 09:30 was put to work, then rolled back" in status
    assert "not retrained here yet" not in status  # beside a "Last retrain", it would contradict it
    assert "promoted" not in status


def test_times_are_on_the_shelters_clock() -> None:
    from zoneinfo import ZoneInfo

    from dogbot.core.reporting import CatalogStatus
    from jobs.service import LifecycleStatus
    from storage.lifecycle_tables import ModelVersion

    trained = ModelVersion(
        version="lite0-v1", backbone="lite0", status="rejected", created_at=datetime(2026, 7, 2, 9, 30)
    )
    status = texts.status(
        CatalogStatus("lite0-v0", 1, 1, 0, 1, 0),
        LifecycleStatus("lite0-v0", None, None, trained),
        ZoneInfo("Europe/Madrid"),
    )
    assert "the model of 2 Jul, 11:30 was not better" in status and "UTC" not in status
    assert Settings(_env_file=None, timezone="Europe/Madrid").timezone == "Europe/Madrid"
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(_env_file=None, timezone="Mars/Olympus")


def test_stats_never_sends_staff_to_an_admin_command() -> None:
    rows = [{"label": f"Breed {i}", "label_source": "auto_accepted"} for i in range(40)]
    staff = texts.stats(rows, 0, Role.STAFF)
    assert "/export" not in staff.replace("an admin can /export", "")
    assert "/export has them all" in texts.stats(rows, 0, Role.ADMIN)
    assert "auto_accepted" not in staff and "Decided by" not in staff


# --- secrets -----------------------------------------------------------------------------------
def test_redaction_removes_secrets_from_messages_and_tracebacks() -> None:
    token = "123456:SECRET-token-value"
    record = logging.LogRecord(
        "httpx", logging.ERROR, __file__, 1, "POST %s failed", (f"/bot{token}/x",), None
    )
    try:
        raise RuntimeError(f"boom at https://api.telegram.org/bot{token}/getMe")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    Redact([token]).filter(record)
    assert token not in record.getMessage() and token not in record.exc_text
    assert "[redacted]" in record.getMessage()


def test_webhook_secret_is_derived_not_the_token() -> None:
    derived = webhook_secret("123:abc")
    assert derived != "123:abc" and re.fullmatch(r"[0-9a-f]{64}", derived)
    assert webhook_secret("123:abc", "mine") == "mine"


def test_run_without_token_explains_botfather(tmp_path, capsys) -> None:
    from dogbot.app import Container

    assert run_bot(Container(Settings(_env_file=None, data_dir=tmp_path, telegram_token=""))) == 2
    assert "@BotFather" in capsys.readouterr().err


def test_env_example_lists_every_setting() -> None:
    documented = set(re.findall(r"^(DOGBOT_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    expected = {f"DOGBOT_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to .env.example with a comment"
    assert documented - expected == set(), "these are documented but are not settings"


def test_webhook_mode_logs_host_and_port_but_not_the_secret_path(tmp_path, caplog, monkeypatch) -> None:
    from telegram.ext import Application

    from dogbot.app import Container

    started = {}
    monkeypatch.setattr(Application, "run_webhook", lambda self, **kwargs: started.update(kwargs))
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        telegram_token="123456789:TEST-token",
        webhook_url="https://bots.example.org/hook-5f3a9c1e77d2",
        webhook_port=8443,
    )
    with caplog.at_level(logging.INFO):
        assert run_bot(Container(settings)) == 0
    assert started["url_path"] == "hook-5f3a9c1e77d2"  # the bot listens there all the same
    assert "webhook mode on 0.0.0.0:8443" in caplog.text
    assert "hook-5f3a9c1e77d2" not in caplog.text


def test_env_example_values_are_the_defaults() -> None:
    """A value written in .env.example is the default: copying the file changes nothing by itself."""
    defaults = Settings(_env_file=None)
    differ = {}
    for name, value in re.findall(
        r"^DOGBOT_([A-Z0-9_]+)=(.+)$", (ROOT / ".env.example").read_text(), re.MULTILINE
    ):
        default = getattr(defaults, name.lower())
        if isinstance(default, bool) or not isinstance(default, int | float):
            continue  # numbers are what drift when a default is re-measured
        if float(value) != default:
            differ[name] = (value, default)
    assert differ == {}, "update .env.example to the defaults (written, default)"


def test_help_says_how_photos_join_a_dog() -> None:
    from dogbot import i18n

    text = texts.help_text(Role.STAFF)
    assert "as one album: they are one dog" in text and "reply to a dog's card" in text and "caption" in text
    with i18n.using("es"):
        spanish = texts.help_text(Role.STAFF)
    assert "álbum" in spanish and "ficha de un perro" in spanish and "pie de foto" in spanish
