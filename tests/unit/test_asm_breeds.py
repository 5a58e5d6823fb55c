"""Every dogbot breed is exported to ASM3 as one of ASM's dog breeds, never a cat's (core.asm_breeds)."""

from __future__ import annotations

import json
import os
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from dogbot.core.asm_breeds import MIXED_BREED, AsmBreedMap
from dogbot.core.taxonomy import MIXED_BREED as MIXED_BREED_LABEL


def packaged(name: str) -> dict:
    return json.loads(resources.files("dogbot").joinpath("data", name).read_text(encoding="utf-8"))


def asm_fold(name: str) -> str:
    """As ASM's CSV importer compares breed names."""
    return name.strip().lower().replace("'", "`")


DOGBOT = packaged("imagenet_dog_breeds.json")
BUILTIN = {e["key"]: e["display_name"] for group in ("imagenet", "other") for e in DOGBOT[group]}
ASM = packaged("asm3_dog_breeds.json")
MAP = packaged("asm3_breed_map.json")
ASM_DB = Path(os.environ.get("ASM3CHECK_DIR", "/tmp/asm3check")) / "asm3.db"


@pytest.fixture(scope="module")
def breeds() -> AsmBreedMap:
    return AsmBreedMap.load()


def write_overrides(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "asm_breeds.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_the_asm_breed_list_records_its_source() -> None:
    assert len(ASM["dog_breeds"]) == 221
    assert len({asm_fold(n) for n in ASM["dog_breeds"]}) == 221
    source = ASM["source"]
    assert source["repository"].endswith("sheltermanager/asm3")
    assert source["file"] == "src/asm3/dbupdate.py"
    assert len(source["commit"]) == 40 and source["generated"]
    assert len(ASM["other_species_breeds"]["Cat"]) == 56
    assert "Abyssinian" in ASM["other_species_breeds"]["Cat"]  # ASM's default breed for unknown names


def test_every_builtin_dogbot_breed_is_mapped_and_nothing_else() -> None:
    assert len(BUILTIN) == 255
    assert set(MAP["map"]) == set(BUILTIN)
    assert set(MAP["why"]) <= set(MAP["map"])


def test_every_mapped_name_is_an_asm_dog_breed_and_no_other_species_breed(breeds: AsmBreedMap) -> None:
    dog = set(ASM["dog_breeds"])  # spelled as ASM does, not only matching its case-insensitive lookup
    other = {asm_fold(n): species for species, names in ASM["other_species_breeds"].items() for n in names}
    for key, name in MAP["map"].items():
        assert name in dog, f"{key}: {name!r} is not an ASM dog breed"
        assert asm_fold(name) not in other, f"{key}: {name!r} is an ASM {other[asm_fold(name)]} breed"
        assert breeds.name_for(key, BUILTIN[key]) == name
        assert breeds.is_asm_dog_breed(name)


def test_each_name_is_exact_or_explained() -> None:
    """No 'why' for a name equal to dogbot's (any case); a 'renamed:' or 'nearest:' reason otherwise."""
    for key, name in MAP["map"].items():
        same = name.casefold() == BUILTIN[key].casefold()
        if same:
            assert key not in MAP["why"], key
        else:
            why = MAP["why"].get(key, "")
            assert why.startswith(("renamed: ", "nearest: ")) and len(why) > len("renamed: ") + 10, (
                f"{key}: {why!r}"
            )
            assert "\n" not in why


def test_mixed_breed_only_for_wild_canids() -> None:
    """A real breed always has a nearer ASM name than Mixed Breed; dholes and wild dogs are not breeds."""
    assert sorted(k for k, n in MAP["map"].items() if n == MIXED_BREED) == ["african_wild_dog", "dhole"]


@pytest.mark.parametrize(
    ("key", "asm"),
    [
        ("german_shepherd", "German Shepherd Dog"),
        ("yorkshire_terrier", "Yorkshire Terrier Yorkie"),
        ("west_highland_white_terrier", "West Highland White Terrier Westie"),
        ("toy_poodle", "Poodle"),
        ("miniature_poodle", "Poodle"),
        ("standard_poodle", "Poodle"),
        ("saint_bernard", "Saint Bernard St. Bernard"),
        ("newfoundland", "Newfoundland Dog"),
        ("labrador_retriever", "Labrador Retriever"),
        ("flat_coated_retriever", "Flat-coated Retriever"),  # ASM's case
        ("bichon_frise", "Bichon Frise"),  # dogbot writes Frisé
        ("giant_schnauzer", "Schnauzer"),
        ("american_pit_bull_terrier", "Pit Bull Terrier"),
        ("portuguese_podengo", "Portugese Podengo"),  # ASM's spelling
        ("german_spitz", "Spitz"),
        ("transylvanian_hound", "Hound"),
        ("jagdterrier", "Terrier"),
        ("spanish_mastiff", "Mastiff"),
        ("bohemian_shepherd", "Shepherd"),
    ],
)
def test_spot_checks(breeds: AsmBreedMap, key: str, asm: str) -> None:
    assert breeds.name_for(key, BUILTIN[key]) == asm


def test_mixed_breed_is_an_asm_dog_breed(breeds: AsmBreedMap) -> None:
    assert MIXED_BREED in ASM["dog_breeds"]
    assert breeds.is_asm_dog_breed(MIXED_BREED)
    assert breeds.is_asm_dog_breed("mixed breed ")
    assert not breeds.is_asm_dog_breed("Abyssinian")
    # dogbot's own "mixed breed" label is not a breed, but exports as ASM's Mixed Breed.
    assert breeds.name_for(MIXED_BREED_LABEL.key, MIXED_BREED_LABEL.display_name) == MIXED_BREED


def test_runtime_added_breed_uses_the_same_asm_name_else_mixed_breed(breeds: AsmBreedMap) -> None:
    assert breeds.name_for("kishu", "KISHU") == "Kishu"
    assert breeds.name_for("mcnab_dog", "mcnab ") == "McNab"
    assert breeds.name_for("lurcher", "Lurcher") == MIXED_BREED
    # ASM's importer would find a cat breed of this name; dogbot must not send it.
    assert breeds.name_for("abyssinian", "Abyssinian") == MIXED_BREED


def test_an_override_wins_by_key_and_by_display_name(tmp_path: Path) -> None:
    path = write_overrides(
        tmp_path,
        json.dumps({"GERMAN_SHEPHERD": "Pastor Alemán", "yorkshire terrier": "Yorkie", "Lurcher": "Lurcher"}),
    )
    breeds = AsmBreedMap.load(path)
    assert breeds.name_for("german_shepherd", "German Shepherd") == "Pastor Alemán"  # by key
    assert breeds.name_for("yorkshire_terrier", "Yorkshire Terrier") == "Yorkie"  # by display name
    assert breeds.name_for("lurcher", "Lurcher") == "Lurcher"  # trusted, though not an ASM default
    assert breeds.name_for("beagle", "Beagle") == "Beagle"  # the rest as before
    assert AsmBreedMap.load().name_for("german_shepherd", "German Shepherd") == "German Shepherd Dog"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ('["Beagle"]', "JSON object"),
        ('{"beagle": 3}', "non-empty string"),
        ('{"beagle": ""}', "non-empty string"),
        ('{"beagle": "Hound", "BEAGLE": "Beagle"}', "twice"),
    ],
)
def test_a_bad_overrides_file_is_one_readable_error(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "asm_breeds.json" if content is None else write_overrides(tmp_path, content)
    with pytest.raises(ValueError) as caught:
        AsmBreedMap.load(path)
    message = str(caught.value)
    assert str(path) in message and problem in message and "\n" not in message


@pytest.mark.skipif(not ASM_DB.exists(), reason=f"no ASM3 database at {ASM_DB} (tools/asm3/setup.sh)")
def test_the_asm_breed_list_equals_a_real_asm_database() -> None:
    con = sqlite3.connect(f"file:{ASM_DB}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT b.BreedName, s.SpeciesName FROM breed b JOIN species s ON s.ID = b.SpeciesID"
            " ORDER BY b.ID"
        ).fetchall()
    finally:
        con.close()
    assert [name for name, species in rows if species == "Dog"] == ASM["dog_breeds"]
    others: dict[str, list[str]] = {}
    for name, species in rows:
        if species != "Dog":
            others.setdefault(species, []).append(name)
    assert others == ASM["other_species_breeds"]
