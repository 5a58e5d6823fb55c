"""/errors through the real Application (a recording request, conftest's ``bot``): admins only, and
a staff answer that differs from the model's becomes a line and a chart."""

from __future__ import annotations

from conftest import ADMIN_ID, STAFF_ID


async def test_errors_is_for_admins_and_shows_what_people_corrected(bot, dog_photos) -> None:
    await bot.send_text(STAFF_ID, "/errors")
    assert bot.last_reply(STAFF_ID).params["text"] == "Only admins can do that."
    await bot.send_text(ADMIN_ID, "/errors")
    assert "nothing to learn from yet" in bot.last_reply(ADMIN_ID).params["text"]

    await bot.send_photo(STAFF_ID, dog_photos["unsure"])
    question = bot.last_reply(STAFF_ID)
    said = (
        question.params["text"]
        .split("guesses from all its photos: ")[1]
        .split(",")[1]
        .rsplit(" ", 1)[0]
        .strip()
    )
    await bot.press(STAFF_ID, question, bot.buttons(question)[said])  # the runner-up: the model was wrong

    await bot.send_text(ADMIN_ID, "/errors")
    (chart,) = bot.sent("sendPhoto", chat_id=ADMIN_ID)
    caption = chart.params["caption"]
    assert "people answered otherwise on 1 of 1 photo." in caption
    assert f"people said {said}: 1 time. Now: I ask when under 70 % sure." in caption
