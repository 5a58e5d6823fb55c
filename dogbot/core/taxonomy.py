"""The breed list: one canonical set of breed keys and names, and the lookup from what people type.

Three kinds of entries share one namespace of keys:

* the 121 ImageNet dog classes the base model knows (`imagenet_index` set; wolves, coyotes and
  foxes are not dogs here),
* breeds the base model does not know, pre-listed so staff can label them from day one, and breeds
  staff add at run time (`extra`, kept in the database by the catalog), and
* the two special labels, mixed breed and not a dog, which are valid answers but not breeds.

A key is a stable snake_case id stored with every label, so it never changes once issued; the
display name is what people read; aliases are what people type (nicknames, ImageNet's WordNet
names, spellings without accents). Every lookup ignores case, accents, spaces and punctuation.

The built-in entries come from `data/imagenet_dog_breeds.json`, written by
`data/make_breed_table.py`, so that the bot does not import torchvision to learn breed names.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from rapidfuzz import fuzz, process

log = logging.getLogger(__name__)

__all__ = [
    "IMAGENET_DOG_INDICES",
    "LOOKUP_MARGIN",
    "LOOKUP_MIN_SCORE",
    "MIXED_BREED",
    "NOT_A_DOG",
    "RESERVED_NAMES",
    "SPECIAL_LABELS",
    "SUGGEST_MIN_SCORE",
    "Breed",
    "Taxonomy",
    "slugify",
]

# ImageNet-1k classes treated as dogs: 151 (Chihuahua) to 268 (Mexican hairless), then dingo, dhole
# and African hunting dog. 269-272 are wolves and the coyote, which are not dogs for a shelter.
IMAGENET_DOG_INDICES: tuple[int, ...] = (*range(151, 269), 273, 274, 275)

# Fuzzy scores are rapidfuzz's normalised InDel similarity, 0-100, between accent-free lowercase
# names. Plain similarity rather than WRatio: WRatio scores any name containing the query's words
# at 90 ("german" matches every German breed equally), which hides the one real typo match.
# suggest() drops candidates below SUGGEST_MIN_SCORE: under it, matches are mostly shared letters.
SUGGEST_MIN_SCORE = 60.0
# ...and adds, at PREFIX_SCORE, every name whose words start with the typed words ("shep", "german",
# "bull terr"): people search by the start of a word. Equal scores for all German breeds leave lookup()
# without the margin it needs, so "german" alone is offered as choices, never guessed. Under
# PREFIX_MIN_LENGTH letters a prefix matches too many names to help.
PREFIX_SCORE = 85.0
PREFIX_MIN_LENGTH = 3
# lookup() accepts the best suggestion only if it scores at least LOOKUP_MIN_SCORE and beats the
# best *other* breed by LOOKUP_MARGIN: "german shepard" (German Shepherd 90, German Pinscher 76)
# is clearly one breed; "schnauzer" (78, 75, 67) is not, and the caller should offer the choices.
# Phonetic misspellings far from every name ("chiwawa": Chihuahua at 62) are suggested, not guessed.
LOOKUP_MIN_SCORE = 80.0
LOOKUP_MARGIN = 8.0

_TABLE = "data/imagenet_dog_breeds.json"
_NAME_MIN, _NAME_MAX = 2, 60
# Letters (any script), spaces, hyphens and apostrophes: enough for "Löwchen", "Jack Russell's".
_ALLOWED_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")
# Short words kept lowercase inside a title-cased name, as kennel clubs write them.
_LOWERCASE_WORDS = frozenset({"and", "de", "del", "des", "di", "do", "du", "la", "le", "of", "the", "von"})


def _fold(text: str) -> str:
    """Lowercase without accents: "Český" -> "cesky", "Löwchen" -> "lowchen"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def slugify(name: str) -> str:
    """The snake_case key for a name: "Bichon Frisé" -> bichon_frise, "Jack Russell's" -> jack_russells."""
    folded = _fold(name).replace("'", "")
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_")


@dataclass(frozen=True, slots=True)
class Breed:
    """One label value: a breed, or one of the special labels (see `is_special`)."""

    key: str
    display_name: str
    imagenet_index: int | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Rows from the database arrive with lists; a frozen dataclass must hold a hashable tuple.
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if not self.key or slugify(self.key) != self.key:
            raise ValueError(f"breed key {self.key!r} is not a snake_case id")
        if not self.display_name.strip():
            raise ValueError(f"breed {self.key!r} has an empty display name")

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this entry answers to: display name, key, aliases."""
        return (self.display_name, self.key, *self.aliases)

    @property
    def is_special(self) -> bool:
        """True for "mixed breed" and "not a dog": valid labels, but not breeds."""
        return self.key in _SPECIAL_KEYS


MIXED_BREED = Breed(
    key="mixed_breed",
    display_name="Mixed breed",
    aliases=("mixed", "mix", "mutt", "mongrel", "crossbreed", "cross", "mixed breed dog"),
)
NOT_A_DOG = Breed(
    key="not_a_dog",
    display_name="Not a dog",
    aliases=("not dog", "no dog", "cat", "kitten"),
)
SPECIAL_LABELS: tuple[Breed, ...] = (MIXED_BREED, NOT_A_DOG)
_SPECIAL_KEYS = frozenset(label.key for label in SPECIAL_LABELS)
# Words of the bot's own buttons and answers that are not entries here (the special entries above
# reserve their names and aliases themselves), in every language the bot speaks: English for now, a
# translation adds its words. No breed may be named so: a breed keyed "skip" (storage.vocabulary.SKIP)
# would turn every answer naming it into "I don't know", and one called "Other" would read as the
# "Other…" button.
RESERVED_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "Skip", "Skipped", "Other", "Others", "Other breed", "Unknown", "Don't know", "I don't know",
        "Not sure", "Wrong", "It is a dog",
    ),
    "es": ("Omitir", "Omitido", "Otro", "Otra", "Otra raza", "Desconocido", "No sé", "No estoy seguro",
           "Incorrecto", "Es un perro"),
}  # fmt: skip


class BreedRefused(ValueError):
    """A breed name that cannot be added: ``code`` and ``facts`` say why, for the layer that words it
    in the reader's language (bot/texts.py); the message is the English for the CLI and logs."""

    def __init__(self, message: str, code: str, **facts: object) -> None:
        super().__init__(message)
        self.code, self.facts = code, facts


class Taxonomy:
    """The breeds the bot knows: the built-in table plus `extra` breeds staff added.

    Immutable: `with_breed` returns a new taxonomy, so readers on other threads never see a
    half-updated index.
    """

    @classmethod
    def with_added(cls, rows: Iterable) -> Taxonomy:
        """The built-in table plus the breeds admins added, from stored rows (``key``,
        ``display_name``, ``aliases``: the catalog's ``CustomBreed`` or ``storage.serving_read``'s)."""
        return cls(
            extra=[
                Breed(key=r.key, display_name=r.display_name, imagenet_index=None, aliases=tuple(r.aliases))
                for r in rows
            ]
        )

    def __init__(self, extra: Iterable[Breed] = ()) -> None:
        self._breeds: dict[str, Breed] = {}
        self._by_name: dict[str, Breed] = {}
        for breed in (*_builtin_breeds(), *SPECIAL_LABELS):
            self._add(breed)
        self._extra: list[Breed] = []
        for breed in extra:
            if _reserved(breed):
                # Added before the names were reserved; its labels cannot be told from the special
                # value any more, so it is left out rather than let it shadow the special label.
                log.warning("breed %r (%s) uses a reserved name; left out", breed.display_name, breed.key)
                continue
            existing = self._breeds.get(breed.key)
            # A breed staff added that a later release of the built-in table also lists: the same
            # breed under the same key, so the built-in entry (with its aliases) simply covers it.
            if existing is not None and _compact(existing.display_name) == _compact(breed.display_name):
                continue
            self._add(breed)
            self._extra.append(breed)

        # Breed names in the languages the bot speaks ("Pastor alemán"): typed answers and /breeds
        # understand them too. A translated name that is some other breed's name is left out.
        translated: dict[str, list[str]] = {}
        for key, name in _translated_names():
            breed = self._breeds.get(key)
            if breed is not None and self._by_name.setdefault(_compact(name), breed) is breed:
                translated.setdefault(key, []).append(name)

        self._fuzzy_names: list[str] = []
        self._fuzzy_keys: list[str] = []
        for breed in self._breeds.values():
            names = (*breed.names, *translated.get(breed.key, ()))
            for name in dict.fromkeys(_fuzzy_form(name) for name in names):
                self._fuzzy_names.append(name)
                self._fuzzy_keys.append(breed.key)

    def _add(self, breed: Breed) -> None:
        if breed.key in self._breeds:
            raise ValueError(f"two breeds share the key {breed.key!r}")
        for name in breed.names:
            compact = _compact(name)
            if not compact:  # an alias of punctuation only would match nothing anyway
                continue
            owner = self._by_name.setdefault(compact, breed)
            if owner is not breed:
                raise ValueError(f"{name!r} would name both {owner.display_name} and {breed.display_name}")
        self._breeds[breed.key] = breed

    def __contains__(self, key: object) -> bool:
        return key in self._breeds

    def get(self, key: str) -> Breed:
        """The entry with this exact key (special labels included); KeyError if there is none."""
        return self._breeds[key]

    def all(self) -> list[Breed]:
        """Every breed, special labels excluded, in alphabetical order of display name."""
        breeds = (breed for breed in self._breeds.values() if not breed.is_special)
        return sorted(breeds, key=_display_order)

    def imagenet_breeds(self) -> list[Breed]:
        """The 121 breeds the base model has classes for, in ImageNet index order."""
        breeds = (breed for breed in self._breeds.values() if breed.imagenet_index is not None)
        return sorted(breeds, key=lambda breed: breed.imagenet_index)

    def resolve(self, text: str) -> Breed | None:
        """The entry one of whose names matches `text` exactly, ignoring case, accents and punctuation.

        "YORKSHIRE_TERRIER", "yorkshire-terrier" and "Yorkshire terrier" all find Yorkshire Terrier;
        so do the key, the ImageNet name and nicknames such as "yorkie". No guessing: see `lookup`.
        """
        compact = _compact(text)
        return self._by_name.get(compact) if compact else None

    def suggest(self, text: str, limit: int = 5) -> list[tuple[Breed, float]]:
        """Up to `limit` entries whose names look like `text`, best first, with a 0-100 score.

        Typo-tolerant ("german shepard", "labrodor", "rotweiler"); each entry appears once, scored
        by its best-matching name; candidates under SUGGEST_MIN_SCORE are left out.
        """
        query = _fuzzy_form(text)
        if not query or limit < 1:
            return []
        best: dict[str, float] = {}
        matches = process.extract(
            query,
            self._fuzzy_names,
            scorer=fuzz.ratio,
            processor=None,
            limit=None,
            score_cutoff=SUGGEST_MIN_SCORE,
        )
        for _, score, index in matches:
            key = self._fuzzy_keys[index]
            best[key] = max(best.get(key, 0.0), score)
        for name, key in zip(self._fuzzy_names, self._fuzzy_keys, strict=True):
            score = _word_prefix_score(query, name)
            if score > best.get(key, 0.0):
                best[key] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], _display_order(self._breeds[item[0]])))
        return [(self._breeds[key], score) for key, score in ranked[:limit]]

    def lookup(self, text: str) -> Breed | None:
        """`resolve`, else the best suggestion when it is clearly right; None when unsure.

        "Clearly right" means a score of at least LOOKUP_MIN_SCORE and a lead of LOOKUP_MARGIN
        over the runner-up, so a guess is only made when one breed stands out.
        """
        exact = self.resolve(text)
        if exact is not None:
            return exact
        candidates = self.suggest(text, limit=2)
        if not candidates:
            return None
        best, best_score = candidates[0]
        runner_up = candidates[1][1] if len(candidates) > 1 else 0.0
        if best_score >= LOOKUP_MIN_SCORE and best_score - runner_up >= LOOKUP_MARGIN:
            return best
        return None

    def with_breed(self, breed: Breed, *, reserved: Iterable[str] = ()) -> Taxonomy:
        """A new taxonomy that also knows `breed`; BreedRefused (a ValueError) on a clash.

        ``reserved``: more words no breed may be named, beyond RESERVED_NAMES (the bot's button
        words in every language it ships, which only the bot knows: ``bot.texts.button_words``).
        """
        existing = self._breeds.get(breed.key)
        if existing is not None:
            raise BreedRefused(
                f"{existing.display_name} is already in the breed list.", "known", breed=existing.key
            )
        if _reserved(breed) or is_reserved(breed.display_name, reserved):
            raise BreedRefused(
                f"“{breed.display_name}” is a word the bot's own buttons use; please give the breed "
                "another name.",
                "reserved",
                name=breed.display_name,
            )
        for name in breed.names:
            clash = self._by_name.get(_compact(name))
            if clash is not None:
                raise BreedRefused(
                    f"{name} is already in the breed list, as {clash.display_name}.",
                    "named",
                    name=name,
                    breed=clash.key,
                )
        return Taxonomy(extra=[*self._extra, breed])

    @staticmethod
    def make_breed(display_name: str) -> Breed:
        """A new breed from a name staff typed, tidied up; ValueError with a message for the user.

        Whitespace is collapsed and the name title-cased ("border  COLLIE" -> "Border Collie",
        "dogue de bordeaux" -> "Dogue de Bordeaux"); words typed in mixed case keep their case.
        The key is the name's slug. Whether the name is already taken is `with_breed`'s check.
        """
        name = " ".join(unicodedata.normalize("NFC", display_name).replace("\u2019", "'").split())
        if len(name) < _NAME_MIN:
            raise BreedRefused("Please type the breed's name (at least 2 letters).", "short")
        if len(name) > _NAME_MAX:
            raise BreedRefused(
                f"That name is too long for a breed ({len(name)} characters; at most {_NAME_MAX}).",
                "long",
                n=len(name),
                most=_NAME_MAX,
            )
        if not _ALLOWED_NAME.match(name):
            raise BreedRefused(
                "A breed name can only contain letters, spaces, hyphens and apostrophes.", "characters"
            )
        key = slugify(name)
        if len(key) < _NAME_MIN:
            raise BreedRefused(
                "Please type the breed's name in Latin letters (A to Z, accents are fine).", "latin"
            )
        return Breed(key=key, display_name=_title_case(name))


def is_reserved(name: str, words: Iterable[str]) -> bool:
    """Does ``name`` read as one of ``words`` (case, accents, spaces and punctuation forgiven)?"""
    compact = _compact(name)
    return bool(compact) and compact in {_compact(word) for word in words}


def _reserved(breed: Breed) -> bool:
    """Does any of ``breed``'s names (or its key) read as one of the bot's own words?"""
    reserved = {_compact(name) for names in RESERVED_NAMES.values() for name in names}
    return any(_compact(name) in reserved for name in breed.names)


def _compact(text: str) -> str:
    """The exact-match form: folded, "&" read as "and", everything but letters and digits dropped."""
    return re.sub(r"[^a-z0-9]", "", _fold(text).replace("&", "and"))


def _fuzzy_form(text: str) -> str:
    """The fuzzy-match form: folded, punctuation and underscores as single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", _fold(text).replace("&", "and")).split())


def _word_prefix_score(query: str, name: str) -> float:
    """PREFIX_SCORE when every typed word starts a different word of `name` ("shep" in German
    Shepherd, "german" in every German breed), a little more when the name starts with the query;
    0 otherwise. Whole names typed with a typo are `fuzz.ratio`'s job, not this one's."""
    if len(query) < PREFIX_MIN_LENGTH:
        return 0.0
    words = name.split()
    for typed in query.split():
        found = next((i for i, word in enumerate(words) if word.startswith(typed)), None)
        if found is None:
            return 0.0
        del words[found]
    return PREFIX_SCORE + (2.0 if name.startswith(query) else 0.0)


def _display_order(breed: Breed) -> str:
    return _fold(breed.display_name)


def _title_case(name: str) -> str:
    words = name.split(" ")
    return " ".join(_title_word(word, first=(position == 0)) for position, word in enumerate(words))


def _title_word(word: str, *, first: bool) -> str:
    if not first and word.lower() in _LOWERCASE_WORDS:
        return word.lower()
    parts = word.split("-")
    return "-".join(part if _mixed_case(part) else part[:1].upper() + part[1:].lower() for part in parts)


def _mixed_case(part: str) -> bool:
    """'McNab', 'deLuca': typed deliberately, keep as is. 'collie' or 'COLLIE': fix."""
    return part[1:] != part[1:].lower() and part != part.upper()


@cache
@cache
def _translated_names() -> tuple[tuple[str, str], ...]:
    """(breed key, name) from every language's breed table (dogbot/data/breed_names_<language>.json)."""
    names = []
    for table in sorted(resources.files("dogbot").joinpath("data").iterdir(), key=lambda p: p.name):
        if table.name.startswith("breed_names_") and table.name.endswith(".json"):
            names += json.loads(table.read_text(encoding="utf-8")).items()
    return tuple(names)


def _builtin_breeds() -> tuple[Breed, ...]:
    table = json.loads(resources.files("dogbot").joinpath(_TABLE).read_text(encoding="utf-8"))
    return tuple(
        Breed(
            key=entry["key"],
            display_name=entry["display_name"],
            imagenet_index=entry["imagenet_index"],
            aliases=tuple(entry["aliases"]),
        )
        for entry in (*table["imagenet"], *table["other"])
    )
