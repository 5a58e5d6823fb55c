"""The breed list: names people use, ImageNet's names and the dataset's labels all find the right breed."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from dogbot.core.taxonomy import (
    IMAGENET_DOG_INDICES,
    MIXED_BREED,
    NOT_A_DOG,
    SUGGEST_MIN_SCORE,
    Breed,
    Taxonomy,
    slugify,
)


def without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy()


@pytest.fixture(scope="module")
def imagenet_categories() -> list[str]:
    models = pytest.importorskip("torchvision.models")
    return list(models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


# --- the ImageNet classes -------------------------------------------------------------------------


def test_dog_indices_are_the_121_dog_classes() -> None:
    assert len(IMAGENET_DOG_INDICES) == 121
    assert list(IMAGENET_DOG_INDICES) == sorted(set(IMAGENET_DOG_INDICES))
    assert IMAGENET_DOG_INDICES[0] == 151 and IMAGENET_DOG_INDICES[-1] == 275
    assert not {269, 270, 271, 272} & set(IMAGENET_DOG_INDICES)  # wolves and the coyote


def test_imagenet_breeds_follow_index_order(taxonomy: Taxonomy) -> None:
    breeds = taxonomy.imagenet_breeds()
    assert [breed.imagenet_index for breed in breeds] == list(IMAGENET_DOG_INDICES)


def test_every_torchvision_dog_name_resolves_to_its_class(
    taxonomy: Taxonomy, imagenet_categories: list[str]
) -> None:
    for index in IMAGENET_DOG_INDICES:
        name = imagenet_categories[index]
        breed = taxonomy.resolve(name)
        assert breed is not None, name
        assert breed.imagenet_index == index, (name, breed)
        assert name in breed.aliases


def test_checked_in_table_matches_its_generator(imagenet_categories: list[str]) -> None:
    from dogbot.data import make_breed_table

    expected = make_breed_table.render(make_breed_table.build_table(imagenet_categories))
    assert make_breed_table.TABLE_PATH.read_text(encoding="utf-8") == expected, (
        "dogbot/data/imagenet_dog_breeds.json is stale: run python -m dogbot.data.make_breed_table"
    )


@pytest.mark.parametrize(
    ("imagenet_name", "key", "display_name"),
    [
        ("Yorkshire terrier", "yorkshire_terrier", "Yorkshire Terrier"),
        ("German shepherd", "german_shepherd", "German Shepherd"),
        ("Chihuahua", "chihuahua", "Chihuahua"),
        ("Shih-Tzu", "shih_tzu", "Shih Tzu"),
        ("miniature poodle", "miniature_poodle", "Miniature Poodle"),
        ("Bernese mountain dog", "bernese_mountain_dog", "Bernese Mountain Dog"),
        ("dalmatian", "dalmatian", "Dalmatian"),
        ("Pembroke", "pembroke_welsh_corgi", "Pembroke Welsh Corgi"),
        ("Staffordshire bullterrier", "staffordshire_bull_terrier", "Staffordshire Bull Terrier"),
        ("Brabancon griffon", "brabancon_griffon", "Brabançon Griffon"),
        ("Mexican hairless", "xoloitzcuintli", "Xoloitzcuintli"),
        ("African hunting dog", "african_wild_dog", "African Wild Dog"),
        ("Boston bull", "boston_terrier", "Boston Terrier"),
        ("Eskimo dog", "canadian_eskimo_dog", "Canadian Eskimo Dog"),
    ],
)
def test_display_names_are_the_names_people_use(
    taxonomy: Taxonomy, imagenet_name: str, key: str, display_name: str
) -> None:
    breed = taxonomy.resolve(imagenet_name)
    assert breed is not None
    assert (breed.key, breed.display_name) == (key, display_name)


def test_display_names_are_title_cased(taxonomy: Taxonomy) -> None:
    small_words = {"and", "de", "des", "do", "du", "of"}
    for breed in taxonomy.all():
        for word in breed.display_name.split():
            assert word in small_words or word[0].isupper(), breed.display_name


# --- uniqueness -----------------------------------------------------------------------------------


def test_keys_are_unique_snake_case_ids(taxonomy: Taxonomy) -> None:
    keys = [breed.key for breed in taxonomy.all()]
    assert len(keys) == len(set(keys))
    assert all(slugify(key) == key for key in keys)


def test_display_names_are_unique(taxonomy: Taxonomy) -> None:
    names = [slugify(breed.display_name) for breed in taxonomy.all()]
    assert len(names) == len(set(names))


def test_every_name_finds_its_own_breed(taxonomy: Taxonomy) -> None:
    # The constructor refuses two entries sharing a name; this checks the index the other way.
    for breed in [*taxonomy.all(), MIXED_BREED, NOT_A_DOG]:
        for name in breed.names:
            assert taxonomy.resolve(name) == breed, name


def test_all_is_sorted_and_leaves_out_special_labels(taxonomy: Taxonomy) -> None:
    breeds = taxonomy.all()
    order = [without_accents(breed.display_name).casefold() for breed in breeds]
    assert order == sorted(order)  # "Český Terrier" among the Cs, not after the Zs
    assert MIXED_BREED not in breeds and NOT_A_DOG not in breeds
    assert len(breeds) > 121  # the ImageNet breeds and the pre-listed others


# --- exact lookups --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "YORKSHIRE_TERRIER",
        "yorkshire-terrier",
        "Yorkshire terrier",
        "  yorkshire   terrier ",
        "Yorkshire Terrier.",
        "yorkshire_terrier",
        "Yorkie",
    ],
)
def test_resolve_ignores_case_spacing_and_punctuation(taxonomy: Taxonomy, text: str) -> None:
    assert taxonomy.resolve(text) == taxonomy.get("yorkshire_terrier")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("yorkie", "yorkshire_terrier"),
        ("gsd", "german_shepherd"),
        ("alsatian", "german_shepherd"),
        ("lab", "labrador_retriever"),
        ("labrador", "labrador_retriever"),
        ("golden", "golden_retriever"),
        ("pit bull", "american_pit_bull_terrier"),
        ("pitbull", "american_pit_bull_terrier"),
        ("staffy", "staffordshire_bull_terrier"),
        ("husky", "siberian_husky"),
        ("corgi", "pembroke_welsh_corgi"),
        ("poodle", "standard_poodle"),
        ("weiner dog", "dachshund"),
        ("wiener dog", "dachshund"),
        ("sausage dog", "dachshund"),
        ("doxie", "dachshund"),
        ("sheltie", "shetland_sheepdog"),
        ("westie", "west_highland_white_terrier"),
        ("boxer", "boxer"),
        ("pug", "pug"),
        ("beagle", "beagle"),
        ("frenchie", "french_bulldog"),
        ("St. Bernard", "saint_bernard"),
        ("malinois", "belgian_malinois"),
        ("black & tan coonhound", "black_and_tan_coonhound"),
        ("Brabancon Griffon", "brabancon_griffon"),
        ("lowchen", "lowchen"),
        ("LÖWCHEN", "lowchen"),
        ("Cesky Terrier", "cesky_terrier"),
        ("catahoula", "catahoula_leopard_dog"),
        ("anatolian shepherd", "anatolian_shepherd_dog"),
        ("jack russell", "jack_russell_terrier"),
        ("aussie", "australian_shepherd"),
        ("blue heeler", "australian_cattle_dog"),
    ],
)
def test_nicknames(taxonomy: Taxonomy, text: str, key: str) -> None:
    assert taxonomy.resolve(text) == taxonomy.get(key)


@pytest.mark.parametrize("text", ["mixed", "mutt", "mix", "crossbreed", "Mixed breed", "mixed_breed"])
def test_mixed_breed_words(taxonomy: Taxonomy, text: str) -> None:
    assert taxonomy.resolve(text) is MIXED_BREED


@pytest.mark.parametrize("text", ["not a dog", "Not a dog", "cat", "not_a_dog", "NOT-A-DOG"])
def test_not_a_dog_words(taxonomy: Taxonomy, text: str) -> None:
    assert taxonomy.resolve(text) is NOT_A_DOG


def test_special_labels(taxonomy: Taxonomy) -> None:
    assert (MIXED_BREED.key, MIXED_BREED.display_name) == ("mixed_breed", "Mixed breed")
    assert (NOT_A_DOG.key, NOT_A_DOG.display_name) == ("not_a_dog", "Not a dog")
    assert MIXED_BREED.is_special and NOT_A_DOG.is_special
    assert not taxonomy.get("pug").is_special
    assert taxonomy.get("not_a_dog") is NOT_A_DOG
    assert "mixed_breed" in taxonomy


def test_get_unknown_key_raises_key_error(taxonomy: Taxonomy) -> None:
    with pytest.raises(KeyError):
        taxonomy.get("German Shepherd")  # a name, not a key


# --- the shared dataset's labels ------------------------------------------------------------------


def test_every_manifest_label_resolves(
    taxonomy: Taxonomy, shared_manifest: Callable[[str], list[dict[str, str]]]
) -> None:
    unresolved = []
    for row in shared_manifest("manifest.csv"):
        breed = taxonomy.resolve(row["breed"])
        if breed is None:
            unresolved.append(row["breed"])
        elif row["imagenet_index"]:
            assert breed.imagenet_index == int(row["imagenet_index"]), row["breed"]
        else:
            assert breed is NOT_A_DOG, row["breed"]
    assert not unresolved, sorted(set(unresolved))


def test_every_other_breed_label_resolves(
    taxonomy: Taxonomy, shared_manifest: Callable[[str], list[dict[str, str]]]
) -> None:
    names = {row["breed"] for row in shared_manifest("other_breeds.csv")}
    # Three stock photos are labelled "unlabelled_dog:<file name>": a note, not a breed.
    breeds = {name for name in names if not name.startswith("unlabelled_dog:")}
    unresolved = sorted(name for name in breeds if taxonomy.resolve(name) is None)
    assert not unresolved
    assert all(not taxonomy.resolve(name).is_special for name in breeds)
    # Almost all are the snake_case key itself ("Poodle" and "American_water_spaniel" are not).
    assert sum(name in taxonomy for name in breeds) >= len(breeds) - 2


def test_other_breeds_are_not_imagenet_classes(taxonomy: Taxonomy) -> None:
    for key in ["dachshund", "bulldog", "american_bulldog", "shiba_inu", "akita", "havanese"]:
        assert taxonomy.get(key).imagenet_index is None


# --- typos ----------------------------------------------------------------------------------------

TYPOS = {
    "german shepard": "german_shepherd",
    "labrodor": "labrador_retriever",
    "chiwawa": "chihuahua",
    "rotweiler": "rottweiler",
    "dashund": "dachshund",
    "daschund": "dachshund",
    "dalmation": "dalmatian",
    "shitzu": "shih_tzu",
    "golden retreiver": "golden_retriever",
    "pomeranean": "pomeranian",
    "jack russel": "jack_russell_terrier",
    "weimeraner": "weimaraner",
}


@pytest.mark.parametrize(("text", "key"), TYPOS.items())
def test_suggest_puts_the_intended_breed_first(taxonomy: Taxonomy, text: str, key: str) -> None:
    suggestions = taxonomy.suggest(text)
    assert suggestions, text
    assert suggestions[0][0].key == key


@pytest.mark.parametrize(("text", "key"), [(t, k) for t, k in TYPOS.items() if t != "chiwawa"])
def test_lookup_accepts_a_clear_typo(taxonomy: Taxonomy, text: str, key: str) -> None:
    assert taxonomy.lookup(text) == taxonomy.get(key)


def test_lookup_prefers_an_exact_name(taxonomy: Taxonomy) -> None:
    assert taxonomy.lookup("labrador") == taxonomy.get("labrador_retriever")


@pytest.mark.parametrize("text", ["schnauzer", "terrier", "spaniel", "shepherd", "dog"])
def test_lookup_does_not_guess_between_close_breeds(taxonomy: Taxonomy, text: str) -> None:
    assert taxonomy.lookup(text) is None


def test_ambiguous_text_still_gets_suggestions(taxonomy: Taxonomy) -> None:
    keys = [breed.key for breed, _ in taxonomy.suggest("schnauzer", limit=3)]
    assert sorted(keys) == ["giant_schnauzer", "miniature_schnauzer", "standard_schnauzer"]


@pytest.mark.parametrize("text", ["asdfgh", "", "   ", "!!!", "qwerty", "xyz"])
def test_nonsense_finds_nothing(taxonomy: Taxonomy, text: str) -> None:
    assert taxonomy.resolve(text) is None
    assert taxonomy.lookup(text) is None


def test_suggest_on_empty_text_is_empty(taxonomy: Taxonomy) -> None:
    assert taxonomy.suggest("") == []
    assert taxonomy.suggest("---") == []


def test_suggestions_are_distinct_ranked_and_limited(taxonomy: Taxonomy) -> None:
    suggestions = taxonomy.suggest("terrier", limit=4)
    assert len(suggestions) == 4
    assert len({breed.key for breed, _ in suggestions}) == 4
    scores = [score for _, score in suggestions]
    assert scores == sorted(scores, reverse=True)
    assert all(SUGGEST_MIN_SCORE <= score <= 100 for score in scores)
    assert taxonomy.suggest("terrier", limit=0) == []


# --- breeds added by staff ------------------------------------------------------------------------


def test_extra_breeds_join_the_taxonomy() -> None:
    kangal = Breed(key="kangal", display_name="Kangal", aliases=["Kangal shepherd dog"])
    taxonomy = Taxonomy(extra=[kangal])
    assert taxonomy.get("kangal") == kangal
    assert kangal.aliases == ("Kangal shepherd dog",)  # lists from the database become tuples
    assert taxonomy.resolve("kangal shepherd dog") == kangal
    assert taxonomy.lookup("kangall") == kangal
    assert kangal in taxonomy.all()
    assert kangal not in taxonomy.imagenet_breeds()


def test_with_breed_returns_a_new_taxonomy(taxonomy: Taxonomy) -> None:
    grown = taxonomy.with_breed(Taxonomy.make_breed("kangal"))
    assert grown.get("kangal").display_name == "Kangal"
    assert "kangal" not in taxonomy
    assert len(grown.all()) == len(taxonomy.all()) + 1
    twice = grown.with_breed(Taxonomy.make_breed("Sapsali"))
    assert {"kangal", "sapsali"} <= {breed.key for breed in twice.all()}


@pytest.mark.parametrize(
    ("name", "existing"),
    [
        ("Akita", "Akita"),  # same key
        ("yorkie", "Yorkshire Terrier"),  # an alias
        ("German-Shepherd", "German Shepherd"),  # the display name, spelled differently
        ("Mutt", "Mixed breed"),  # a special label's word
        ("Boston Bull", "Boston Terrier"),  # an ImageNet name
    ],
)
def test_with_breed_refuses_a_clash(taxonomy: Taxonomy, name: str, existing: str) -> None:
    with pytest.raises(ValueError, match=f"already in the breed list.*{existing}|{existing} is already"):
        taxonomy.with_breed(Taxonomy.make_breed(name))


def test_with_breed_refuses_a_clashing_alias(taxonomy: Taxonomy) -> None:
    with pytest.raises(ValueError, match="Pug"):
        taxonomy.with_breed(Breed(key="puggle", display_name="Puggle", aliases=("pug",)))


def test_staff_breed_later_built_in_is_not_a_conflict() -> None:
    # A staff breed that a newer built-in table also lists, under the same key and name.
    duplicate = Breed(key="labradoodle", display_name="Labradoodle")
    taxonomy = Taxonomy(extra=[duplicate])
    assert taxonomy.get("labradoodle").imagenet_index is None
    assert len(taxonomy.all()) == len(Taxonomy().all())


def test_conflicting_extra_breed_is_refused() -> None:
    with pytest.raises(ValueError):
        Taxonomy(extra=[Breed(key="yorkie", display_name="Yorkie")])


# --- new breed names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "key", "display_name"),
    [
        ("kangal", "kangal", "Kangal"),
        ("  kangal   shepherd\tdog ", "kangal_shepherd_dog", "Kangal Shepherd Dog"),
        ("BORDER COLLIE CROSS", "border_collie_cross", "Border Collie Cross"),
        ("dogue de bordeaux", "dogue_de_bordeaux", "Dogue de Bordeaux"),
        ("of the valley", "of_the_valley", "Of the Valley"),
        ("McNab", "mcnab", "McNab"),
        ("soft-coated hound", "soft_coated_hound", "Soft-Coated Hound"),
        ("jack’s terrier", "jacks_terrier", "Jack's Terrier"),
        ("Löwchen mix", "lowchen_mix", "Löwchen Mix"),
        ("xo", "xo", "Xo"),
    ],
)
def test_make_breed_tidies_the_name(typed: str, key: str, display_name: str) -> None:
    breed = Taxonomy.make_breed(typed)
    assert (breed.key, breed.display_name) == (key, display_name)
    assert breed.imagenet_index is None
    assert not breed.is_special


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "at least 2"),
        ("   ", "at least 2"),
        ("x", "at least 2"),
        ("Very " * 12 + "Long", "too long"),
        ("Bad\x00Name", "only contain letters"),
        ("Bell\x07", "only contain letters"),
        ("🐶🐶🐶", "only contain letters"),
        ("Doggo 🐶", "only contain letters"),
        ("K9 Unit", "only contain letters"),
        ("Dog_Name", "only contain letters"),
        ("<script>", "only contain letters"),
        ("- -", "only contain letters"),
        ("Кавказская овчарка", "Latin letters"),
    ],
)
def test_make_breed_refuses_junk(typed: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        Taxonomy.make_breed(typed)
    assert str(info.value).endswith(".")  # a sentence for the user, not a repr of their input


def test_breed_key_must_be_snake_case() -> None:
    with pytest.raises(ValueError):
        Breed(key="German Shepherd", display_name="German Shepherd")
    with pytest.raises(ValueError):
        Breed(key="kangal", display_name="  ")


def test_slugify() -> None:
    assert slugify("Bichon Frisé") == "bichon_frise"
    assert slugify("Český Terrier") == "cesky_terrier"
    assert slugify("Jack Russell's") == "jack_russells"
    assert slugify("  Soft-Coated  Wheaten ") == "soft_coated_wheaten"


def test_every_special_label_and_button_word_is_reserved() -> None:
    """No breed can be added under the key or name of a special label, in any language the bot speaks."""
    from dogbot.core.taxonomy import RESERVED_NAMES
    from storage.vocabulary import SPECIAL_LABELS as SPECIAL_KEYS

    taxonomy = Taxonomy()
    names = [*SPECIAL_KEYS, *(name for words in RESERVED_NAMES.values() for name in words)]
    for name in names:
        with pytest.raises(ValueError):
            taxonomy.with_breed(Breed(key=slugify(name), display_name=name.replace("_", " ").title()))
    assert taxonomy.with_breed(Taxonomy.make_breed("Skipperke Blue")).resolve("skipperke blue") is not None


# --- search by the start of a word (issue 14: "shep" and "german" found nothing) --------------------
@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("shep", "german_shepherd"),
        ("german", "german_shepherd"),
        ("bull terr", "bull_terrier"),
        ("retr", "golden_retriever"),
    ],
)
def test_suggest_finds_breeds_by_the_start_of_a_word(taxonomy: Taxonomy, text: str, key: str) -> None:
    assert key in [breed.key for breed, _ in taxonomy.suggest(text, limit=30)]


def test_a_word_shared_by_many_breeds_is_offered_never_guessed(taxonomy: Taxonomy) -> None:
    assert taxonomy.lookup("german") is None
    assert len(taxonomy.suggest("german", limit=10)) >= 4
    assert taxonomy.lookup("german shepard") == taxonomy.get("german_shepherd")
