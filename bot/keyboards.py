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


def incident(codec: CallbackCodec, incident_id: int) -> InlineKeyboardMarkup:
    """Under a drift incident's message (admins): retrain now, or accept the photos as normal."""
    return InlineKeyboardMarkup(
        [
            [_button(codec, texts.RETRAIN_NOW, Press(incident_id, Action.RETRAIN_NOW))],
            [_button(codec, texts.EXPECTED, Press(incident_id, Action.NEW_NORMAL))],
        ]
    )


def languages(codec: CallbackCodec, choices: dict[str, str]) -> InlineKeyboardMarkup:
    """One button per language the bot speaks (/language); the choice is stored per person."""
    return InlineKeyboardMarkup(
        [[_button(codec, name, Press(0, Action.LANGUAGE, code))] for code, name in choices.items()]
    )


def asm_send_now(codec: CallbackCodec) -> InlineKeyboardMarkup:
    """Under /asm: send every waiting dog (and those ASM refused) to Animal Shelter Manager now."""
    return InlineKeyboardMarkup(
        [[_button(codec, texts.asm_send_now_button(), Press(0, Action.ASM_SEND_NOW))]]
    )


def more_dogs(codec: CallbackCodec, shown: int) -> InlineKeyboardMarkup:
    """Under a page of /dogs: the next page."""
    return InlineKeyboardMarkup(
        [[_button(codec, texts.more_button(), Press(0, Action.MORE_DOGS, str(shown)))]]
    )


def type_breed() -> ForceReply:
    """Opens the reply field, so the typed name comes back as a reply to the question."""
    return ForceReply(selective=True, input_field_placeholder=texts.type_breed_placeholder())


def dog_details(codec: CallbackCodec, prediction_id: int) -> list[list[InlineKeyboardButton]]:
    """Sex and age group, one tap each (optional)."""

    def press(action: Action, arg: str) -> Press:
        return Press(prediction_id, action, arg)

    return [
        [
            _button(codec, texts.dog_button("male"), press(Action.SEX, "male")),
            _button(codec, texts.dog_button("female"), press(Action.SEX, "female")),
        ],
        [
            _button(codec, texts.dog_button("puppy"), press(Action.AGE, "puppy")),
            _button(codec, texts.dog_button("adult"), press(Action.AGE, "adult")),
            _button(codec, texts.dog_button("senior"), press(Action.AGE, "senior")),
        ],
    ]


def dog_card(
    codec: CallbackCodec,
    prediction_id: int,
    *,
    kind: str,
    breeds: Sequence[Choice] = (),
    same_dog_id: int | None = None,
    review: bool = False,
) -> InlineKeyboardMarkup:
    """Under a dog card: the breed question (``kind`` "ask"; ``review``: from /review, the next dog
    after an answer), "Wrong?" ("decided") or "It is a dog" ("not_a_dog"); sex and age; and, when it
    may be an earlier dog, Same dog / New dog."""
    if kind == "ask":
        rows = list(question(codec, prediction_id, breeds, review=review).inline_keyboard)
    elif kind == "not_a_dog":
        rows = list(not_a_dog(codec, prediction_id).inline_keyboard)
    else:
        rows = list(wrong(codec, prediction_id).inline_keyboard)
    if same_dog_id is not None:
        rows.insert(
            0,
            [
                _button(
                    codec, texts.dog_button("same"), Press(prediction_id, Action.SAME_DOG, str(same_dog_id))
                ),
                _button(codec, texts.dog_button("new"), Press(prediction_id, Action.NEW_DOG)),
            ],
        )
    if kind != "not_a_dog":
        rows += dog_details(codec, prediction_id)
    return InlineKeyboardMarkup(rows)


UNKNOWN_MIX = "?"  # a MIX_PRIMARY arg: nobody can tell the breeds
ONE_BREED_MIX = "-"  # a MIX_SECOND arg: "Labrador Retriever mix", the other breed unknown


def mix_primary(
    codec: CallbackCodec, prediction_id: int, breeds: Sequence[Choice], *, review: bool = False
) -> InlineKeyboardMarkup:
    """After "Mixed breed": which breed it looks most like (first of two taps), or "unknown mix"."""

    def press(arg: str) -> Press:
        return Press(prediction_id, Action.MIX_PRIMARY, arg, review=review)

    rows = [[_button(codec, text, press(key))] for key, text in breeds]
    rows.append([_button(codec, texts.dog_button("unknown_mix"), press(UNKNOWN_MIX))])
    return InlineKeyboardMarkup(rows)


def mix_secondary(
    codec: CallbackCodec,
    prediction_id: int,
    breeds: Sequence[Choice],
    primary_name: str,
    *,
    review: bool = False,
) -> InlineKeyboardMarkup:
    """The second tap: the other breed of the cross, or only the first one known."""

    def press(arg: str) -> Press:
        return Press(prediction_id, Action.MIX_SECOND, arg, review=review)

    rows = [[_button(codec, text, press(key))] for key, text in breeds]
    rows.append([_button(codec, texts.only_first_breed(primary_name), press(ONE_BREED_MIX))])
    return InlineKeyboardMarkup(rows)
