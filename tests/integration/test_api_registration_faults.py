"""A registration through the API that fails midway keeps nothing half-made (issue 25): the photos
it stored and the dog made for them go again, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import select

from storage.db import session
from storage.tables import Dog, DogAudit, DogGroup, Photo, Prediction


def test_a_registration_whose_later_photo_cannot_be_stored_leaves_no_dog_and_no_photo(
    tmp_path: Path, database_url, eval_data_dir, monkeypatch
) -> None:
    from api.app import build_api
    from dogbot.app import Container
    from dogbot.core.api_clients import ApiClients
    from dogbot.settings import Settings

    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url="" if database_url.startswith("sqlite") else database_url,
        telegram_token="",
    )
    container = Container(settings)
    try:
        app = build_api(container)
        token = ApiClients(container.engine).create("site")
        intake = container.catalog.intake
        store_photo, calls = intake.store_photo, []

        def failing_later(*args, **kwargs):  # the photo store breaks after the first photo
            calls.append(1)
            if len(calls) == 2:
                raise OSError("disk full")
            return store_photo(*args, **kwargs)

        monkeypatch.setattr(intake, "store_photo", failing_later)
        beagles = sorted((eval_data_dir / "images" / "beagle").iterdir())[:3]
        files = [("photo", (p.name, p.read_bytes(), "image/jpeg")) for p in beagles]
        with TestClient(app, raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            answer = client.post("/v1/dogs", files=files, data={"name": "Max"})
            assert answer.status_code == 500 and len(calls) == 2
            with session(container.engine) as s:
                assert s.exec(select(Photo)).all() == [] and s.exec(select(Prediction)).all() == []
                assert s.exec(select(Dog)).all() == [] and s.exec(select(DogGroup)).all() == []
                (audit,) = s.exec(select(DogAudit)).all()  # the dog's code is never given again
                assert audit.action == "abandoned"

            monkeypatch.setattr(intake, "store_photo", store_photo)
            again = client.post("/v1/dogs", files=files, data={"name": "Max"})  # nothing in the way
            assert again.status_code == 201, again.text
            assert again.json()["code"] != audit.code and len(again.json()["photos"]) == 3
    finally:
        container.engine.dispose()
