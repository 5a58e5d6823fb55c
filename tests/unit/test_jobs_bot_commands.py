"""The admin lifecycle commands through the real PTB Application (recording request, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import ADMIN_ID, STAFF_ID

from jobs import registry
from storage.blobs import write_bytes_atomically
from storage.db import session as open_session
from storage.lifecycle_tables import ModelVersion
from storage.vocabulary import ModelStatus

pytestmark = pytest.mark.slow


def _texts(bot, chat_id: int) -> str:
    calls = bot.sent(chat_id=chat_id)
    return "\n".join(str(c.params.get("text") or c.params.get("caption") or "") for c in calls)


async def test_lifecycle_commands_are_for_admins_only(bot) -> None:
    for command in ("/retrain", "/drift", "/models", "/rollback"):
        await bot.send_text(STAFF_ID, command)
        assert "admin" in bot.last_reply(STAFF_ID).params["text"].lower()


async def test_admin_sees_models_and_cannot_roll_back_past_the_first(bot) -> None:
    await bot.send_text(ADMIN_ID, "/models")
    assert "▶ lite0-v0: answering now" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/rollback")
    assert "no earlier champion" in bot.last_reply(ADMIN_ID).params["text"]


async def test_retrain_and_drift_report_progress_and_results(bot) -> None:
    await bot.send_text(ADMIN_ID, "/retrain")
    text = _texts(bot, ADMIN_ID)
    assert "Retraining" in text and "Nothing was trained: no labels yet" in text
    await bot.send_text(ADMIN_ID, "/retrain full")
    assert "not available yet" in _texts(bot, ADMIN_ID)
    await bot.send_text(ADMIN_ID, "/drift")
    assert "Not enough photos yet" in bot.last_reply(ADMIN_ID).params["text"]


async def test_a_champion_promoted_by_another_process_is_served_without_restart(bot, predictor) -> None:
    container = bot.container
    now = datetime.now(UTC)
    head = predictor.base_head()
    head.bias[0] += 100.0  # a head that always says the first breed: easy to recognise
    model_dir = container.settings.model_dir
    sha = head.save(model_dir / "lite0-v1.pt", write=write_bytes_atomically)
    registry.ensure_base(container.engine, backbone="lite0", breed_keys=head.breed_keys, now=now)
    with open_session(container.engine) as session:
        session.add(
            ModelVersion(
                version="lite0-v1",
                backbone="lite0",
                artifact="lite0-v1.pt",
                sha256=sha,
                breed_keys=head.breed_keys,
                status=ModelStatus.CANDIDATE,
                created_at=now,
            )
        )
        session.commit()
    registry.promote(container.engine, "lite0-v1", reason="test", actor="worker", now=now)
    try:
        assert container.lifecycle.refresh() and predictor.model_version == "lite0-v1"
        assert not container.lifecycle.refresh()  # cheap no-op when nothing changed
        assert container.lifecycle.status().model_version == "lite0-v1"
    finally:
        predictor.use_head(predictor.base_head(), "lite0-v0")
