"""Every word on a button, in every language the bot ships, is refused as a breed name (issue 25).

The list is built here from the keyboards themselves, drawn in each language, so a new button whose
word is not in ``bot.texts.button_words`` fails this test instead of becoming a breed.
"""

from __future__ import annotations

import pytest

from bot import keyboards
from bot.callbacks import CallbackCodec
from bot.texts import button_words
from dogbot import i18n
from dogbot.core.breeds import Breeds
from storage.db import make_engine

BREEDS = [("zz_breed_a", "Zzbreed Alpha"), ("zz_breed_b", "Zzbreed Beta")]  # stand-ins, left out


def words_on_buttons() -> set[str]:
    codec = CallbackCodec(b"secret")
    boards = []
    for language in i18n.LANGUAGES:
        with i18n.using(language):
            boards += [
                keyboards.dog_card(codec, 1, kind=kind, breeds=BREEDS, same_dog_id=2)
                for kind in ("ask", "decided", "not_a_dog")
            ]
            boards += [
                keyboards.question(codec, 1, BREEDS),
                keyboards.matches(codec, 1, BREEDS),
                keyboards.mix_primary(codec, 1, BREEDS),
                keyboards.mix_secondary(codec, 1, BREEDS, "Zzbreed Alpha"),
                keyboards.incident(codec, 1),
                keyboards.languages(codec, i18n.LANGUAGES),
                keyboards.asm_send_now(codec),
            ]
    stand_ins = [name for _, name in BREEDS]
    return {
        button.text
        for board in boards
        for row in board.inline_keyboard
        for button in row
        if not any(name in button.text for name in stand_ins)
    }


@pytest.fixture
def breeds() -> Breeds:
    found = Breeds(make_engine("sqlite://"))  # a shared in-memory database with the schema
    found.reserve(button_words())
    return found


def test_the_list_covers_both_languages_and_the_words_people_found() -> None:
    words = words_on_buttons()
    for word in ("Puppy", "♂ Male", "Same dog", "New dog", "Unknown mix", "Cachorro", "Sí es un perro"):
        assert word in words, sorted(words)


@pytest.mark.parametrize("word", sorted(words_on_buttons()))
def test_every_button_word_is_refused_as_a_breed(breeds: Breeds, word: str) -> None:
    if word in ("Mixed breed", "Not a dog"):
        pytest.skip("the special labels' own names: refused as already in the breed list")
    why = breeds.refusal(word)
    assert why is not None, f"{word!r} could be added as a breed"
    with pytest.raises(ValueError):
        breeds.add_breed(word, by=1)


def test_a_real_new_breed_is_still_accepted(breeds: Breeds) -> None:
    assert breeds.refusal("Xoloitzcuintle Toy") is None
    assert breeds.add_breed("Xoloitzcuintle Toy", by=1).key == "xoloitzcuintle_toy"


def test_add_breeds_checks_every_name_before_adding_any(breeds: Breeds) -> None:
    with pytest.raises(ValueError, match="Skip"):
        breeds.add_breeds(["Kokoni", "Skip"], by=None)
    assert breeds.refusal("Kokoni") is None  # not added: the whole set was refused
