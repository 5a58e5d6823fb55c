"""End to end, dogs not photos: `dogbot run` against the fake Telegram server over real HTTP.

Albums, replies to a dog's card, captions, ten dogs in a row, the mixed-breed two taps, a near
duplicate of an earlier dog (both answers), and strangers, checked in the database the bot wrote.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from fake_telegram import FakeTelegram, Sent
from PIL import Image
from sqlmodel import select

from storage.db import make_engine
from storage.db import session as open_session
from storage.tables import Dog, Label, Photo
from storage.vocabulary import MIXED_BREED

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

STAFF, STRANGER = 2002, 6666
DOGBOT = Path(sys.executable).parent / "dogbot"
START_TIMEOUT = 90.0
ANSWER_TIMEOUT = 60.0
CARD = "🐕 Dog "
SETTLE_S = 1.0


@dataclass
class RunningBot:
    server: FakeTelegram
    data_dir: Path

    def rows(self, table) -> list:
        engine = make_engine(f"sqlite:///{self.data_dir / 'dogbot.db'}")
        try:
            with open_session(engine) as session:
                return list(session.exec(select(table).order_by(table.id)))
        finally:
            engine.dispose()

    async def card(self, contains: str, *, since: int) -> Sent:
        return await self.server.wait_for(
            lambda s: s.chat_id == STAFF and s.text.startswith(CARD) and contains in s.text,
            timeout=ANSWER_TIMEOUT,
            since=since,
        )

    def cards_since(self, since: int) -> list[Sent]:
        return [
            s
            for s in self.server.sent[since:]
            if s.chat_id == STAFF and s.method == "sendMessage" and s.text.startswith(CARD)
        ]

    async def press(self, message: Sent, label: str) -> None:
        pressed = await self.server.press_button(STAFF, message, self.server.find_button(message, label))
        await self.server.wait_for_answer(pressed, timeout=ANSWER_TIMEOUT)

    def current(self, message: Sent) -> Sent:
        """The message as it is now (after the bot's edits)."""
        return [s for s in self.server.sent if s.message_id == message.message_id and s.chat_id == STAFF][-1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory) -> AsyncIterator[RunningBot]:
    home = tmp_path_factory.mktemp("bot-dogs")
    log_path = home / "bot.log"
    async with FakeTelegram() as server:
        env = {
            **os.environ,
            **server.bot_env,
            "DOGBOT_DATA_DIR": str(home / "data"),
            "DOGBOT_ADMIN_IDS": "1001",
            "DOGBOT_STAFF_IDS": str(STAFF),
            "DOGBOT_TORCH_THREADS": "1",
            "DOGBOT_ALBUM_SETTLE_S": str(SETTLE_S),
        }
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(DOGBOT), "-v", "run", env=env, cwd=home, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        try:
            await server.wait_for_call(
                "getUpdates", lambda call: call.status in (None, 200), timeout=START_TIMEOUT
            )
            yield RunningBot(server, home / "data")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    log_text = log_path.read_text(errors="replace")
    assert process.returncode == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]


@pytest.fixture(scope="module")
def photos(shared_manifest, eval_data_dir) -> dict[str, list[bytes]]:
    """Real JPEG dog photos by breed (not ImageNet images first)."""
    by_breed: dict[str, list[bytes]] = {}
    rows = [r for r in shared_manifest("manifest.csv") if r["format"] == "JPEG" and not r["quirks"]]
    rows.sort(key=lambda r: r["imagenet_overlap"] != "no")
    for row in rows:
        if row["breed"] != "not_a_dog":
            by_breed.setdefault(row["breed"], []).append((eval_data_dir / row["path"]).read_bytes())
    return by_breed


def reshoot(data: bytes, scale: float) -> bytes:
    """The same photo taken again: smaller and re-encoded (a near duplicate, not the same bytes)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


async def test_an_album_is_one_dog_a_reply_joins_it_and_a_caption_names_it(
    running: RunningBot, photos
) -> None:
    server = running.server
    album = photos["golden retriever"][:4]
    since = len(server.sent)
    for i, data in enumerate(album[:3]):
        await server.send_photo(STAFF, data, caption="Max" if i == 1 else None, media_group_id="album-1")
    card = await running.card("(3 photos)", since=since)
    await asyncio.sleep(SETTLE_S * 3)  # anything else the album might (wrongly) cause has arrived
    assert running.cards_since(since) == [card], "one card, one question for the whole album"
    assert "Max" in card.text.splitlines()[0]
    dogs = running.rows(Dog)
    assert [(d.name, d.sender_id) for d in dogs] == [("Max", STAFF)]
    assert [p.dog_id for p in running.rows(Photo)] == [dogs[0].id] * 3

    since = len(server.sent)
    await server.send_photo(STAFF, album[3], reply_to=card)
    updated = await server.wait_for(
        lambda s: (
            s.method == "editMessageText" and s.message_id == card.message_id and "(4 photos)" in s.text
        ),
        timeout=ANSWER_TIMEOUT,
        since=since,
    )
    assert dogs[0].code in updated.text and running.cards_since(since) == []
    assert [p.dog_id for p in running.rows(Photo)] == [dogs[0].id] * 4

    # Mixed breed: primary and secondary in two taps, recorded for every photo of the dog.
    current = running.current(card)
    if "Mixed breed" not in [text for text, _ in current.buttons]:
        await running.press(current, "Wrong?")
        await server.wait_for_call("editMessageReplyMarkup", lambda c: c.ok, timeout=ANSWER_TIMEOUT)
        current = running.current(card)
    await running.press(current, "Mixed breed")
    first = await server.wait_for(lambda s: "look most like" in s.text, timeout=ANSWER_TIMEOUT, since=since)
    primary = next(text for text, _ in first.buttons if text != "Unknown mix")
    await running.press(first, primary)
    second = await server.wait_for(
        lambda s: "And the other breed" in s.text, timeout=ANSWER_TIMEOUT, since=since
    )
    secondary = next(text for text, _ in second.buttons if not text.startswith("Just"))
    await running.press(second, secondary)
    done = await server.wait_for(
        lambda s: s.text.startswith(CARD) and f"{primary} / {secondary} mix" in s.text,
        timeout=ANSWER_TIMEOUT,
        since=since,
    )
    assert f"Registered as {dogs[0].code}: {primary} / {secondary} mix" in done.text
    mixes = [label for label in running.rows(Label) if label.user_id == STAFF and label.secondary_breed]
    assert {label.photo_id for label in mixes} == {p.id for p in running.rows(Photo)}
    assert {label.breed for label in mixes} == {MIXED_BREED}

    await running.press(running.current(card), "♂ Male")
    await running.press(running.current(card), "Puppy")
    assert [(d.sex, d.age_group) for d in running.rows(Dog)] == [("male", "puppy")]


async def test_ten_dogs_sent_one_after_another_give_ten_cards(running: RunningBot, photos) -> None:
    server = running.server
    breeds = [b for b in photos if b not in ("golden retriever", "beagle")][:10]
    before = {d.id for d in running.rows(Dog)}
    since = len(server.sent)
    for breed in breeds:
        await server.send_photo(STAFF, photos[breed][0])
    await server.wait_for(
        lambda s: len(running.cards_since(since)) >= 10, timeout=ANSWER_TIMEOUT * 3, since=since
    )
    await asyncio.sleep(SETTLE_S * 2)
    assert len(running.cards_since(since)) == 10
    new = [d for d in running.rows(Dog) if d.id not in before]
    assert len(new) == 10 and len({d.code for d in new}) == 10


async def test_a_near_duplicate_asks_same_dog_and_both_answers_do_what_they_say(
    running: RunningBot, photos
) -> None:
    server = running.server
    original = photos["beagle"][0]
    since = len(server.sent)
    await server.send_photo(STAFF, original)
    first = await running.card("", since=since)
    first_dog = running.rows(Photo)[-1].dog_id

    since = len(server.sent)
    await server.send_photo(STAFF, reshoot(original, 0.9))
    asked = await running.card("Same dog as", since=since)
    code = next(d.code for d in running.rows(Dog) if d.id == first_dog)
    assert f"Same dog as {code}" in asked.text and first.message_id != asked.message_id
    await running.press(asked, "Same dog")
    merged = await server.wait_for(
        lambda s: s.message_id == asked.message_id and s.method == "editMessageText",
        timeout=ANSWER_TIMEOUT,
        since=since,
    )
    assert merged.text.startswith(f"{CARD}{code}") and "(2 photos)" in merged.text
    assert running.rows(Photo)[-1].dog_id == first_dog
    assert next(d for d in running.rows(Dog) if d.code == asked.text.split()[2]).merged_into == first_dog

    since = len(server.sent)
    await server.send_photo(STAFF, reshoot(original, 0.8))
    asked = await running.card("Same dog as", since=since)
    await running.press(asked, "New dog")
    kept = await server.wait_for(
        lambda s: s.message_id == asked.message_id and s.method == "editMessageText",
        timeout=ANSWER_TIMEOUT,
        since=since,
    )
    assert "Same dog" not in kept.text and "(1 photo)" in kept.text
    last = running.rows(Photo)[-1]
    assert (
        last.dog_id != first_dog
        and next(d for d in running.rows(Dog) if d.id == last.dog_id).merged_into is None
    )


async def test_a_strangers_album_stores_nothing(running: RunningBot, photos) -> None:
    server = running.server
    photos_before, dogs_before = len(running.rows(Photo)), len(running.rows(Dog))
    downloads = len(server.downloads)
    since = len(server.sent)
    for data in photos["pug"][:2]:
        await server.send_photo(STRANGER, data, media_group_id="strange")
    await server.wait_for(lambda s: s.chat_id == STRANGER, timeout=ANSWER_TIMEOUT, since=since)
    await asyncio.sleep(SETTLE_S * 2)
    assert len(server.downloads) == downloads
    assert (len(running.rows(Photo)), len(running.rows(Dog))) == (photos_before, dogs_before)


async def test_dog_shows_a_card_with_its_best_photo_and_dogs_lists_the_arrivals(running: RunningBot) -> None:
    server = running.server
    max_dog = next(d for d in running.rows(Dog) if d.name == "Max")
    since = len(server.sent)
    await server.send_text(STAFF, f"/dog {max_dog.code.lower()}")
    shown = await server.wait_for(
        lambda s: s.chat_id == STAFF and s.method == "sendPhoto", timeout=ANSWER_TIMEOUT, since=since
    )
    assert shown.text.startswith(f"{CARD}{max_dog.code} Max (4 photos)") and shown.file_data
    assert "♂ Male" in [text for text, _ in shown.buttons]
    await running.press(shown, "♀ Female")  # a press on the photo card edits its caption
    await server.wait_for(lambda s: s.method == "editMessageCaption", timeout=ANSWER_TIMEOUT, since=since)
    assert next(d for d in running.rows(Dog) if d.id == max_dog.id).sex == "female"

    since = len(server.sent)
    await server.send_text(STAFF, "/dogs")
    listing = await server.wait_for(
        lambda s: s.chat_id == STAFF and "came in lately" in s.text, timeout=ANSWER_TIMEOUT, since=since
    )
    assert f"{max_dog.code} Max: " in listing.text and "4 photos" in listing.text
    await server.send_text(STAFF, "/dog D-1999-0001")
    await server.wait_for(
        lambda s: "I have no dog D-1999-0001" in s.text, timeout=ANSWER_TIMEOUT, since=since
    )
