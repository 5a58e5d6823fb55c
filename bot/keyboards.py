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
            _button(codec, "Mixed breed", press(Action.LABEL, MIXED_BREED)),
            _button(codec, "Not a dog", press(Action.LABEL, NOT_A_DOG)),
        ]
    )
    rows.append(
        [
            _button(codec, "Other…", press(Action.OTHER)),
            _button(codec, "Skip", press(Action.LABEL, SKIP)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def wrong(codec: CallbackCodec, prediction_id: int) -> InlineKeyboardMarkup:
    """Under an accepted answer: reopen the question."""
    return InlineKeyboardMarkup([[_button(codec, "Wrong?", Press(prediction_id, Action.WRONG))]])


def not_a_dog(codec: CallbackCodec, prediction_id: int) -> InlineKeyboardMarkup:
    """Under "this does not look like a dog": let staff overrule the model."""
    return InlineKeyboardMarkup([[_button(codec, "It is a dog", Press(prediction_id, Action.IS_DOG))]])


def matches(codec: CallbackCodec, prediction_id: int, breeds: Sequence[Choice]) -> InlineKeyboardMarkup:
    """Breeds matching what someone typed after "Other…", plus a way out."""
    rows = [[_button(codec, text, Press(prediction_id, Action.LABEL, key))] for key, text in breeds]
    rows.append(
        [
            _button(codec, "Mixed breed", Press(prediction_id, Action.LABEL, MIXED_BREED)),
            _button(codec, "Other…", Press(prediction_id, Action.OTHER)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def incident(codec: CallbackCodec, incident_id: int) -> InlineKeyboardMarkup:
    """Under a drift incident's message (admins): retrain now, or accept the photos as normal."""
    return InlineKeyboardMarkup(
        [
            [_button(codec, texts.RETRAIN_NOW, Press(incident_id, Action.RETRAIN_NOW))],
            [_button(codec, texts.EXPECTED, Press(incident_id, Action.NEW_NORMAL))],
        ]
    )


def type_breed() -> ForceReply:
    """Opens the reply field, so the typed name comes back as a reply to the question."""
    return ForceReply(selective=True, input_field_placeholder="e.g. German shepherd")
