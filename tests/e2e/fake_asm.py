"""A test double of Animal Shelter Manager 3's ``/service`` endpoint, over real HTTP, for CI.

It follows the rules of ASM3's own code as read in its source (sheltermanager/asm3, commit 625abaf:
``src/asm3/service.py``, ``csvimport.py``, ``animal.py``; checked against a real ASM3, see the README's
"Animal Shelter Manager"). Only what dogbot's sync touches is modelled, each rule as ASM has it:

* POST form fields; authenticated methods need ``username`` + ``password`` or ``key``; a wrong login
  answers HTTP 200 ``text/plain`` ``ERROR: Invalid username and password`` (``ERROR: Invalid API Key``).
* ``csv_import``: ``data`` is base64 CSV (utf-8-sig), read as ASM's own reader does
  (:func:`asm_csv_rows`: a doubled quote stays doubled). Lookups (species, type, breed) match the name
  stripped, lowercased, with ``'`` as a backtick; an unknown species, type or first breed becomes the
  default (Dog, "U (Unwanted Cat)", "Abyssinian"); an unknown second breed is dropped; the crossbreed
  flag is set when breed 2 is known and differs from breed 1. A row without ANIMALNAME is skipped.
  A new animal needs ANIMALDOB or 0 < ANIMALAGE <= 100, else "Estimated age '0.0' is not valid.".
  A row whose ANIMALCODE exists updates that animal (``checkduplicates``): only the comments and the
  date of birth change. ANIMALIMAGE (a ``data:image`` URI) is attached on every import; anything
  else is "WARN: unrecognised image content, ignoring". The answer is JSON ``{"rows", "success",
  "errors": [[rowno, row, message]]}``, HTTP 500 when a row failed.
* ``json_shelter_animals``: the animals, with ASM's key names.

Faults for tests: ``down`` (every request answers 503 with an HTML page, as a proxy in front of a
stopped ASM), ``hold`` (an import waits on an event after it has been applied, as ASM finishing a
request whose caller was killed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

DEFAULT_BREED = "Abyssinian"  # AFDefaultBreed 221 on a fresh database: a cat breed
DEFAULT_TYPE = "U (Unwanted Cat)"  # AFDefaultType 11
ANIMAL_TYPES = (
    "D (Dog)",
    "A (Stray Dog)",
    "U (Unwanted Cat)",
    "S (Stray Cat)",
    "M (Miscellaneous)",
    "F (Feral Cat)",
    "N (Non-Shelter Animal)",
    "B (Boarding Animal)",
)


def asm_csv_rows(text: str) -> list[dict[str, str]]:
    """CSV as ASM's own reader takes it (``asm3.utils.csv_parse``), not as Python's csv module does.

    Its rules: line ends are normalised to newlines; each quote character toggles "inside quotes";
    outside quotes a comma ends a cell and a newline ends a row; a cell loses one leading and one
    trailing quote and its surrounding spaces; a doubled quote inside a cell stays two quotes.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines: list[list[str]] = []
    cells: list[str] = []
    start, inside = 0, False
    for position in range(len(text) + 1):
        char = text[position] if position < len(text) else ""
        if char == '"':
            inside = not inside
        if inside and char:
            continue
        if char in (",", "\n", ""):
            cell = text[start:position]
            cell = cell[1:] if cell.startswith('"') else cell
            cell = cell[:-1] if cell.endswith('"') else cell
            cells.append(cell.strip())
            start = position + 1
        if char in ("\n", ""):
            if cells != [""]:
                lines.append(cells)
            cells = []
    if not lines:
        return []
    header, *body = lines
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=False)) for row in body]


def _fold(name: str) -> str:
    return name.strip().lower().replace("'", "`")


def _stock_breeds() -> dict[str, tuple[str, str]]:
    """ASM's default breed table: folded name -> (name, species), from dogbot's copy of it."""
    table = json.loads(resources.files("dogbot").joinpath("data/asm3_dog_breeds.json").read_text())
    breeds = {_fold(name): (name, "Dog") for name in table["dog_breeds"]}
    for species, names in table["other_species_breeds"].items():
        for name in names:
            breeds.setdefault(_fold(name), (name, species))
    return breeds


@dataclass
class Animal:
    id: int
    code: str
    name: str
    species: str
    animal_type: str
    sex: str
    breed1: str
    breed2: str | None
    crossbreed: bool
    date_of_birth: date
    estimated_dob: bool
    entry_date: str
    comments: str
    images: list[bytes] = field(default_factory=list)

    def as_service_json(self) -> dict:
        return {
            "ID": self.id,
            "SHELTERCODE": self.code,
            "ANIMALNAME": self.name,
            "SPECIESNAME": self.species,
            "ANIMALTYPENAME": self.animal_type,
            "SEXNAME": self.sex,
            "BREEDNAME1": self.breed1,
            "BREEDNAME2": self.breed2,
            "CROSSBREED": int(self.crossbreed),
            "DATEOFBIRTH": self.date_of_birth.isoformat() + "T00:00:00",
            "ESTIMATEDDOB": int(self.estimated_dob),
            "DATEBROUGHTIN": self.entry_date + "T00:00:00",
            "ANIMALCOMMENTS": self.comments,
            "WEBSITEMEDIAID": len(self.images) or None,
        }


class FakeAsm:
    """Start with :meth:`start`; ``url`` is the base URL (the service is ``url/service``)."""

    def __init__(self, *, username: str = "dogbot", password: str = "secret", key: str = "") -> None:
        self.username, self.password, self.key = username, password, key
        self.breeds = _stock_breeds()
        self.animals: dict[str, Animal] = {}
        self.imports = 0  # csv_import calls that reached the importer
        self.down = False
        self.hold: threading.Event | None = None  # set: imports wait for it after applying their rows
        self.lock = threading.Lock()
        self.today = date.today()
        self._server: ThreadingHTTPServer | None = None

    # --- server ---------------------------------------------------------------------------------
    def start(self) -> FakeAsm:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii"), keep_blank_values=True)
                status, content_type, body = fake.handle({k: v[0] for k, v in form.items()}, self.path)
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                # The caller may have been killed while ASM worked; ASM has done the work all the same.
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- the service ----------------------------------------------------------------------------
    def handle(self, form: dict[str, str], path: str) -> tuple[int, str, str]:
        if self.down:
            return 503, "text/html", "<html><body>503 Service Unavailable</body></html>"
        if not path.startswith("/service"):
            return 404, "text/html", "<html>Not found</html>"
        method = form.get("method", "")
        if form.get("key"):
            if form["key"] != self.key or not self.key:
                return 200, "text/plain", "ERROR: Invalid API Key"
        elif (form.get("username"), form.get("password")) != (self.username, self.password):
            return 200, "text/plain", "ERROR: Invalid username and password"
        if method == "csv_import":
            return self._csv_import(base64.b64decode(form.get("data", "")).decode("utf-8-sig"))
        if method == "json_shelter_animals":
            with self.lock:
                animals = [animal.as_service_json() for animal in self.animals.values()]
            return 200, "application/json", json.dumps(animals)
        return 200, "text/plain", f"ERROR: Invalid method '{method}'"

    def _csv_import(self, text: str) -> tuple[int, str, str]:
        rows = asm_csv_rows(text)
        errors: list[list] = []
        with self.lock:
            self.imports += 1
            for number, row in enumerate(rows, start=1):
                try:
                    self._import_row(row, number, errors)
                except ValueError as error:
                    errors.append([number, repr(self._squashed(row)), str(error)])
        if self.hold is not None:
            self.hold.wait(timeout=30)
        body = json.dumps({"rows": len(rows), "success": len(rows) - len(errors), "errors": errors})
        return (500 if errors else 200), "application/json", body

    def _import_row(self, row: dict[str, str], number: int, errors: list) -> None:
        name = row.get("ANIMALNAME", "")
        if name == "":
            return
        species = self._lookup(row.get("ANIMALSPECIES", ""), {"dog": "Dog", "cat": "Cat"}) or "Dog"
        animal_type = (
            self._lookup(row.get("ANIMALTYPE", ""), {_fold(t): t for t in ANIMAL_TYPES}) or DEFAULT_TYPE
        )
        breed1 = self._breed(row.get("ANIMALBREED1", "")) or DEFAULT_BREED
        breed2 = self._breed(row.get("ANIMALBREED2", ""))
        image = row.get("ANIMALIMAGE", "")
        if image and not image.startswith("data:image"):
            errors.append([number, repr(self._squashed(row)), "WARN: unrecognised image content, ignoring"])
            image = ""
        dob_text, age_text = row.get("ANIMALDOB", ""), row.get("ANIMALAGE", "")
        existing = self.animals.get(row.get("ANIMALCODE", ""))
        if existing is not None:
            # merge_animal_details(force=True): only fields it merges, only when given.
            if row.get("ANIMALCOMMENTS"):
                existing.comments = row["ANIMALCOMMENTS"]
            if dob_text:
                existing.date_of_birth = date.fromisoformat(dob_text)
            animal = existing
        else:
            if dob_text:
                dob, estimated = date.fromisoformat(dob_text), False
            else:
                age = float(age_text or 0)
                if age <= 0 or age > 100:
                    raise ValueError(f"Estimated age '{age}' is not valid.")
                dob, estimated = self.today - timedelta(days=int(age * 365)), True
            animal = Animal(
                id=len(self.animals) + 1,
                code=row.get("ANIMALCODE", ""),
                name=name,
                species=species,
                animal_type=animal_type,
                sex={"f": "Female", "m": "Male"}.get(row.get("ANIMALSEX", "u")[:1].lower(), "Unknown"),
                breed1=breed1,
                breed2=breed2 if breed2 else None,
                crossbreed=bool(breed2) and breed2 != breed1,
                date_of_birth=dob,
                estimated_dob=estimated,
                entry_date=row.get("ANIMALENTRYDATE", "") or self.today.isoformat(),
                comments=row.get("ANIMALCOMMENTS", ""),
            )
            self.animals[animal.code] = animal
        if image:
            animal.images.append(base64.b64decode(image.split(",", 1)[1]))

    def _breed(self, name: str) -> str:
        found = self.breeds.get(_fold(name)) if name.strip() else None
        return found[0] if found else ""

    @staticmethod
    def _lookup(name: str, table: dict[str, str]) -> str:
        return table.get(_fold(name), "") if name.strip() else ""

    @staticmethod
    def _squashed(row: dict[str, str]) -> dict[str, str]:
        return {**row, "ANIMALIMAGE": "data:,"} if row.get("ANIMALIMAGE", "").startswith("data") else row
