"""The bot's languages: every message translated in every shipped language, catalogs compiled, and
each person spoken to in their own language (dogbot.i18n)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import texts
from dogbot import i18n
from dogbot.core.members import Role
from dogbot.core.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [language for language in i18n.LANGUAGES if language != i18n.SOURCE_LANGUAGE]
_FIELD = re.compile(r"\{(\w*)[^}]*\}")


def source_messages() -> set[str]:
    """Every message the code marks with _() or N_(), read from the source as Babel extracts it."""
    found = set()
    for folder in ("bot", "dogbot"):
        for _file, _line, message, _comments, _context in extract_from_dir(ROOT / folder):
            found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(language: str):
    with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "dogbot.po").open("rb") as handle:
        return read_po(handle)


def test_the_languages_the_bot_offers_are_shipped() -> None:
    assert SHIPPED == ["es"]
    assert source_messages() >= {"Which breed is photo #{photo_id}?", "Wrong?", "Skip"}


@pytest.mark.parametrize("language", SHIPPED)
def test_every_message_is_translated_in_every_shipped_language(language: str) -> None:
    po = catalog(language)
    translated = {_singular(m.id) for m in po if m.id and _filled(m.string) and not m.fuzzy}
    missing = sorted(source_messages() - set(translated))
    assert not missing, f"{language} lacks {len(missing)} messages (run `make translations`): {missing[:5]}"


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_every_placeholder(language: str) -> None:
    for message in catalog(language):
        if message.id and _filled(message.string):
            wanted = set(_FIELD.findall(_singular(message.id)))
            for form in _forms(message.string):  # every plural form says the same things
                assert set(_FIELD.findall(form)) == wanted, message.id


@pytest.mark.parametrize("language", SHIPPED)
def test_the_compiled_catalog_is_the_current_one(language: str) -> None:
    """The .mo the bot loads says what the .po says (a stale .mo would speak an old translation)."""
    with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "dogbot.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in catalog(language):
        if message.id and _filled(message.string):
            if isinstance(message.id, str):
                assert compiled.gettext(message.id) == message.string, message.id
            else:
                singular, plural = message.id
                assert compiled.ngettext(singular, plural, 1) == message.string[0], message.id
                assert compiled.ngettext(singular, plural, 2) in message.string[1:], message.id


def _singular(message_id) -> str:
    """A catalog entry's message id (a plural entry's is its singular, as source_messages reads it)."""
    return message_id if isinstance(message_id, str) else message_id[0]


def _forms(string) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else tuple(string)


def _filled(string) -> bool:
    return all(_forms(string)) and bool(_forms(string))


def test_whom_the_bot_speaks_to_in_what() -> None:
    assert (
        i18n.supported("es-MX") == "es" and i18n.supported("pt-br") is None and i18n.supported(None) is None
    )
    assert i18n.choose(None, "es", "en") == "es"  # the app's language
    assert i18n.choose("en", "es", "en") == "en"  # a /language choice beats it
    assert i18n.choose(None, "uk", "es") == "es"  # a language we do not speak: the shelter's
    assert i18n.choose(None, None, "en") == "en"


def test_messages_and_breed_names_follow_the_language_in_force() -> None:
    assert texts.button("wrong") == "Wrong?" and texts.STALE.startswith("This question")
    with i18n.using("es"):
        assert texts.button("wrong") == "¿Incorrecto?"
        assert texts.STALE.startswith("Esta pregunta")
        assert "Comandos del personal" in texts.help_text(Role.STAFF)
        assert i18n.breed_name("german_shepherd", "German Shepherd") == "Pastor alemán"
        assert i18n.breed_name("komondor", "Komondor") == "Komondor"  # no translation: English
    assert i18n.current() == "en"


def test_typed_breed_names_are_understood_in_either_language() -> None:
    taxonomy = Taxonomy()
    for typed, key in (("pastor aleman", "german_shepherd"), ("Carlino", "pug"), ("mestizo", "mixed_breed")):
        assert taxonomy.resolve(typed).key == key
    assert taxonomy.lookup("pastor alman").key == "german_shepherd"
    assert taxonomy.resolve("German Shepherd").key == "german_shepherd"


def test_every_catalog_compiles_without_errors(tmp_path):
    """`make install` compiles the catalogs and stops at an error: a message with "% s" or "% r" in it
    is read as a printf format, and a translation's "% d" then does not match it."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    locale = Path(__file__).resolve().parents[2] / "dogbot" / "locale"
    shutil.copytree(locale, tmp_path / "locale")
    pybabel = Path(sys.executable).with_name("pybabel")
    result = subprocess.run(
        [str(pybabel), "compile", "-d", str(tmp_path / "locale"), "-D", "dogbot"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
