"""The bot's words in each person's language: gettext catalogs, chosen per update.

Texts call :func:`_` as they are built, and the language it translates into is a context variable:
the bot's gate sets it for every update (the person's ``/language`` choice, else the language
Telegram says their app uses, else the shelter's ``DOGBOT_LANGUAGE``), and code that writes to
someone outside an update (news to admins) wraps it in :func:`using`. Wrapping a new message in
``_()`` is all it takes to make it translatable; ``make translations`` extracts it into
``dogbot/locale/dogbot.pot`` and merges it into each language's catalog (Babel), and a test fails
while a shipped language lacks it. Breed names come from a table per language
(``dogbot/data/breed_names_<language>.json``); a breed missing there keeps its English name.
"""

from __future__ import annotations

import contextlib
import gettext
import json
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "dogbot"
SOURCE_LANGUAGE = "en"
# The languages the bot speaks completely, with the name people pick from in /language.
LANGUAGES = {"en": "English", "es": "Español"}

_language: ContextVar[str] = ContextVar("dogbot_language")
# The language where nothing set one: a process's threads start without the context's value (the
# worker's scheduled jobs draw charts for admins in the shelter's language: set_default_language).
_default = [SOURCE_LANGUAGE]


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for extraction, translate later")
    """Marks a message for extraction where it is defined; it is translated with _() where it is used."""
    return message


def _(message: str) -> str:
    """``message`` in the current language (English when its catalog has no translation)."""
    return _catalog(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(current()).ngettext(singular, plural, n)


def current() -> str:
    return _language.get(_default[0])


def set_default_language(language: str) -> None:
    """The language of this process wherever no update or ``using`` chose one (its threads too)."""
    _default[0] = language if language in LANGUAGES else SOURCE_LANGUAGE


def set_language(language: str) -> None:
    """The language of everything said while handling this update (the gate calls it once)."""
    _language.set(language if language in LANGUAGES else SOURCE_LANGUAGE)


@contextlib.contextmanager
def using(language: str) -> Iterator[None]:
    """Speak ``language`` inside the block (a message to one admin from a background job)."""
    token = _language.set(language if language in LANGUAGES else SOURCE_LANGUAGE)
    try:
        yield
    finally:
        _language.reset(token)


def supported(code: str | None) -> str | None:
    """The language of ours a Telegram ``language_code`` ("es", "es-MX", "pt-br") means, if we speak it."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def choose(chosen: str | None, telegram_code: str | None, shelter_default: str) -> str:
    """Whom to speak to in what: their /language choice, else their app's language, else the shelter's."""
    for candidate in (chosen, supported(telegram_code), shelter_default):
        if candidate in LANGUAGES:
            return candidate
    return SOURCE_LANGUAGE


def breed_name(key: str, english: str) -> str:
    """A breed's name in the current language, from its table; the English name where none is known."""
    return breed_names(current()).get(key, english)


@cache
def breed_names(language: str) -> dict[str, str]:
    """breed key -> name, for one language (empty for English and for languages without a table)."""
    path = Path(__file__).resolve().parent / "data" / f"breed_names_{language}.json"
    if language == SOURCE_LANGUAGE or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)
