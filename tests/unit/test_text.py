"""The one normaliser for text from people (dogbot/core/text.py)."""

from dogbot.core.text import clean_text


def test_invisible_and_control_characters_go_and_spaces_fold() -> None:
    assert clean_text("  Max\x00\u200b \u202eRex\u202c\r\n ", 64) == "Max Rex"
    assert clean_text("a\tb\x1bc\x07", 64) == "a bc"  # a tab separates; an escape is dropped
    assert clean_text(None, 64) == "" and clean_text("\u200b\u2066", 64) == ""


def test_lengths_are_capped_after_cleaning_and_line_breaks_kept_only_when_asked() -> None:
    assert clean_text("x\x00" * 100, 10) == "x" * 10
    assert clean_text("one\n\u200btwo", 100, multiline=True) == "one\ntwo"
    assert clean_text("one\ntwo", 100) == "one two"


def test_what_people_do_type_stays() -> None:
    assert clean_text("Señor Peña-O'Brien 🐕‍🦺", 64) == "Señor Peña-O'Brien 🐕‍🦺"  # the emoji joiner stays
