"""Web API tokens in the database: stored hashed, found by hash, revoked for good, names checked."""

from __future__ import annotations

import pytest

from dogbot.core.api_clients import ApiClients, ClientError, digest
from storage.db import make_engine


@pytest.fixture
def clients(database_url):
    engine = make_engine(database_url)
    yield ApiClients(engine)
    engine.dispose()


def test_a_token_is_stored_hashed_and_acts_as_one_client(clients) -> None:
    first, second = clients.create("intake-app", by=1001), clients.create("kiosk")
    assert first != second and first.startswith("dogbot_") and len(first) > 40
    one, two = clients.authenticate(first), clients.authenticate(second)
    assert (one.name, two.name) == ("intake-app", "kiosk") and one.user_id < 0 and one.user_id != two.user_id
    assert clients.authenticate(first + "x") is None and clients.authenticate("") is None
    assert digest(first) != first

    clients.revoke("intake-app")
    assert clients.authenticate(first) is None and clients.authenticate(second) is not None
    clients.revoke("intake-app")  # twice is fine
    listed = {info.name: info.revoked_at is not None for info in clients.list()}
    assert listed == {"intake-app": True, "kiosk": False}


def test_names_are_checked(clients) -> None:
    clients.create("kiosk")
    for bad in ("", "two words", "x" * 65, "-dash-first"):
        with pytest.raises(ClientError, match="letters, digits"):
            clients.create(bad)
    with pytest.raises(ClientError, match="exists already"):
        clients.create("kiosk")
    with pytest.raises(ClientError, match="no token is named"):
        clients.revoke("nobody")
    clients.discard("kiosk")
    assert clients.list() == [] and clients.create("kiosk")
