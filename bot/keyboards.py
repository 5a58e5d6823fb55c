"""Inline keyboards, as pure functions of a prediction id and the choices to offer."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callbacks import Action, CallbackCodec, Press
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, SKIP

Choice = tuple[str, str]  # (breed key, what the button says)


def _button(codec: CallbackCodec, text: str, press: Press) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=codec.encode(press))


def question(
    codec: CallbackCodec, prediction_id: int, breeds: Sequence[Choice], *, review: bool = False
) -> InlineKeyboardMarkup:
    """One button per likely breed, then Mixed breed / Not a dog, then Other… / Skip."""

    def press(action: Action, arg: str = "") -> Press:
        return Press(prediction_id, action, arg, review=review)

    rows = [[_button(codec, text, press(Action.LABEL, key))] for key, text in breeds]
    rows.append(
        [
            _button(codec, texts.button("mixed"), press(Action.LABEL, MIXED_BREED)),
            _button(codec, texts.button("not_a_dog"), press(Action.LABEL, NOT_A_DOG)),
        ]
    )
    rows.append(
        [
            _button(codec, texts.button("other"), press(Action.OTHER)),
            _button(codec, texts.button("skip"), press(Action.LABEL, SKIP)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def wrong(codec: CallbackCodec, prediction_id: int) -> InlineKeyboardMarkup:
    """Under an accepted answer: reopen the question."""
    return InlineKeyboardMarkup([[_button(codec, texts.button("wrong"), Press(prediction_id, Action.WRONG))]])


def not_a_dog(codec: CallbackCodec, prediction_id: int) -> InlineKeyboardMarkup:
    """Under "this does not look like a dog": let staff overrule the model."""
    return InlineKeyboardMarkup(
        [[_button(codec, texts.button("is_dog"), Press(prediction_id, Action.IS_DOG))]]
    )


def matches(codec: CallbackCodec, prediction_id: int, breeds: Sequence[Choice]) -> InlineKeyboardMarkup:
    """Breeds matching what someone typed after "Other…", plus a way out."""
    rows = [[_button(codec, text, Press(prediction_id, Action.LABEL, key))] for key, text in breeds]
    rows.append(
        [
            _button(codec, texts.button("mixed"), Press(prediction_id, Action.LABEL, MIXED_BREED)),
            _button(codec, texts.button("other"), Press(prediction_id, Action.OTHER)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def languages(codec: CallbackCodec, choices: dict[str, str]) -> InlineKeyboardMarkup:
    """One button per language the bot speaks (/language); the choice is stored per person."""
    return InlineKeyboardMarkup(
        [[_button(codec, name, Press(0, Action.LANGUAGE, code))] for code, name in choices.items()]
    )


def type_breed() -> ForceReply:
    """Opens the reply field, so the typed name comes back as a reply to the question."""
    return ForceReply(selective=True, input_field_placeholder=texts.type_breed_placeholder())
