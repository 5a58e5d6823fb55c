"""/apitoken NAME: an admin gets a web API token in a private message; nobody else gets one."""

from __future__ import annotations

import pytest
from conftest import ADMIN_ID, STAFF_ID
from sqlmodel import select

from dogbot.core.api_clients import ApiClients
from storage.db import session as open_session
from storage.tables import ApiToken

pytestmark = pytest.mark.slow


def tokens(container) -> list[ApiToken]:
    with open_session(container.engine) as session:
        return list(session.exec(select(ApiToken)))


async def test_an_admin_gets_a_working_token_privately(bot) -> None:
    await bot.send_text(ADMIN_ID, "/apitoken intake-app")
    text = bot.last_reply(ADMIN_ID).params["text"]
    token = text.splitlines()[-1]
    assert "intake-app" in text and "only this once" in text and token.startswith("dogbot_")
    client = ApiClients(bot.container.engine).authenticate(token)
    assert client is not None and client.name == "intake-app" and client.user_id < 0
    (row,) = tokens(bot.container)
    assert token not in (row.token_sha256, row.name) and row.created_by == ADMIN_ID

    await bot.send_text(ADMIN_ID, "/apitoken intake-app")
    assert "exists already" in bot.last_reply(ADMIN_ID).params["text"]
    await bot.send_text(ADMIN_ID, "/apitoken")
    assert bot.last_reply(ADMIN_ID).params["text"].startswith("Usage: /apitoken NAME")


async def test_staff_get_no_token(bot) -> None:
    await bot.send_text(STAFF_ID, "/apitoken kiosk")
    assert bot.last_reply(STAFF_ID).params["text"] == "Only admins can do that."
    assert tokens(bot.container) == []


async def test_a_token_that_could_not_be_delivered_is_not_kept(bot) -> None:
    bot.request.failures[("sendMessage", ADMIN_ID)] = (
        403,
        "Forbidden: bot can't initiate conversation with a user",
    )
    await bot.send_text(ADMIN_ID, "/apitoken kiosk")
    assert "none was kept" in bot.last_reply(ADMIN_ID).params["text"]
    assert tokens(bot.container) == []
