"""Button data: signed, short, parsed in one place; forged or malformed data is refused."""

from __future__ import annotations

import pytest

from bot.callbacks import MAX_BYTES, Action, CallbackCodec, Press, breed_matches, derive_secret

CODEC = CallbackCodec(derive_secret("123:token"))


@pytest.mark.parametrize(
    "press",
    [
        Press(1, Action.LABEL, "golden_retriever"),
        Press(2_147_483_647, Action.LABEL, "american_staffordshire_terrier", review=True),
        Press(7, Action.WRONG),
        Press(7, Action.OTHER, review=True),
        Press(9, Action.IS_DOG),
        Press(3, Action.LABEL, "skip"),
    ],
)
def test_round_trip_within_telegram_limit(press: Press) -> None:
    data = CODEC.encode(press)
    assert len(data.encode()) <= MAX_BYTES
    assert CODEC.decode(data) == press


def test_long_custom_breed_key_is_hashed_and_still_matches() -> None:
    key = "very_long_custom_breed_name_from_a_far_away_shelter_network"
    data = CODEC.encode(Press(12345, Action.LABEL, key))
    press = CODEC.decode(data)
    assert len(data.encode()) <= MAX_BYTES
    assert press is not None and press.arg != key and breed_matches(press.arg, key)
    assert not breed_matches(press.arg, "golden_retriever")


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "garbage",
        "v1:1:l:golden_retriever",  # no tag
        "v1:1:l:golden_retriever:AAAAAAAA",  # wrong tag
        "x" * 65,
    ],
)
def test_malformed_is_refused(data: str | None) -> None:
    assert CODEC.decode(data) is None


def test_tampering_with_any_part_is_refused() -> None:
    data = CODEC.encode(Press(41, Action.LABEL, "beagle"))
    body, _, tag = data.rpartition(":")
    for forged in (body.replace(":41:", ":42:"), body.replace("beagle", "pug"), body.replace(":l:", ":L:")):
        assert CODEC.decode(f"{forged}:{tag}") is None


def test_another_secret_refuses() -> None:
    data = CODEC.encode(Press(1, Action.WRONG))
    assert CallbackCodec(derive_secret("999:other")).decode(data) is None
    assert CallbackCodec(derive_secret("123:token", "configured")).decode(data) is None


def test_secret_is_not_the_token() -> None:
    assert derive_secret("123:token") != b"123:token"
    with pytest.raises(ValueError):
        derive_secret("")
