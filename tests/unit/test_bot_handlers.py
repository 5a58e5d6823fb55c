"""Handlers through the real PTB stack (recording request, no network), with the real model and SQLite.

Each test asserts on what the bot sent and on what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
import csv
import errno
import io
import threading
import time

import pytest
from conftest import ADMIN_ID, STAFF2_ID, STAFF_ID, STRANGER_ID
from PIL import Image
from sqlmodel import select

from storage.db import session as open_session
from storage.tables import Label, Member, Photo, Prediction
from storage.vocabulary import MIXED_BREED, SKIP

pytestmark = pytest.mark.slow


def rows(container, table) -> list:
    with open_session(container.engine) as session:
        return list(session.exec(select(table)))


def jpeg(color=(120, 90, 60), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def only_real_buttons_named(text: str, buttons) -> None:
    """Every “button” a message names is one of its buttons (issue 14: no “It is a dog” to press)."""
    import re

    named = set(re.findall(r"“([^”]+)”", text))
    assert named <= set(buttons), (named - set(buttons), text)


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (16, 16)).save(buffer, "GIF")
    return buffer.getvalue()


# --- who may do what ---------------------------------------------------------------------------
async def test_start_and_help_depend_on_role(bot) -> None:
    await bot.send_text(STAFF_ID, "/start")
    assert "You are staff" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(STAFF_ID, "/help")
    assert "/review" in bot.last_reply(STAFF_ID).params["text"]
    assert "/addstaff" not in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/help")
    assert "/addstaff" in bot.last_reply(ADMIN_ID).params["text"]


async def test_every_command_the_bot_answers_is_in_help_and_the_menu(bot) -> None:
    from telegram.ext import CommandHandler

    from bot import texts

    names = {
        name
        for handlers in bot.app.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for name in handler.commands
    }
    assert {"report", "review", "drift"} <= names
    menu = set(texts.COMMANDS_STAFF) | set(texts.COMMANDS_ADMIN)
    assert names <= menu, names - menu
    await bot.send_text(ADMIN_ID, "/help")
    admin_help = bot.last_reply(ADMIN_ID).params["text"]
    assert all(f"/{name}" in admin_help for name in names - {"start", "help"}), admin_help


async def test_stranger_is_refused_once_and_nothing_is_stored(bot, dog_photos) -> None:
    await bot.send_photo(STRANGER_ID, dog_photos["sure"])
    await bot.send_photo(STRANGER_ID, dog_photos["unsure"])  # within the cooldown: no second refusal
    replies = bot.replies(STRANGER_ID)
    assert len(replies) == 1 and "only for the shelter's staff" in replies[0].params["text"]
    assert str(STRANGER_ID) in replies[0].params["text"]
    assert not bot.sent("getFile"), "a stranger's file must not even be downloaded"
    assert rows(bot.container, Photo) == []


async def test_staff_cannot_run_admin_commands(bot) -> None:
    for command in ("/export", "/addstaff 5", "/addbreed Shiba Inu", "/conflicts", "/retrain"):
        await bot.send_text(STAFF_ID, command)
        assert bot.last_reply(STAFF_ID).params["text"] == "Only admins can do that."
    assert not bot.sent("sendDocument")
    assert rows(bot.container, Member) == []


async def test_admin_adds_and_removes_staff(bot, dog_photos) -> None:
    newcomer = 4242
    await bot.send_text(ADMIN_ID, f"/addstaff {newcomer}")
    assert "now has staff rights" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(newcomer, "/start")
    assert "You are staff" in bot.last_reply(newcomer).params["text"]
    await bot.send_text(ADMIN_ID, f"/removestaff {newcomer}")
    assert "no longer has" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_photo(newcomer, dog_photos["sure"])
    assert "only for the shelter's staff" in bot.last_reply(newcomer).params["text"]
    assert rows(bot.container, Photo) == []
    await bot.send_text(ADMIN_ID, f"/removestaff {STAFF_ID}")
    assert "DOGBOT_STAFF_IDS" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/addstaff bob")
    assert "Usage" in bot.last_reply(ADMIN_ID).params["text"]


@pytest.mark.parametrize("command", ["addstaff", "removestaff"])
@pytest.mark.parametrize("argument", ["99999999999999999999999", "²", "0", "-100123456", "12 34", "0x10", ""])
async def test_staff_commands_refuse_what_is_not_a_user_id(bot, command, argument) -> None:
    """Overflowing numbers, digits int() refuses, 0 and group chats (negative ids): a usage answer."""
    await bot.send_text(ADMIN_ID, f"/{command} {argument}".strip())
    assert "Usage" in bot.last_reply(ADMIN_ID).params["text"]
    assert "positive number" in bot.last_reply(ADMIN_ID).params["text"]
    assert rows(bot.container, Member) == []
    assert not bot.sent("sendMessage", chat_id=ADMIN_ID)[:-1], "no error alert beside the answer"


# --- photos ------------------------------------------------------------------------------------
async def test_confident_photo_is_registered_and_can_be_corrected(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    reply = bot.last_reply(STAFF_ID)
    photo = rows(bot.container, Photo)[0]
    code = bot.catalog.dogs.get(photo.dog_id).code
    assert reply.params["text"].startswith(f"🐕 Dog {code} (1 photo)")
    assert f"Registered as {code}" in reply.params["text"] and "sure" in reply.params["text"]
    assert list(bot.buttons(reply)) == ["Wrong?", "♂ Male", "♀ Female", "Puppy", "Adult", "Senior"]
    assert [label.source for label in rows(bot.container, Label)] == ["auto_accepted"]
    assert photo.sender_id == STAFF_ID and photo.source == "telegram"
    assert bot.sent("sendChatAction"), "shows 'typing…' while working"

    await bot.press(STAFF_ID, reply, bot.buttons(reply)["Wrong?"])
    reopened_call = bot.sent("editMessageText")[-1]
    reopened = bot.buttons(reopened_call)
    assert {"Mixed breed", "Not a dog", "Other…", "Skip"} <= set(reopened)
    assert "Registered as" not in reopened_call.params["text"], "the question must not say it is settled"
    assert f"Which breed is {code}, then?" in reopened_call.params["text"]
    runner_up = [name for name in reopened if name not in ("Mixed breed", "Not a dog", "Other…", "Skip")][1]
    await bot.press(STAFF_ID, reply, reopened[runner_up])

    staff_labels = [label for label in rows(bot.container, Label) if label.source == "staff"]
    assert [(label.user_id, label.photo_id) for label in staff_labels] == [(STAFF_ID, photo.id)]
    edited = bot.sent("editMessageText")[-1].params["text"]
    assert f"Registered as {code}: {runner_up}" in edited
    assert edited.count("Registered as") == 1, "the edited message shows the current state once"
    assert all(call.params["callback_query_id"] for call in bot.answers())
    assert len(bot.answers()) == 2


async def test_unsure_photo_asks_and_double_press_is_harmless(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    buttons = bot.buttons(reply)
    assert "not sure" in reply.params["text"] and "Which breed is D-" in reply.params["text"]
    assert {"Mixed breed", "Not a dog", "Other…", "Skip", "♂ Male", "Puppy"} <= set(buttons) and len(
        buttons
    ) == 12
    assert all(len(data.encode()) <= 64 for data in buttons.values())
    assert rows(bot.container, Label) == []

    await bot.press(STAFF_ID, reply, buttons["Mixed breed"])
    await bot.press(STAFF_ID, reply, buttons["Mixed breed"])
    labels = rows(bot.container, Label)
    assert [(label.breed, label.source, label.user_id) for label in labels] == [
        (MIXED_BREED, "staff", STAFF_ID)
    ]
    assert [a.params.get("text") for a in bot.answers()] == ["Saved: Mixed breed", "Already saved."]


async def test_two_staff_disagree_and_admins_see_it(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    breeds = [name for name, _ in breed_buttons(bot, reply)]
    await bot.press(STAFF_ID, reply, bot.buttons(reply)[breeds[0]])
    await bot.press(STAFF2_ID, reply, bot.buttons(reply)[breeds[1]])
    labels = rows(bot.container, Label)
    assert {(label.user_id, label.source) for label in labels} == {(STAFF_ID, "staff"), (STAFF2_ID, "staff")}
    assert "disagree" in bot.sent("editMessageText")[-1].params["text"]

    await bot.send_text(ADMIN_ID, "/conflicts")
    text = bot.last_reply(ADMIN_ID).params["text"]
    assert f"#{labels[0].photo_id}" in text and breeds[0] in text and breeds[1] in text
    await bot.send_text(ADMIN_ID, "/stats")
    assert "1 with disagreement" in bot.last_reply(ADMIN_ID).params["text"]

    await bot.press(ADMIN_ID, reply, bot.buttons(reply)[breeds[1]])
    assert rows(bot.container, Label)[-1].source == "admin"


async def test_not_a_dog_can_be_overruled(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["not_dog"])
    reply = bot.last_reply(STAFF_ID)
    assert "does not look like a dog" in reply.params["text"]
    only_real_buttons_named(reply.params["text"], bot.buttons(reply))
    await bot.press(STAFF_ID, reply, bot.buttons(reply)["It is a dog"])
    reopened = bot.sent("editMessageText")[-1]
    choices = bot.buttons(reopened)
    assert "You say it is a dog: which breed" in reopened.params["text"]
    only_real_buttons_named(reopened.params["text"], choices)
    breed = next(name for name in choices if name not in ("Mixed breed", "Not a dog", "Other…", "Skip"))
    await bot.press(STAFF_ID, reply, choices[breed])
    assert rows(bot.container, Label)[-1].user_id == STAFF_ID

    # The same photo again: it is registered as that breed now, so the answer offers "Wrong?", and
    # says nothing of an "It is a dog" button it does not have.
    await bot.send_photo(STAFF_ID, dog_photos["not_dog"])
    again = bot.last_reply(STAFF_ID)
    assert f": {breed}." in again.params["text"] and list(bot.buttons(again))[0] == "Wrong?"
    assert "It is a dog" not in bot.buttons(again)
    only_real_buttons_named(again.params["text"], bot.buttons(again))


async def test_forged_and_stale_buttons_change_nothing(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    data = bot.buttons(reply)["Mixed breed"]
    await bot.press(STAFF_ID, reply, data.replace(":l:", ":L:"))
    await bot.press(STAFF_ID, reply, "v1:1:l:beagle:AAAAAAAA")
    await bot.press(STRANGER_ID, reply, data)
    # The photo is re-scored (a new model): the old question is stale.
    prediction = rows(bot.container, Prediction)[0]
    with open_session(bot.container.engine) as session:
        session.add(Prediction(**{**prediction.model_dump(), "id": None, "model_version": "lite0-v2"}))
        session.commit()
    await bot.press(STAFF_ID, reply, data)
    answers = [a.params for a in bot.answers()]
    assert len(answers) == 4 and all(a.get("show_alert") for a in answers)
    assert "can't use that button" in answers[0]["text"] and "can't use that button" in answers[1]["text"]
    assert "Only shelter staff" in answers[2]["text"] and "out of date" in answers[3]["text"]
    assert rows(bot.container, Label) == []


def finish_first_write_last(catalog, monkeypatch, first_breed: str) -> None:
    """The press for ``first_breed`` writes first but is slowest to return: the other press's write,
    and its edit of the message, come in between (what racing presses do now and then)."""
    record, written = catalog.labelling.record_label, threading.Event()

    def racing(photo_id, breed, **kwargs):
        if breed != first_breed:
            assert written.wait(30)
            return record(photo_id, breed, **kwargs)
        result = record(photo_id, breed, **kwargs)
        written.set()
        time.sleep(1.0)
        return result

    monkeypatch.setattr(catalog.labelling, "record_label", racing)


def breed_buttons(bot, reply) -> list[tuple[str, str]]:
    specials = {
        "Mixed breed",
        "Not a dog",
        "Other…",
        "Skip",
        "♂ Male",
        "♀ Female",
        "Puppy",
        "Adult",
        "Senior",
    }
    return [(name, data) for name, data in bot.buttons(reply).items() if name not in specials]


async def test_racing_presses_of_one_person_leave_the_message_saying_what_the_catalog_holds(
    bot, dog_photos, monkeypatch
) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    (first, first_data), (second, second_data) = breed_buttons(bot, reply)[:2]
    finish_first_write_last(bot.catalog, monkeypatch, rows(bot.container, Prediction)[0].top[0]["breed"])
    await asyncio.gather(bot.press(STAFF_ID, reply, first_data), bot.press(STAFF_ID, reply, second_data))
    photo = rows(bot.container, Photo)[0]
    standing = bot.catalog.labelling.catalog_label(photo.id)
    assert bot.catalog.breeds.taxonomy.get(standing.breed).display_name == second  # the later answer stands
    text = bot.message_of(reply)["text"]
    code = bot.catalog.dogs.get(photo.dog_id).code
    # The state line says what stands; the second press changed the person's first answer, and says so.
    assert f"\nRegistered as {code}: {second}.\n" in text + "\n", text
    assert text.endswith(f"Registered as {code}: {second}.") or text.endswith(
        f" → {second}, your answer of {text[-5:]}"
    ), text


async def test_racing_presses_of_two_staff_show_the_label_that_stands_and_the_conflict(
    bot, dog_photos, monkeypatch
) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    (first, first_data), (second, second_data) = breed_buttons(bot, reply)[:2]
    finish_first_write_last(bot.catalog, monkeypatch, rows(bot.container, Prediction)[0].top[0]["breed"])
    await asyncio.gather(bot.press(STAFF_ID, reply, first_data), bot.press(STAFF2_ID, reply, second_data))
    photo = rows(bot.container, Photo)[0]
    standing = bot.catalog.labelling.catalog_label(photo.id)
    assert standing.conflict and bot.catalog.breeds.taxonomy.get(standing.breed).display_name == second
    text = bot.message_of(reply)["text"]
    code = bot.catalog.dogs.get(photo.dog_id).code
    assert f"Registered as {code}: {second}." in text and text.count("Registered as") == 1, text
    assert "Staff disagree about this dog" in text, text


async def test_other_then_typed_breed_with_a_typo(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    await bot.press(STAFF_ID, reply, bot.buttons(reply)["Other…"])
    prompt = bot.last_reply(STAFF_ID)
    assert "Type its name" in prompt.params["text"] and prompt.params["reply_markup"]["force_reply"]
    await bot.send_text(STAFF_ID, "german shepard", reply_to=bot.message_of(prompt))
    offer = bot.last_reply(STAFF_ID)
    assert "German Shepherd" in " ".join(bot.buttons(offer))
    choice = next(data for name, data in bot.buttons(offer).items() if "German Shepherd" in name)
    await bot.press(STAFF_ID, offer, choice)
    label = rows(bot.container, Label)[-1]
    assert (label.breed, label.user_id) == ("german_shepherd", STAFF_ID)

    await bot.press(STAFF_ID, reply, bot.buttons(reply)["Other…"])
    await bot.send_text(STAFF_ID, "xqzzyv")  # no reply-to: the last question asked is used
    assert "don't know a breed called" in bot.last_reply(STAFF_ID).params["text"]


async def test_a_breed_cannot_be_named_like_the_skip_button(bot) -> None:
    await bot.send_text(ADMIN_ID, "/addbreed Skip")
    assert bot.last_reply(ADMIN_ID).params["text"] == (
        "“Skip” is a word the bot's own buttons use; please give the breed another name."
    )
    assert "skip" not in bot.catalog.breeds.taxonomy


async def test_admin_adds_a_breed_and_staff_can_choose_it(bot, dog_photos) -> None:
    await bot.send_text(ADMIN_ID, "/addbreed kooikerhondje")
    assert "Added “Kooikerhondje”" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/addbreed kooikerhondje")
    assert "already" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    await bot.press(STAFF_ID, reply, bot.buttons(reply)["Other…"])
    await bot.send_text(STAFF_ID, "kooikerhondye")
    offer = bot.last_reply(STAFF_ID)
    await bot.press(STAFF_ID, offer, bot.buttons(offer)["Kooikerhondje"])
    assert rows(bot.container, Label)[-1].breed == "kooikerhondje"


async def test_an_album_is_one_dog_batched_and_answered_with_one_card(bot, dog_photos) -> None:
    photos = [dog_photos["sure"], dog_photos["unsure"], dog_photos["not_dog"]]
    from telegram import Update

    for i, data in enumerate(photos):
        content = bot.photo_content(data)
        message = bot._message(STAFF_ID, media_group_id="album1", **content)
        await bot.app.process_update(Update.de_json({"update_id": 100 + i, "message": message}, bot.app.bot))
    await bot.drain()
    [card] = bot.replies(STAFF_ID)
    assert card.params["text"].startswith("🐕 Dog D-") and "(3 photos)" in card.params["text"]
    assert len(rows(bot.container, Photo)) == 3 and len({p.dog_id for p in rows(bot.container, Photo)}) == 1
    assert max(bot.app.bot_data["services"].batcher.batches) >= 2, "a burst shares one forward pass"


async def test_duplicate_photo_is_recognised(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    await bot.send_photo(STAFF2_ID, dog_photos["sure"])
    assert "seen this photo before" in bot.last_reply(STAFF2_ID).params["text"]
    assert len(rows(bot.container, Photo)) == 1 and len(rows(bot.container, Prediction)) == 1


# --- bad input -----------------------------------------------------------------------------------
async def test_bad_input_gets_clear_answers_and_nothing_is_stored(bot, dog_photos) -> None:
    await bot.send_document(STAFF_ID, b"shopping list", "notes.txt", "text/plain")
    assert "is not an image" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_document(
        STAFF_ID, dog_photos["sure"][: len(dog_photos["sure"]) // 2], "cut.jpg", "image/jpeg"
    )
    assert "cut off" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_document(STAFF_ID, b"\xff\xd8\xff", "huge.jpg", "image/jpeg", file_size=25 * 1024 * 1024)
    assert "too big" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send(STAFF_ID, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 512,
                                      "height": 512, "is_animated": False, "is_video": False})  # fmt: skip
    assert "sticker" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send(STAFF_ID, voice={"file_id": "v", "file_unique_id": "v", "duration": 2})
    assert "voice" in bot.last_reply(STAFF_ID).params["text"]
    animation = {"file_id": "a", "file_unique_id": "a", "width": 16, "height": 16, "duration": 1}
    document = {"file_id": "a", "file_unique_id": "a", "file_name": "dog.gif", "mime_type": "image/gif"}
    await bot.send(STAFF_ID, animation=animation, document=document)
    assert "GIF" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(STAFF_ID, "hello")
    assert "Send me a photo" in bot.last_reply(STAFF_ID).params["text"]
    assert rows(bot.container, Photo) == []
    fetched = [call.params["file_id"] for call in bot.sent("getFile")]
    assert len(fetched) == 1, "only the truncated JPEG was worth downloading"

    await bot.send_document(STAFF_ID, dog_photos["sure"], "dog.jpg", "image/jpeg")
    assert "Registered as D-" in bot.last_reply(STAFF_ID).params["text"]
    assert rows(bot.container, Photo)[0].file_name == "dog.jpg"


async def test_classification_failure_keeps_the_photo_for_review(bot, dog_photos, monkeypatch) -> None:
    def broken(images):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(bot.container.predictor, "predict", broken)
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    assert "couldn't classify it" in bot.last_reply(STAFF_ID).params["text"]
    assert len(rows(bot.container, Photo)) == 1 and rows(bot.container, Prediction) == []

    monkeypatch.undo()
    await bot.send_text(STAFF_ID, "/review")
    shown = bot.last_reply(STAFF_ID)
    assert shown.method == "sendPhoto" and "Which breed is D-" in shown.params["caption"]
    assert len(rows(bot.container, Prediction)) == 1


# --- review ----------------------------------------------------------------------------------------
async def test_review_walks_the_queue_oldest_first(bot, dog_photos) -> None:
    catalog = bot.catalog
    first = catalog.intake.submit(dog_photos["unsure"], source="ingest")
    # A re-encoded copy of the same photo: another file, just as unsure, stored but never classified.
    buffer = io.BytesIO()
    catalog.intake.decode(dog_photos["unsure"]).save(buffer, "JPEG", quality=70)
    second, _ = catalog.intake.store_photo(
        buffer.getvalue(), catalog.intake.decode(buffer.getvalue()), source="ingest"
    )

    first_code = catalog.dogs.get(first.photo.dog_id).code
    second_code = catalog.dogs.get(second.dog_id).code
    await bot.send_text(STAFF_ID, "/review")
    shown = bot.last_reply(STAFF_ID)
    # Dog by dog (issue 25): a dog of one photo is asked about on its card, the photo above it.
    assert shown.method == "sendPhoto" and shown.params["caption"].startswith(f"🐕 Dog {first_code} ")
    assert f"Which breed is {first_code}?" in shown.params["caption"]
    assert shown.files, "the stored photo bytes are uploaded"
    await bot.press(STAFF_ID, shown, bot.buttons(shown)["Skip"])
    assert "Skipped" in bot.sent("editMessageCaption")[-1].params["caption"]
    shown2 = bot.last_reply(STAFF_ID)
    assert shown2.params["caption"].startswith(f"🐕 Dog {second_code} ")
    await bot.press(STAFF_ID, shown2, bot.buttons(shown2)["Not a dog"])
    assert "Nothing is waiting" in bot.last_reply(STAFF_ID).params["text"]
    labels = rows(bot.container, Label)
    assert [(label.photo_id, label.breed) for label in labels] == [
        (first.photo.id, SKIP),
        (second.id, "not_a_dog"),
    ]

    await bot.send_text(STAFF_ID, "/review")  # the skipped one is still waiting
    assert bot.last_reply(STAFF_ID).params["caption"].startswith(f"🐕 Dog {first_code} ")


# --- admin commands --------------------------------------------------------------------------------
async def test_status_export_stats_breeds(bot, dog_photos) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    await bot.send_text(STAFF_ID, "/status")
    status = bot.last_reply(STAFF_ID).params["text"]
    assert (
        "Model: the starting model" in status
        and "2 today, 2 in total" in status
        and "Waiting for a label: 1" in status
    )
    assert "Last retrain: never" in status and "n/a" not in status

    await bot.send_text(ADMIN_ID, "/export")
    export = bot.last_reply(ADMIN_ID)
    assert export.method == "sendDocument"
    (upload,) = export.files.values()
    file_name, content = upload[0], upload[1]
    assert file_name.endswith(".csv")
    table = list(csv.DictReader(io.StringIO(content.decode())))
    assert len(table) == 2 and table[0]["label_source"] == "auto_accepted"

    await bot.send_text(STAFF_ID, "/stats")
    assert "2 photos, 1 without a label" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(STAFF_ID, "/breeds")
    assert "Golden Retriever" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(STAFF_ID, "/breeds labrodor")
    assert "Labrador Retriever" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_text(STAFF_ID, "/breeds shep")
    assert "German Shepherd" in bot.last_reply(STAFF_ID).params["text"]


# --- errors ------------------------------------------------------------------------------------------
async def test_a_failing_handler_apologises_and_tells_admins(bot, monkeypatch, caplog) -> None:
    def broken():
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.catalog.reporting, "status", broken)
    await bot.send_text(STAFF_ID, "/status")
    assert "something went wrong" in bot.last_reply(STAFF_ID).params["text"]
    alert = bot.last_reply(ADMIN_ID).params["text"]
    assert "RuntimeError" in alert and f"user {STAFF_ID}" in alert and "fire" not in alert
    assert "error while handling a text from user" in caplog.text
    assert [type(e) for e in bot.errors] == [RuntimeError]
    bot.errors.clear()


async def test_a_user_who_blocked_the_bot_is_not_an_error(bot, caplog) -> None:
    bot.request.failures[("sendMessage", STAFF_ID)] = (403, "Forbidden: bot was blocked by the user")
    with caplog.at_level("INFO", logger="bot.errors"):
        await bot.send_text(STAFF_ID, "/start")
    assert "blocked the bot" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert bot.replies(ADMIN_ID) == [], "admins are not bothered"
    bot.errors.clear()  # the recording handler saw the Forbidden too


@pytest.mark.parametrize("shared", [False, True], ids=["in_memory", "in_the_database"])
async def test_one_account_cannot_flood_the_classifier(bot, dog_photos, shared) -> None:
    from bot.throttle import PerUserLimit
    from dogbot.core.limits import SharedPerUserLimit

    services = bot.app.bot_data["services"]
    services.photo_limit = SharedPerUserLimit(bot.container.engine, 1, 60) if shared else PerUserLimit(1, 60)
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    assert "wait a moment" in bot.last_reply(STAFF_ID).params["text"]
    await bot.send_photo(STAFF2_ID, dog_photos["unsure"])  # others are not affected
    assert "not sure" in bot.last_reply(STAFF2_ID).params["text"]
    assert len(rows(bot.container, Photo)) == 2


async def test_buttons_still_work_after_a_restart(bot, dog_photos) -> None:
    """Everything a button needs is in its data and the database: a new process can act on it."""
    from telegram import Update

    from bot.app import build_application

    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)
    restarted = build_application(bot.container, request=bot.request)
    async with restarted:
        await restarted.start()
        query = {
            "id": "after-restart",
            "from": {"id": STAFF_ID, "is_bot": False, "first_name": "Staff"},
            "chat_instance": "ci",
            "message": bot.message_of(reply),
            "data": bot.buttons(reply)["Mixed breed"],
        }
        await restarted.process_update(
            Update.de_json({"update_id": 9999, "callback_query": query}, restarted.bot)
        )
        await bot.drain()
        await restarted.stop()
        await restarted.bot_data["services"].batcher.stop()
    assert [(label.breed, label.user_id) for label in rows(bot.container, Label)] == [(MIXED_BREED, STAFF_ID)]
    assert bot.answers()[-1].params["text"] == "Saved: Mixed breed"


# --- storage that refuses writes ---------------------------------------------------------------------
async def test_a_read_only_photo_folder_is_named_to_staff_and_admins(bot, dog_photos, monkeypatch) -> None:
    def read_only(data):
        raise OSError(errno.EROFS, "Read-only file system", str(bot.catalog.intake.photos.root))

    monkeypatch.setattr(bot.catalog.intake.photos, "put", read_only)
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    answer = bot.last_reply(STAFF_ID).params["text"]
    assert "not allowed to write to its storage" in answer and "try again" not in answer, answer
    alert = bot.last_reply(ADMIN_ID).params["text"]
    assert "writable" in alert and "Read-only file system" not in alert, alert
    assert rows(bot.container, Photo) == []
    assert [type(e) for e in bot.errors] == [OSError]
    bot.errors.clear()


async def test_a_label_on_a_full_disk_is_named_to_staff_and_admins(bot, dog_photos, monkeypatch) -> None:
    import sqlite3

    import sqlalchemy

    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    reply = bot.last_reply(STAFF_ID)

    def full(*args, **kwargs):  # what SQLAlchemy raises when SQLite cannot grow the file
        raise sqlalchemy.exc.OperationalError(
            "INSERT INTO label ...", {}, sqlite3.OperationalError("database or disk is full")
        )

    monkeypatch.setattr(bot.catalog.labelling, "record_label", full)
    await bot.press(STAFF_ID, reply, bot.buttons(reply)["Mixed breed"])
    toast = bot.answers()[-1].params
    assert toast["show_alert"] and "storage is full" in toast["text"] and len(toast["text"]) <= 200, toast
    assert "Free some disk space" in bot.last_reply(ADMIN_ID).params["text"]
    assert rows(bot.container, Label) == []
    bot.errors.clear()


async def test_language_choice_is_kept_per_person(bot, dog_photos) -> None:
    """/language: the choice is stored (every replica reads it) and beats the shelter's default."""
    from storage.tables import LanguageChoice

    await bot.send_text(STAFF_ID, "/language")
    menu = bot.last_reply(STAFF_ID)
    assert "English" in menu.params["text"] and set(bot.buttons(menu)) == {"English", "Español"}
    await bot.press(STAFF_ID, menu, bot.buttons(menu)["Español"])
    assert bot.sent("editMessageText")[-1].params["text"] == "A partir de ahora te hablo en español."
    assert [(row.user_id, row.language) for row in rows(bot.container, LanguageChoice)] == [(STAFF_ID, "es")]

    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    question = bot.last_reply(STAFF_ID)
    assert "¿De qué raza es D-" in question.params["text"]
    assert {"Mestizo", "No es un perro", "Otra…", "Omitir"} <= set(bot.buttons(question))
    await bot.send_text(STAFF2_ID, "/help")  # someone else: still the shelter's language
    assert "Staff commands:" in bot.last_reply(STAFF2_ID).params["text"]

    await bot.send_text(STAFF_ID, "/language")
    menu = bot.last_reply(STAFF_ID)
    assert "Te hablo en español" in menu.params["text"]
    await bot.press(STAFF_ID, menu, bot.buttons(menu)["English"])
    await bot.send_text(STAFF_ID, "/help")
    assert "Staff commands:" in bot.last_reply(STAFF_ID).params["text"]


async def test_asm_without_settings_says_it_is_not_set_up(bot) -> None:
    await bot.send_text(ADMIN_ID, "/asm")
    assert bot.last_reply(ADMIN_ID).params["text"].startswith("Animal Shelter Manager is not set up")
