"""/asm and the dog card's Animal Shelter Manager line, through the real bot (recording request) and a
double of ASM's service over real HTTP (tests/e2e/fake_asm.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ADMIN_ID, STAFF_ID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from fake_asm import FakeAsm  # noqa: E402


@pytest.fixture
def fake_asm():
    fake = FakeAsm(username="dogbot", password="secret").start()
    yield fake
    fake.stop()


@pytest.fixture
def bot_settings(fake_asm) -> dict:
    """The handler tests' container with the shelter's ASM set up (conftest's bot_container)."""
    return {
        "asm_url": fake_asm.url,
        "asm_username": "dogbot",
        "asm_password": "secret",
        "asm_quiet_minutes": 10,
    }


async def test_admin_sees_what_waits_and_sends_it_now(bot, dog_photos, fake_asm) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["sure"])  # confident: settled at once
    code = bot.catalog.dogs.recent(1)[0].code
    await bot.send_text(STAFF_ID, "/asm")
    assert bot.last_reply(STAFF_ID).params["text"] == "Only admins can do that."

    await bot.send_text(ADMIN_ID, "/asm")
    listing = bot.last_reply(ADMIN_ID)
    assert "0 dogs are in Animal Shelter Manager." in listing.params["text"]
    assert f"• {code}: not sent yet" in listing.params["text"]
    assert list(bot.buttons(listing)) == ["📤 Send now"]

    await bot.press(ADMIN_ID, listing, bot.buttons(listing)["📤 Send now"])
    await bot.drain()
    result = bot.last_reply(ADMIN_ID).params["text"]
    assert f"Sent: {code}." in result and "1 dog is in Animal Shelter Manager." in result
    animal = fake_asm.animals[code]
    assert (animal.species, animal.animal_type, len(animal.images)) == ("Dog", "D (Dog)", 1)

    await bot.send_text(STAFF_ID, f"/dog {code}")
    card = bot.last_reply(STAFF_ID)  # the dog's photo, with its card as the caption
    assert "📋 In Animal Shelter Manager since" in card.params.get("caption", card.params.get("text", ""))


async def test_a_staff_press_on_send_now_sends_nothing(bot, dog_photos, fake_asm) -> None:
    await bot.send_photo(STAFF_ID, dog_photos["sure"])
    await bot.send_text(ADMIN_ID, "/asm")
    listing = bot.last_reply(ADMIN_ID)
    await bot.press(STAFF_ID, listing, bot.buttons(listing)["📤 Send now"])
    await bot.drain()
    assert not fake_asm.animals and fake_asm.imports == 0
    assert bot.answers()[-1].params.get("show_alert") is True
