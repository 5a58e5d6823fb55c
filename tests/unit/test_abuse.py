"""Bad input and abuse, property-based: whatever arrives, a clear answer, no crash, no state change.

Hypothesis generates the input; it goes through the real PTB stack (the recording request of the
handler tests, real ``Update`` objects, the real model and SQLite). Each example counts the rows
of every catalog table before and after, and the harness fails the test if any handler raised.
Also here: the per-user photo limit (a property of ``PerUserLimit`` and a flood through the bot),
and secrets (the bot token, the webhook and callback secrets) kept out of logs and exports.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import replace

import pytest
from conftest import ADMIN_ID, BOT_TOKEN, STAFF_ID, STRANGER_ID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func
from sqlmodel import select

from bot.app import webhook_secret
from bot.callbacks import Action, Press
from bot.errors import install_redaction
from bot.throttle import PerUserLimit
from storage.db import session as open_session
from storage.tables import CustomBreed, Label, Member, Photo, Prediction

pytestmark = pytest.mark.slow

TABLES = (Photo, Prediction, Label, CustomBreed, Member)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs the model on one thread (see tests/conftest.py)."""


def counts(bot) -> dict[str, int]:
    with open_session(bot.container.engine) as session:
        return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_sendable(bot, since: int) -> None:
    """What the bot sent fits Telegram's limits (4,096 UTF-16 units a message, 1,024 a caption)."""
    for call in bot.request.calls[since:]:
        if "text" in call.params and call.method in ("sendMessage", "editMessageText"):
            assert 0 < utf16_len(call.params["text"]) <= 4096, call.params["text"][:200]
        if call.params.get("caption") is not None:
            assert utf16_len(call.params["caption"]) <= 1024


def jpeg(size=(64, 48), color=(90, 120, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels, with a few bytes of image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_header_bomb(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF marker is rewritten to claim ``width`` x ``height``."""
    data = bytearray(jpeg((16, 16)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_header_bomb(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (4, 4)).save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    struct.pack_into("<HH", data, 6, width, height)  # the logical screen
    return bytes(data)


@st.composite
def corrupted_images(draw) -> bytes:
    """A real small JPEG or PNG, cut short or with bytes overwritten."""
    buffer = io.BytesIO()
    fmt = draw(st.sampled_from(["JPEG", "PNG"]))
    Image.new("RGB", (32, 24), tuple(draw(st.integers(0, 255)) for _ in range(3))).save(buffer, fmt)
    data = bytearray(buffer.getvalue())
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(1, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


bombs = st.builds(
    lambda make, w, h: make(w, h),
    st.sampled_from([png_header_bomb, jpeg_header_bomb, gif_header_bomb]),
    st.integers(8_000, 65_535),
    st.integers(8_000, 65_535),
)


# --- files ---------------------------------------------------------------------------------------
@EXAMPLES
@given(data=st.one_of(st.binary(max_size=4096), corrupted_images(), bombs), as_document=st.booleans())
async def test_malformed_random_and_bomb_files_get_a_clear_answer(
    bot, data: bytes, as_document: bool
) -> None:
    before, since = counts(bot), len(bot.request.calls)
    if as_document:
        await bot.send_document(STAFF_ID, data, "photo.jpg", "image/jpeg")
    else:
        await bot.send_photo(STAFF_ID, data)
    replies = bot.replies(STAFF_ID)
    assert replies and bot.request.calls.index(replies[-1]) >= since, "every file gets an answer"
    text = replies[-1].params["text"]
    after = counts(bot)
    if "Nothing was saved" in text or "couldn't" in text:
        assert after == before, text
    else:  # the corruption left a decodable picture: it is a photo, stored once and answered
        # Stored: its dog's card, or (the model sure it shows no dog) the answer without a dog code.
        assert text.startswith("🐕 Dog ") or "look like a dog" in text, text
        assert after["Photo"] - before["Photo"] in (0, 1)
    assert_sendable(bot, since)
    assert bot.errors == []


async def test_decompression_bombs_are_refused_before_decoding(bot) -> None:
    for make in (png_header_bomb, jpeg_header_bomb, gif_header_bomb):
        await bot.send_document(STAFF_ID, make(60_000, 60_000), "big.png", "image/png")
        text = bot.last_reply(STAFF_ID).params["text"]
        assert "Nothing was saved" in text and ("too large" in text or "pixels" in text), text
    assert counts(bot)["Photo"] == 0


# --- buttons --------------------------------------------------------------------------------------
@pytest.fixture
async def question(bot):
    """A photo the model was asked about, as a staff member saw it, with its real buttons."""
    catalog = bot.catalog
    # Any picture: "a dog, but which?"
    catalog.intake.rules = replace(catalog.intake.rules, dog_threshold=0.0, auto_accept_threshold=1.1)
    # The card answers for the whole dog, by the dog's own rules: the same "a dog, but which?"
    catalog.dogs.rules = replace(catalog.dogs.rules, dog_threshold=0.0, auto_accept_threshold=1.1)
    await bot.send_photo(STAFF_ID, jpeg((80, 60), (200, 180, 150)))
    reply = bot.last_reply(STAFF_ID)
    assert bot.buttons(reply), reply.params
    return reply


@st.composite
def forged_data(draw, real: list[str]) -> str:
    """Random text, or a real button's data with a field changed, cut, or extended."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.text(min_size=1, max_size=64))
    base = draw(st.sampled_from(real))
    if choice == 1:
        body, _, tag = base.rpartition(":")
        parts = body.split(":")
        i = draw(st.integers(0, len(parts) - 1))
        parts[i] = draw(
            st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzLWOD#_-", min_size=0, max_size=12)
        )
        return ":".join(parts) + ":" + tag
    if choice == 2:
        return base[: draw(st.integers(1, len(base) - 1))]
    return (base + draw(st.text(min_size=1, max_size=16)))[:64]


@EXAMPLES
@given(data=st.data())
async def test_forged_button_data_is_refused_and_changes_nothing(bot, question, data) -> None:
    real = list(bot.buttons(question).values())
    forged = data.draw(forged_data(real))
    if forged in real:
        return
    before, answers = counts(bot), len(bot.answers())
    await bot.press(data.draw(st.sampled_from([STAFF_ID, ADMIN_ID, STRANGER_ID])), question, forged)
    assert len(bot.answers()) == answers + 1, "every press is answered"
    answer = bot.answers()[-1].params
    assert answer.get("show_alert") and "can't use that button" in answer["text"]
    assert counts(bot) == before
    assert bot.errors == []


async def test_replayed_presses_record_once_and_strangers_change_nothing(bot, question) -> None:
    mixed = bot.buttons(question)["Mixed breed"]
    for _ in range(3):
        await bot.press(STAFF_ID, question, mixed)
    await bot.press(STRANGER_ID, question, mixed)
    other = bot.app.bot_data["services"].codec.encode(Press(10**9, Action.LABEL, "mixed_breed"))
    await bot.press(STAFF_ID, question, other)  # correctly signed, but no such question
    texts = [a.params.get("text") for a in bot.answers()]
    assert texts[:3] == ["Saved: Mixed breed", "Already saved.", "Already saved."]
    assert "Only shelter staff" in texts[3] and "out of date" in texts[4]
    assert [(lb.breed, lb.user_id) for lb in _rows(bot, Label) if lb.user_id] == [("mixed_breed", STAFF_ID)]


def _rows(bot, table) -> list:
    with open_session(bot.container.engine) as session:
        return list(session.exec(select(table)))


# --- breed names -----------------------------------------------------------------------------------
odd_text = st.one_of(
    st.text(min_size=1, max_size=300),
    st.text(alphabet=st.characters(categories=["So", "Mn", "Cf", "Zs", "Lo"]), min_size=1, max_size=200),
    st.sampled_from(
        ["a" * 5000, "🐕" * 2000, "\u202eDog", "Shiba\u200bInu", "<b>Pug</b>", "Pug\nDrop table"]
    ),
)


@EXAMPLES
@given(name=odd_text)
async def test_addbreed_with_odd_names(bot, name: str) -> None:
    before, since = counts(bot), len(bot.request.calls)
    await bot.send_text(ADMIN_ID, f"/addbreed {name}"[:4096])
    reply = bot.last_reply(ADMIN_ID).params["text"]
    after = counts(bot)
    if reply.startswith("Added"):
        assert after == {**before, "CustomBreed": before["CustomBreed"] + 1}
        added = _rows(bot, CustomBreed)[-1]
        assert 2 <= len(added.key) <= 64 and len(added.display_name) <= 64
    else:
        assert after == before, reply
    assert_sendable(bot, since)
    assert bot.errors == []


@EXAMPLES
@given(typed=odd_text)
async def test_other_then_odd_typed_names(bot, question, typed: str) -> None:
    await bot.press(STAFF_ID, question, bot.buttons(question)["Other…"])
    before, since = counts(bot), len(bot.request.calls)
    await bot.send_text(STAFF_ID, typed[:4096])
    reply = bot.last_reply(STAFF_ID).params["text"]
    assert "which breed did you mean" in reply or "don't know a breed" in reply or "Send me a photo" in reply
    await bot.send_text(STAFF_ID, f"/breeds {typed}"[:4096])
    assert counts(bot) == before
    assert_sendable(bot, since)
    assert bot.errors == []


# --- who may do what --------------------------------------------------------------------------------
ADMIN_ONLY = ["export", "conflicts", "addbreed", "addstaff", "removestaff", "staff", "retrain", "drift",
              "models", "rollback", "report"]  # fmt: skip
COMMANDS = ["start", "help", "status", "stats", "breeds", "review", "nope", *ADMIN_ONLY]


@EXAMPLES
@given(command=st.sampled_from(COMMANDS), args=st.text(max_size=40), as_staff=st.booleans())
async def test_commands_from_strangers_and_staff(bot, command: str, args: str, as_staff: bool) -> None:
    user = STAFF_ID if as_staff else STRANGER_ID
    before, replies = counts(bot), len(bot.replies(user))
    await bot.send_text(user, f"/{command} {args}".strip())
    new = bot.replies(user)[replies:]
    if as_staff and command in ADMIN_ONLY:
        assert [r.params.get("text") for r in new] == ["Only admins can do that."]
    elif not as_staff:
        assert len(new) <= 1 and all("only for the shelter's staff" in r.params["text"] for r in new)
        assert not bot.sent("sendDocument") and not bot.sent("sendPhoto")
    assert counts(bot) == before
    assert bot.errors == []


# --- the per-user limit ------------------------------------------------------------------------------
@given(
    limit=st.integers(1, 10),
    window=st.integers(1, 120),
    events=st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(0, 30)), max_size=200),
)
def test_per_user_limit_never_allows_more_than_limit_in_any_window(limit, window, events) -> None:
    now = [0]  # whole seconds: the property, not float rounding at the window's edge
    throttle = PerUserLimit(limit, window, clock=lambda: now[0])
    allowed: dict[int, list[float]] = {}
    for user, step in events:
        now[0] += step
        if throttle.allow(user):
            allowed.setdefault(user, []).append(now[0])
    for times in allowed.values():
        for i, start in enumerate(times):
            assert sum(1 for t in times[i:] if t - start < window) <= limit
    # Nobody is starved: after a quiet window everyone may send again.
    now[0] += window
    assert all(throttle.allow(user) for user in (1, 2, 3))


async def test_a_flood_from_one_account_is_cut_off_at_the_limit(bot) -> None:
    limit = bot.app.bot_data["services"].photo_limit.limit
    assert limit == 60, "the default limit: 60 photos a minute per person"
    bot.app.bot_data["services"].photo_limit = PerUserLimit(5, 60)
    for i in range(8):
        await bot.send_photo(STAFF_ID, jpeg((40, 30), (i * 30, 50, 90)))
    texts = [r.params["text"] for r in bot.replies(STAFF_ID)]
    assert sum("wait a moment" in t for t in texts) == 3
    assert counts(bot)["Photo"] == 5
    assert len(bot.sent("getFile")) == 5, "refused photos are not even downloaded"


# --- secrets --------------------------------------------------------------------------------------
async def test_secrets_never_reach_logs_or_exports(bot, monkeypatch, caplog) -> None:
    secret = webhook_secret(BOT_TOKEN, "hook-secret-for-tests")
    callback_secret = "callback-secret-for-tests"
    root = logging.getLogger()
    handlers = list(root.handlers)
    install_redaction([BOT_TOKEN, secret, callback_secret])
    try:

        def broken():
            raise RuntimeError(f"GET https://api.telegram.org/bot{BOT_TOKEN}/getMe failed ({secret})")

        monkeypatch.setattr(bot.catalog.reporting, "status", broken)
        with caplog.at_level(logging.INFO):
            await bot.send_text(STAFF_ID, "/status")
            logging.getLogger("httpx").warning(
                "POST %s/sendMessage", f"https://api.telegram.org/bot{BOT_TOKEN}"
            )
        assert "RuntimeError" in caplog.text
        logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
        for value in (BOT_TOKEN, BOT_TOKEN.split(":")[1], secret, callback_secret):
            assert value not in logged
        bot.errors.clear()
    finally:
        for handler in handlers:
            for f in [f for f in handler.filters if type(f).__name__ == "Redact"]:
                handler.removeFilter(f)

    await bot.send_photo(STAFF_ID, jpeg())
    await bot.send_text(ADMIN_ID, "/export")
    (upload,) = bot.last_reply(ADMIN_ID).files.values()
    exported = upload[1].decode()
    alerts = " ".join(r.params.get("text") or r.params.get("caption") or "" for r in bot.replies(ADMIN_ID))
    for value in (BOT_TOKEN, BOT_TOKEN.split(":")[1], secret):
        assert value not in exported and value not in alerts
