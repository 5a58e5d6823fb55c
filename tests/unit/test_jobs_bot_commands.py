"""The admin lifecycle commands through the real PTB Application (recording request, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import ADMIN_ID, STAFF_ID
from sqlmodel import select

from bot import texts
from bot.context import DogContext
from bot.lifecycle import check_registry
from jobs import incidents, registry
from jobs.incidents import IncidentFacts
from storage import lifecycle_repository as repo
from storage.blobs import write_bytes_atomically
from storage.db import session as open_session
from storage.lifecycle_tables import DriftReport, ModelVersion
from storage.tables import Photo
from storage.vocabulary import DriftTest, IncidentClose, IncidentKind, ModelStatus

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
    listed = bot.last_reply(ADMIN_ID).params["text"]
    assert "▶ The starting model: answering now" in listed and "lite0" not in listed
    await bot.send_text(ADMIN_ID, "/rollback")
    assert "none to go back to" in bot.last_reply(ADMIN_ID).params["text"]


async def test_retrain_and_drift_report_progress_and_results(bot) -> None:
    await bot.send_text(ADMIN_ID, "/retrain")
    text = _texts(bot, ADMIN_ID)
    assert "Retraining" in text and "Nothing was trained: nobody has labelled a photo yet." in text
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


async def test_a_drift_incident_is_told_once_and_its_buttons_retrain_and_rebase(bot, dog_photos) -> None:
    container = bot.container
    for kind in ("sure", "unsure", "not_dog"):
        await bot.send_photo(STAFF_ID, dog_photos[kind])
    with open_session(container.engine) as session:
        hashes = [photo.sha256 for photo in session.exec(select(Photo).order_by(Photo.id))]
    context = DogContext(bot.app)
    await check_registry(context)  # the first check only notes where things stand
    now = datetime.now(UTC)
    facts = IncidentFacts(
        kind=IncidentKind.SHIFT,
        changed=[DriftTest.BRIGHTNESS],
        since=now,
        photos=3,
        examples=hashes[:2],
        brightness=(0.45, 0.18),
    )

    def alarm() -> int:
        with open_session(container.engine) as session:
            report = DriftReport(
                created_at=now, drift=True, model_version="lite0-v0", reference="first_window"
            )
            session.add(report)
            session.commit()
            report_id = report.id
        incident, _ = incidents.record_alarm(
            container.engine, report_id=report_id, now=now, model_version="lite0-v0", facts=facts
        )
        return incident.id

    incident_id = alarm()
    await check_registry(context)
    message = bot.last_reply(ADMIN_ID)
    assert message.params["text"].startswith("📉 Photos are darker since")
    assert "3 photos, brightness 0.45 -> 0.18" in message.params["text"]
    assert len(bot.sent("sendMediaGroup", chat_id=ADMIN_ID)) == 1  # the two example photos
    buttons = bot.buttons(message)
    assert set(buttons) == {texts.RETRAIN_NOW, texts.EXPECTED}
    assert not bot.sent(chat_id=STAFF_ID, method="sendMediaGroup")
    # Later alarms fold into the open incident: nothing more is sent.
    sent = len(bot.sent(chat_id=ADMIN_ID))
    assert alarm() == incident_id
    await check_registry(context)
    assert len(bot.sent(chat_id=ADMIN_ID)) == sent
    # Staff cannot press them; an admin's "Retrain now" starts a retrain.
    await bot.press(STAFF_ID, message, buttons[texts.RETRAIN_NOW])
    assert "admin" in bot.answers()[-1].params["text"].lower()
    await bot.press(ADMIN_ID, message, buttons[texts.RETRAIN_NOW])
    assert "Retraining" in _texts(bot, ADMIN_ID)
    with open_session(container.engine) as session:
        trained = [m for m in repo.model_versions(session=session) if m.actor == str(ADMIN_ID)]
    assert trained or "nothing trained" in _texts(bot, ADMIN_ID)
    # "Expected": the recent photos become the drift reference; the buttons go.
    await bot.press(ADMIN_ID, message, buttons[texts.EXPECTED])
    assert bot.last_reply(ADMIN_ID).params["text"] == texts.new_normal_accepted(3)
    assert not bot.buttons(bot.sent("editMessageReplyMarkup", chat_id=ADMIN_ID)[-1])
    with open_session(container.engine) as session:
        incident = repo.incident(incident_id, session=session)
    assert incident.closed_how == IncidentClose.EXPECTED and incident.closed_by == str(ADMIN_ID)
    assert container.lifecycle.drift(trigger="telegram").reference == "new_normal"
    await bot.press(ADMIN_ID, message, buttons[texts.EXPECTED])  # a second press: told it is closed
    assert "Closed already" in bot.answers()[-1].params["text"]


async def test_retrain_with_no_new_labels_says_so_instead_of_training_again(bot, dog_photos) -> None:
    for kind in ("sure", "unsure", "not_dog"):
        await bot.send_photo(STAFF_ID, dog_photos[kind])
    await bot.send_text(ADMIN_ID, "/retrain")
    with open_session(bot.container.engine) as session:
        trained = len(repo.model_versions(session=session))
    assert trained == 2  # the starting model and the one this retrain judged
    since = len(bot.sent(chat_id=ADMIN_ID))
    await bot.send_text(ADMIN_ID, "/retrain")
    said = "\n".join(str(c.params.get("text", "")) for c in bot.sent(chat_id=ADMIN_ID)[since:])
    assert "Nothing was trained: no new labels since the last retrain" in said
    with open_session(bot.container.engine) as session:
        assert len(repo.model_versions(session=session)) == trained
