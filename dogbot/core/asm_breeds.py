"""Which Animal Shelter Manager 3 breed a dogbot breed is exported as.

ASM's CSV importer finds a breed by exact name, ignoring case (stripped, lowercased, ' written as `),
across every species; a name it does not find silently becomes its default breed, a cat breed
("Abyssinian") on a fresh database. So every name sent must be one of the shelter's ASM breeds.

The answer, first match wins:

1. the shelter's overrides file, if any: a JSON object mapping a dogbot breed key or display name
   (any case) to the shelter's own ASM breed name. Shelters rename ASM's lookups, and a database
   created in another locale has them translated; overrides are trusted, not checked;
2. the maintained map (data/asm3_breed_map.json): every built-in dogbot breed -> one of ASM's
   default dog breeds (data/asm3_dog_breeds.json, copied from ASM's source by make_asm3_breeds.py);
3. for a breed an admin added at run time, the ASM default dog breed of the same name (any case);
4. else MIXED_BREED, which every ASM database has.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = ["MIXED_BREED", "AsmBreedMap"]

MIXED_BREED = "Mixed Breed"  # ASM's name for a dog of unknown cross

_DOG_BREEDS = "data/asm3_dog_breeds.json"
_BREED_MAP = "data/asm3_breed_map.json"


def _fold(name: str) -> str:
    """A name as ASM's importer compares it: stripped, lowercased, ' as ` (csvimport.py)."""
    return name.strip().lower().replace("'", "`")


def _read_packaged(name: str) -> Any:
    return json.loads(resources.files("dogbot").joinpath(name).read_text(encoding="utf-8"))


@cache
def _packaged() -> tuple[dict[str, str], dict[str, str]]:
    """(folded ASM default dog breed name -> name, dogbot key -> ASM name) from the package data."""
    dog_breeds = {_fold(name): name for name in _read_packaged(_DOG_BREEDS)["dog_breeds"]}
    return dog_breeds, dict(_read_packaged(_BREED_MAP)["map"])


def _read_overrides(path: pathlib.Path) -> dict[str, str]:
    """Folded key or display name -> the shelter's ASM breed name; ValueError naming the file."""

    def bad(problem: str) -> ValueError:
        return ValueError(f"ASM breed overrides file {path}: {problem}")

    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read it ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise bad(f"expected a JSON object of breed -> ASM breed name, got a {type(data).__name__}")
    overrides: dict[str, str] = {}
    for breed, asm_name in data.items():
        if not isinstance(asm_name, str) or not asm_name.strip():
            raise bad(f"the ASM breed name for {breed!r} must be a non-empty string, got {asm_name!r}")
        folded = _fold(breed)
        if not folded:
            raise bad(f"an empty breed name maps to {asm_name!r}")
        if overrides.get(folded, asm_name.strip()) != asm_name.strip():
            raise bad(f"{breed!r} is given twice (ignoring case) with different ASM breeds")
        overrides[folded] = asm_name.strip()
    return overrides


@dataclass(frozen=True)
class AsmBreedMap:
    """dogbot breed -> ASM breed name; build with `load`."""

    overrides: MappingProxyType[str, str]  # folded dogbot key or display name -> shelter's ASM name
    breed_map: MappingProxyType[str, str]  # dogbot key -> ASM default dog breed name
    dog_breeds: MappingProxyType[str, str]  # folded ASM default dog breed name -> its spelling

    @classmethod
    def load(cls, overrides_path: pathlib.Path | None = None) -> AsmBreedMap:
        """The maintained map, with the shelter's overrides file if given (ValueError if it is bad)."""
        dog_breeds, breed_map = _packaged()
        overrides = _read_overrides(overrides_path) if overrides_path is not None else {}
        return cls(
            overrides=MappingProxyType(overrides),
            breed_map=MappingProxyType(breed_map),
            dog_breeds=MappingProxyType(dog_breeds),
        )

    def name_for(self, key: str, display_name: str) -> str:
        """The ASM breed name to export a dog of dogbot breed `key` (shown as `display_name`) as."""
        for name in (key, display_name):
            if (override := self.overrides.get(_fold(name))) is not None:
                return override
        if key in self.breed_map:
            return self.breed_map[key]
        return self.dog_breeds.get(_fold(display_name), MIXED_BREED)

    def is_asm_dog_breed(self, name: str) -> bool:
        """Whether `name` is one of ASM's default dog breeds, as ASM's importer compares names."""
        return _fold(name) in self.dog_breeds
