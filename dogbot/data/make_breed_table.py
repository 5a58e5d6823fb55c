"""Write `imagenet_dog_breeds.json`, the built-in breed table, from the curated lists below.

Run after editing the lists (needs torchvision, which is installed with the project):

    .venv/bin/python -m dogbot.data.make_breed_table

The JSON is checked into git so that the bot reads its breed list without importing torchvision
at run time; a unit test fails when the JSON and this script disagree.

Why curate by hand: torchvision's ImageNet names are WordNet lemmas, not the names people use
("Boston bull", "Pekinese", "Lhasa", "malamute", "Brabancon griffon"). Staff see and type the
kennel-club names, so those are the display names, and every ImageNet name stays an alias.
Keys are derived from the display name once and must then never change: labels in the database
refer to them.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from dogbot.core.taxonomy import IMAGENET_DOG_INDICES, slugify

TABLE_PATH = Path(__file__).with_name("imagenet_dog_breeds.json")

# ImageNet index -> (display name, nicknames and other names people type). The torchvision name
# and an ASCII spelling of the display name are added as aliases automatically.
IMAGENET_BREEDS: dict[int, tuple[str, tuple[str, ...]]] = {
    151: ("Chihuahua", ()),
    152: ("Japanese Chin", ("Japanese spaniel", "chin")),
    153: ("Maltese", ("Maltese dog",)),
    154: ("Pekingese", ("Pekinese", "peke")),
    155: ("Shih Tzu", ("shihtzu",)),
    # A colour of the English toy / Cavalier King Charles spaniel that ImageNet treats as a class;
    # the Cavalier itself is a separate, non-ImageNet entry below.
    156: ("Blenheim Spaniel", ("Blenheim",)),
    157: ("Papillon", ("continental toy spaniel",)),
    158: ("Toy Terrier", ("English toy terrier",)),
    159: ("Rhodesian Ridgeback", ("ridgeback",)),
    160: ("Afghan Hound", ("afghan",)),
    161: ("Basset Hound", ("basset",)),
    162: ("Beagle", ()),
    163: ("Bloodhound", ()),
    164: ("Bluetick Coonhound", ("bluetick",)),
    165: ("Black and Tan Coonhound", ()),
    # WordNet's "Walker hound, Walker foxhound"; the Treeing Walker Coonhound is listed separately.
    166: ("Walker Hound", ("Walker foxhound",)),
    167: ("English Foxhound", ()),
    168: ("Redbone Coonhound", ("redbone",)),
    169: ("Borzoi", ("Russian wolfhound",)),
    170: ("Irish Wolfhound", ()),
    171: ("Italian Greyhound", ("iggy",)),
    172: ("Whippet", ()),
    173: ("Ibizan Hound", ()),
    174: ("Norwegian Elkhound", ("elkhound",)),
    175: ("Otterhound", ()),
    176: ("Saluki", ()),
    177: ("Scottish Deerhound", ("deerhound",)),
    178: ("Weimaraner", ()),
    179: ("Staffordshire Bull Terrier", ("staffy", "staffie", "staffordshire")),
    180: ("American Staffordshire Terrier", ("amstaff", "am staff")),
    181: ("Bedlington Terrier", ()),
    182: ("Border Terrier", ()),
    183: ("Kerry Blue Terrier", ("kerry blue",)),
    184: ("Irish Terrier", ()),
    185: ("Norfolk Terrier", ()),
    186: ("Norwich Terrier", ()),
    187: ("Yorkshire Terrier", ("yorkie",)),
    188: ("Wire Fox Terrier", ("wirehaired fox terrier", "wire haired fox terrier")),
    189: ("Lakeland Terrier", ()),
    190: ("Sealyham Terrier", ()),
    191: ("Airedale Terrier", ("airedale",)),
    192: ("Cairn Terrier", ("cairn",)),
    193: ("Australian Terrier", ()),
    194: ("Dandie Dinmont Terrier", ("Dandie Dinmont",)),
    195: ("Boston Terrier", ("Boston bull",)),
    196: ("Miniature Schnauzer", ("mini schnauzer",)),
    197: ("Giant Schnauzer", ()),
    198: ("Standard Schnauzer", ()),
    199: ("Scottish Terrier", ("Scotch terrier", "scottie", "scotty")),
    200: ("Tibetan Terrier", ()),
    201: ("Silky Terrier", ("Australian silky terrier",)),
    202: ("Soft-Coated Wheaten Terrier", ("wheaten terrier", "wheaten")),
    203: ("West Highland White Terrier", ("westie",)),
    204: ("Lhasa Apso", ("Lhasa",)),
    205: ("Flat-Coated Retriever", ("flatcoat", "flat coat")),
    206: ("Curly-Coated Retriever", ("curly coat",)),
    207: ("Golden Retriever", ("golden", "goldie")),
    208: ("Labrador Retriever", ("lab", "labrador", "labrador dog")),
    209: ("Chesapeake Bay Retriever", ("chessie",)),
    210: ("German Shorthaired Pointer", ("gsp", "German short haired pointer")),
    211: ("Vizsla", ("Hungarian vizsla",)),
    212: ("English Setter", ()),
    213: ("Irish Setter", ("red setter",)),
    214: ("Gordon Setter", ()),
    215: ("Brittany", ("Brittany spaniel",)),
    216: ("Clumber Spaniel", ("clumber",)),
    217: ("English Springer Spaniel", ("English springer", "springer spaniel", "springer")),
    218: ("Welsh Springer Spaniel", ()),
    # Udacity's "cocker spaniel" photos are mostly the American cocker; one class covers both.
    219: ("Cocker Spaniel", ("cocker", "American cocker spaniel", "English cocker spaniel")),
    220: ("Sussex Spaniel", ()),
    221: ("Irish Water Spaniel", ()),
    222: ("Kuvasz", ()),
    223: ("Schipperke", ()),
    224: ("Groenendael", ("Belgian sheepdog", "Belgian shepherd groenendael")),
    225: ("Belgian Malinois", ("malinois", "Belgian shepherd malinois")),
    226: ("Briard", ()),
    227: ("Australian Kelpie", ("kelpie",)),
    228: ("Komondor", ()),
    229: ("Old English Sheepdog", ("OES", "bobtail")),
    230: ("Shetland Sheepdog", ("sheltie",)),
    231: ("Rough Collie", ("collie", "Lassie")),
    232: ("Border Collie", ()),
    233: ("Bouvier des Flandres", ("bouvier",)),
    234: ("Rottweiler", ("rottie", "rotty")),
    235: ("German Shepherd", ("German shepherd dog", "gsd", "alsatian")),
    236: ("Doberman Pinscher", ("Doberman", "dobermann", "dobie")),
    237: ("Miniature Pinscher", ("min pin",)),
    238: ("Greater Swiss Mountain Dog", ("swissy",)),
    239: ("Bernese Mountain Dog", ("berner", "bernese")),
    240: ("Appenzeller Sennenhund", ("Appenzeller",)),
    241: ("Entlebucher Mountain Dog", ("Entlebucher", "Entlebucher Sennenhund")),
    242: ("Boxer", ()),
    243: ("Bullmastiff", ()),
    244: ("Tibetan Mastiff", ()),
    245: ("French Bulldog", ("frenchie",)),
    246: ("Great Dane", ()),
    247: ("Saint Bernard", ("St Bernard",)),
    # WordNet's "Eskimo dog, husky": the Arctic sled dog, today's Canadian Eskimo Dog. The spitz
    # called American Eskimo Dog is a different breed (listed below); plain "husky" means Siberian.
    248: ("Canadian Eskimo Dog", ("Eskimo dog", "Inuit sled dog", "qimmiq")),
    249: ("Alaskan Malamute", ("malamute", "mally")),
    250: ("Siberian Husky", ("husky", "sibe")),
    251: ("Dalmatian", ()),
    252: ("Affenpinscher", ("monkey terrier",)),
    253: ("Basenji", ()),
    254: ("Pug", ()),
    255: ("Leonberger", ("Leonberg",)),
    256: ("Newfoundland", ("newfie",)),
    257: ("Great Pyrenees", ("Pyrenean mountain dog", "pyr")),
    258: ("Samoyed", ("sammy",)),
    259: ("Pomeranian", ("pom",)),
    260: ("Chow Chow", ("chow",)),
    261: ("Keeshond", ()),
    262: ("Brabançon Griffon", ("Petit Brabançon", "Brussels griffon")),
    263: ("Pembroke Welsh Corgi", ("Pembroke", "corgi")),
    264: ("Cardigan Welsh Corgi", ("Cardigan",)),
    265: ("Toy Poodle", ()),
    266: ("Miniature Poodle", ("mini poodle",)),
    # An unqualified "poodle" is the standard: the breed standard's own name for that size, and what
    # the undersized toy and miniature are varieties of. Staff who know the size can say so.
    267: ("Standard Poodle", ("poodle",)),
    268: ("Xoloitzcuintli", ("Mexican hairless", "Mexican hairless dog", "xolo")),
    273: ("Dingo", ()),
    274: ("Dhole", ("Asian wild dog",)),
    275: ("African Wild Dog", ("African hunting dog", "painted dog", "African painted dog")),
}

# Breeds the base model has no class for, so staff can pick them from day one. The first group
# matches the dataset's other_breeds.csv; the second is breeds and crosses common in shelters.
OTHER_BREEDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Akita", ("Akita Inu", "American Akita")),
    ("American Bulldog", ()),
    ("American English Coonhound", ()),
    ("American Eskimo Dog", ("eskie",)),
    ("American Foxhound", ()),
    ("American Pit Bull Terrier", ("pit bull", "pit bull terrier", "pittie", "apbt")),
    ("American Water Spaniel", ()),
    ("Anatolian Shepherd Dog", ("Anatolian shepherd",)),
    ("Australian Cattle Dog", ("blue heeler", "red heeler", "heeler", "Queensland heeler")),
    ("Australian Shepherd", ("aussie",)),
    ("Australian Stumpy Tail Cattle Dog", ()),
    ("Azawakh", ()),
    ("Barbet", ()),
    ("Basset Fauve de Bretagne", ()),
    ("Bearded Collie", ("beardie",)),
    ("Beauceron", ()),
    ("Berger Picard", ()),
    ("Bichon Frisé", ("bichon",)),
    ("Black Russian Terrier", ()),
    ("Boerboel", ()),
    ("Bohemian Shepherd", ()),
    ("Bolognese", ()),
    ("Boykin Spaniel", ()),
    ("Bracco Italiano", ()),
    ("Braque du Bourbonnais", ()),
    ("Broholmer", ()),
    ("Bull Terrier", ("English bull terrier",)),
    ("Bulldog", ("English bulldog", "British bulldog")),
    ("Canaan Dog", ()),
    ("Carolina Dog", ()),
    ("Catahoula Leopard Dog", ("catahoula",)),
    ("Caucasian Shepherd Dog", ("Caucasian ovcharka",)),
    ("Cavalier King Charles Spaniel", ("cavalier", "ckcs")),
    ("Central Asian Shepherd Dog", ("alabai",)),
    ("Český Terrier", ()),
    ("Chinook", ()),
    ("Coton de Tulear", ()),
    ("Croatian Sheepdog", ()),
    ("Dachshund", ("doxie", "wiener dog", "weiner dog", "sausage dog", "teckel")),
    ("Dogo Argentino", ()),
    ("Dogue de Bordeaux", ("French mastiff",)),
    ("Drever", ()),
    ("Dutch Shepherd", ()),
    ("Estrela Mountain Dog", ()),
    ("Eurasier", ()),
    ("Field Spaniel", ()),
    ("Finnish Lapphund", ()),
    ("Finnish Spitz", ()),
    ("French Spaniel", ()),
    ("German Longhaired Pointer", ()),
    ("German Pinscher", ()),
    ("German Spitz", ()),
    ("German Wirehaired Pointer", ()),
    ("Glen of Imaal Terrier", ()),
    ("Grand Basset Griffon Vendéen", ()),
    ("Greyhound", ()),
    ("Hamiltonstövare", ()),
    ("Harrier", ()),
    ("Havanese", ()),
    ("Hokkaido", ()),
    ("Hovawart", ()),
    ("Icelandic Sheepdog", ()),
    ("Irish Red and White Setter", ()),
    ("Jagdterrier", ("German hunting terrier",)),
    ("Japanese Spitz", ()),
    ("Kai Ken", ()),
    ("Karelian Bear Dog", ()),
    ("Kromfohrländer", ()),
    ("Lagotto Romagnolo", ()),
    ("Lancashire Heeler", ()),
    ("Lapponian Herder", ()),
    ("Löwchen", ("little lion dog",)),
    ("Miniature American Shepherd", ("mini aussie",)),
    ("Miniature Bull Terrier", ()),
    ("Mountain Cur", ()),
    ("Mudi", ()),
    ("Neapolitan Mastiff", ()),
    ("Norrbottenspets", ()),
    ("Norwegian Buhund", ()),
    ("Norwegian Lundehund", ()),
    ("Nova Scotia Duck Tolling Retriever", ("toller",)),
    ("Parson Russell Terrier", ()),
    ("Perro de Presa Canario", ("presa canario",)),
    ("Petit Basset Griffon Vendéen", ("pbgv",)),
    ("Pharaoh Hound", ()),
    ("Plott Hound", ("plott",)),
    ("Polish Lowland Sheepdog", ()),
    ("Porcelaine", ()),
    ("Portuguese Podengo", ()),
    ("Portuguese Pointer", ()),
    ("Portuguese Water Dog", ("portie",)),
    ("Pudelpointer", ()),
    ("Pumi", ()),
    ("Pyrenean Mastiff", ()),
    ("Pyrenean Shepherd", ()),
    ("Rafeiro do Alentejo", ()),
    ("Rat Terrier", ()),
    ("Romanian Mioritic Shepherd Dog", ()),
    ("Russell Terrier", ()),
    ("Schapendoes", ()),
    ("Segugio Italiano", ()),
    ("Shiba Inu", ("shiba",)),
    ("Shikoku", ()),
    ("Skye Terrier", ()),
    ("Sloughi", ()),
    ("Slovenský Kopov", ()),
    ("Smooth Fox Terrier", ()),
    ("Spanish Mastiff", ()),
    ("Spanish Water Dog", ()),
    ("Stabyhoun", ()),
    ("Swedish Lapphund", ()),
    ("Swedish Vallhund", ()),
    ("Taiwan Dog", ()),
    ("Teddy Roosevelt Terrier", ()),
    ("Thai Ridgeback", ()),
    ("Tibetan Spaniel", ()),
    ("Tornjak", ()),
    ("Tosa", ("Tosa Inu",)),
    ("Toy Fox Terrier", ()),
    ("Transylvanian Hound", ()),
    ("Treeing Tennessee Brindle", ()),
    ("Treeing Walker Coonhound", ("treeing walker",)),
    ("Welsh Terrier", ()),
    ("Wetterhoun", ()),
    ("Wirehaired Pointing Griffon", ()),
    ("Wirehaired Vizsla", ()),
    ("Yakutian Laika", ()),
    # Common in shelters, not in the dataset.
    ("Labradoodle", ()),
    ("Goldendoodle", ("groodle",)),
    ("Cockapoo", ()),
    ("Jack Russell Terrier", ("Jack Russell", "jrt")),
    ("Cane Corso", ("Italian mastiff",)),
    ("Mastiff", ("English mastiff", "Old English mastiff")),
    ("American Bully", ()),
)


def build_table(categories: Sequence[str]) -> dict:
    """The JSON document, from torchvision's 1000 ImageNet category names."""
    if len(categories) != 1000:
        raise ValueError(f"expected 1000 ImageNet categories, got {len(categories)}")
    if sorted(IMAGENET_BREEDS) != list(IMAGENET_DOG_INDICES):
        raise ValueError("IMAGENET_BREEDS must cover exactly the indices in IMAGENET_DOG_INDICES")
    imagenet = [
        _entry(
            display, (categories[index], *aliases), imagenet_index=index, torchvision_name=categories[index]
        )
        for index, (display, aliases) in sorted(IMAGENET_BREEDS.items())
    ]
    other = sorted(
        (_entry(display, aliases) for display, aliases in OTHER_BREEDS), key=lambda entry: entry["key"]
    )
    return {
        "about": "Built-in dog breeds. Generated by make_breed_table.py; edit that script, not this file.",
        "categories_source": "torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta['categories']",
        "imagenet": imagenet,
        "other": other,
    }


def _entry(
    display_name: str,
    aliases: Sequence[str],
    *,
    imagenet_index: int | None = None,
    torchvision_name: str | None = None,
) -> dict:
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    names = [*aliases, ascii_name] if ascii_name != display_name else list(aliases)
    return {
        "key": slugify(display_name),
        "display_name": display_name,
        "imagenet_index": imagenet_index,
        "torchvision_name": torchvision_name,
        "aliases": list(dict.fromkeys(names)),  # de-duplicated, order kept
    }


def render(table: dict) -> str:
    """JSON with one breed per line, so that a change to one breed is a one-line diff."""

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{"]
    for name, value in table.items():
        if isinstance(value, list):
            entries = ",\n".join(f"  {dump(entry)}" for entry in value)
            lines.append(f" {dump(name)}: [\n{entries}\n ],")
        else:
            lines.append(f" {dump(name)}: {dump(value)},")
    lines[-1] = lines[-1].removesuffix(",")
    return "\n".join([*lines, "}"]) + "\n"


def imagenet_categories() -> list[str]:
    """torchvision ships the category names in code: no download, no weights."""
    from torchvision.models import EfficientNet_B0_Weights

    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def main() -> None:
    text = render(build_table(imagenet_categories()))
    # Written beside the target and renamed over it, so a failed run never leaves half a file.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=TABLE_PATH.parent, delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, TABLE_PATH)
    print(f"wrote {TABLE_PATH}")


if __name__ == "__main__":
    main()
