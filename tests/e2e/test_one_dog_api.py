"""One dog, one true record through the web API and the CLI (issue 25), on SQLite and PostgreSQL:
a photo the catalog has answers 409 with its dog's code and stores nothing; `ingest --dog` over
photos already imported moves them without leaving empty dogs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from liveapi import live_api, rows

from storage.tables import CustomBreed, Dog, DogAudit, Photo

pytestmark = pytest.mark.slow


def ghosts(url: str) -> list[str]:
    shown = {p.dog_id for p in rows(url, Photo)}
    return [d.code for d in rows(url, Dog) if d.merged_into is None and d.id not in shown]


def files(*photos: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photo", (f"photo{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]


def test_a_known_photo_answers_409_with_its_dog_and_ingest_dog_leaves_no_empty_dog(
    tmp_path: Path, database_url, eval_data_dir
) -> None:
    data_dir = tmp_path / "data"
    url = database_url if not database_url.startswith("sqlite") else f"sqlite:///{data_dir / 'dogbot.db'}"
    beagles = sorted((eval_data_dir / "images" / "beagle").iterdir())[:4]
    one, two, three, four = (path.read_bytes() for path in beagles)
    with live_api(data_dir, database_url) as api:
        token = api.new_token("site")
        with api.client(token) as app:
            made = app.post("/v1/dogs", files=files(one, two), data={"name": "Max"})
            assert made.status_code == 201, made.text
            max_code = made.json()["code"]
            other = app.post("/v1/dogs", files=files(three)).json()["code"]
            dogs_before, photos_before = len(rows(url, Dog)), len(rows(url, Photo))

            again = app.post("/v1/dogs", files=files(four, two), data={"name": "Copy"})
            assert again.status_code == 409, again.text
            error = again.json()["error"]
            assert (error["code"], error["dog"]) == ("photo_in_other_dog", max_code)
            assert max_code in error["message"] and "Photo 2" in error["message"]
            wrong = app.post(f"/v1/dogs/{other}/photos", files=files(one))
            assert wrong.status_code == 409 and wrong.json()["error"]["dog"] == max_code
            # Nothing was stored for either: not the new photo, not a dog.
            assert (len(rows(url, Dog)), len(rows(url, Photo))) == (dogs_before, photos_before)
            # The photo's own dog takes it again without complaint.
            assert app.post(f"/v1/dogs/{max_code}/photos", files=files(one)).status_code == 200

            # Text from a client is cleaned at the edge: a NUL is never a 500 on PostgreSQL.
            clean = app.post("/v1/dogs", files=files(four), data={"name": "Lu\x00na\u202e\u200b"})
            assert clean.status_code == 201 and clean.json()["name"] == "Luna", clean.text
            assert app.get(f"/v1/dogs/{max_code}%00").json()["code"] == max_code
            typed = app.put(f"/v1/dogs/{max_code}/breed", json={"primary": "bea\u0000gle\u200b"})
            assert typed.status_code == 200 and typed.json()["breed"]["primary"] == "Beagle", typed.text

    # `ingest` files one dog per photo; `ingest --dog Luna` over the same files then moves them into
    # one dog, and the dogs it empties are removed (kept in audit rows), not left with 0 photos.
    folder = tmp_path / "luna"
    folder.mkdir()
    for i, data in enumerate(
        (four, *(p.read_bytes() for p in sorted((eval_data_dir / "images" / "pug").iterdir())[:2]))
    ):
        (folder / f"{i}.jpg").write_bytes(data)
    api.cli("ingest", str(folder))
    assert ghosts(url) == []
    done = api.cli("ingest", "--dog", "Luna", str(folder))
    assert "Luna" in done.stdout, done.stdout + done.stderr
    assert ghosts(url) == []
    luna = next(d for d in rows(url, Dog) if d.name == "Luna")
    assert len([p for p in rows(url, Photo) if p.dog_id == luna.id]) == 3
    assert {a.action for a in rows(url, DogAudit)} == {"removed_empty"} and len(rows(url, DogAudit)) == 2
    # Photos of a dog with other photos are refused by name, and stay.
    refused = api.cli("ingest", "--dog", "Other", str(data_dir.parent / "luna" / "0.jpg"), check=False)
    assert f"already in {luna.code}" in refused.stderr and ghosts(url) == []


def test_import_checks_every_breed_name_before_adding_any_and_groups_dogs_by_sub_folder(
    tmp_path: Path, database_url, eval_data_dir
) -> None:
    from liveapi import api_env

    data_dir = tmp_path / "data"
    url = database_url if not database_url.startswith("sqlite") else f"sqlite:///{data_dir / 'dogbot.db'}"
    env = api_env(data_dir, database_url)
    data_dir.mkdir()
    pugs = sorted((eval_data_dir / "images" / "pug").iterdir())[:3]
    archive = tmp_path / "archive"
    for folder, files_in in (("Kokoni", pugs[:1]), ("Skip", pugs[1:2]), ("Sí es un perro", pugs[2:3])):
        (archive / folder).mkdir(parents=True)
        for path in files_in:
            (archive / folder / path.name).write_bytes(path.read_bytes())

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "dogbot.cli", *args], capture_output=True, text=True, env=env
        )

    refused = cli("import", str(archive), "--add-breeds")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "“Skip”" in refused.stderr and "“Sí es un perro”" in refused.stderr
    assert rows(url, CustomBreed) == [] and rows(url, Photo) == []  # Kokoni was not added either

    # Without the button words: one dog per photo, except the photos of one sub-folder.
    for folder in ("Skip", "Sí es un perro"):
        for path in (archive / folder).iterdir():
            path.unlink()
        (archive / folder).rmdir()
    (archive / "pug" / "Rex").mkdir(parents=True)
    for path in pugs[1:3]:
        (archive / "pug" / "Rex" / path.name).write_bytes(path.read_bytes())
    done = cli("import", str(archive), "--add-breeds")
    assert done.returncode == 0, done.stderr
    assert "3 photos in 2 dogs" in done.stdout, done.stdout
    assert [b.display_name for b in rows(url, CustomBreed)] == ["Kokoni"]
    by_dog: dict[int, int] = {}
    for photo in rows(url, Photo):
        by_dog[photo.dog_id] = by_dog.get(photo.dog_id, 0) + 1
    assert sorted(by_dog.values()) == [1, 2] and ghosts(url) == []


def test_photos_changes_deletion_and_pages_for_a_shelters_site(
    tmp_path: Path, database_url, eval_data_dir
) -> None:
    data_dir = tmp_path / "data"
    url = database_url if not database_url.startswith("sqlite") else f"sqlite:///{data_dir / 'dogbot.db'}"
    beagles = [p.read_bytes() for p in sorted((eval_data_dir / "images" / "beagle").iterdir())[:5]]
    with live_api(data_dir, database_url) as api:
        token = api.new_token("site")
        with api.client(token) as app:
            rex = app.post("/v1/dogs", files=files(beagles[0], beagles[1]), data={"name": "Rex"}).json()
            codes = [rex["code"]] + [app.post("/v1/dogs", files=files(b)).json()["code"] for b in beagles[2:]]

            # The photos of a dog, as stored, in the order they came.
            second = app.get(f"/v1/dogs/{rex['code']}/photos/2")
            assert second.status_code == 200 and second.headers["content-type"] == "image/jpeg"
            assert second.content == beagles[1]
            assert app.get(f"/v1/dogs/{rex['code']}/photos/3").json()["error"]["code"] == "unknown_photo"

            # Change name, sex, age group, notes; what is left out stays; text is cleaned.
            changed = app.patch(
                f"/v1/dogs/{rex['code']}", json={"sex": "male", "notes": "Shy\u0000 with cats\u202e"}
            )
            assert changed.status_code == 200, changed.text
            body = changed.json()
            assert (body["name"], body["sex"], body["age_group"]) == ("Rex", "male", "unknown")
            assert next(d for d in rows(url, Dog) if d.code == rex["code"]).notes == "Shy with cats"
            assert app.patch(f"/v1/dogs/{rex['code']}", json={"sex": "cat"}).status_code == 422

            # Pages: newest first, next_offset until the last page.
            seen, offset = [], 0
            while offset is not None:
                page = app.get("/v1/dogs", params={"limit": 2, "offset": offset}).json()
                seen += [d["code"] for d in page["dogs"]]
                offset = page["next_offset"]
            assert seen == list(reversed(codes))

            # Delete a wrongly registered dog: gone from the API, kept in the audit, photos kept.
            gone = codes[-1]
            deleted = app.delete(f"/v1/dogs/{gone}")
            assert deleted.status_code == 200 and deleted.json() == {
                "code": gone,
                "deleted": True,
                "photos_kept": 1,
            }
            assert app.get(f"/v1/dogs/{gone}").status_code == 404
            (audit,) = [a for a in rows(url, DogAudit) if a.action == "deleted"]
            assert (
                audit.code == gone and "site" in audit.detail["why"] and audit.detail["dog"]["code"] == gone
            )
            assert len(rows(url, Photo)) == 5 and ghosts(url) == []
            # Its photo, sent again, makes a new dog (it was in none).
            again = app.post("/v1/dogs", files=files(beagles[-1]))
            assert again.status_code == 201 and again.json()["code"] not in codes
