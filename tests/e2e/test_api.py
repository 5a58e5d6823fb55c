"""The recognition web API end to end: ``dogbot api`` in its own process, spoken to over HTTP.

Everything the issue's "Done when" lists, on SQLite and on PostgreSQL: predict a real photo (nothing
stored); register a dog from two photos with a name and read it back; add a photo; correct the breed
and see the catalog's label change, given by the token's name; 401 without a token and with a
revoked one; 4xx JSON errors for a non-image, a truncated image, an empty body, a 30 MB body and a
crop outside the photo; an unsure dog waits in the bot's /review and every dog is in the asm3 export.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from liveapi import live_api, rows

from storage.db import make_engine
from storage.db import session as open_session
from storage.tables import Dog, Label, Photo

pytestmark = pytest.mark.slow


def files(*photos: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photo", (f"photo{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


def test_the_api_over_http(tmp_path: Path, database_url, dog_photos, eval_data_dir) -> None:
    data_dir = tmp_path / "data"
    url = database_url if not database_url.startswith("sqlite") else f"sqlite:///{data_dir / 'dogbot.db'}"
    beagles = sorted((eval_data_dir / "images" / "beagle").iterdir())[:3]
    one, two, three = (path.read_bytes() for path in beagles)
    with live_api(data_dir, database_url) as api:
        token = api.new_token("intake-app")
        with api.client() as anonymous, api.client(token) as app:
            health = anonymous.get("/v1/health")
            assert health.status_code == 200 and health.json() == {
                "status": "ok",
                "model_version": "lite0-v0",
            }

            # No token, a wrong one: 401, and nothing is read.
            assert error_of(anonymous.post("/v1/predict", files=files(one))) == (401, "unauthorized")
            with api.client("dogbot_nope") as stranger:
                assert error_of(stranger.get("/v1/dogs")) == (401, "unauthorized")

            # Predict a real photo, whole and cropped: the answer, and nothing stored.
            predicted = app.post("/v1/predict", files=files(dog_photos["sure"]))
            assert predicted.status_code == 200, predicted.text
            body = predicted.json()
            assert set(body) == {"is_dog", "breed", "confidence", "top", "model_version"}
            assert body["is_dog"] and body["breed"] == body["top"][0]["breed"] and body["confidence"] > 0.9
            cropped = app.post("/v1/predict", files=files(one), data={"crop": "10,10,200,150"})
            assert (
                cropped.status_code == 200
                and cropped.json()["top"] != app.post("/v1/predict", files=files(one)).json()["top"]
            )
            assert rows(url, Photo) == []

            # Register a dog from two photos with a name, and read it back.
            made = app.post(
                "/v1/dogs", files=files(one, two), data={"name": "Max", "sex": "male", "age_group": "adult"}
            )
            assert made.status_code == 201, made.text
            dog = made.json()
            assert dog["name"] == "Max" and dog["sex"] == "male" and len(dog["photos"]) == 2
            assert dog["status"] in ("registered", "needs_review") and dog["top"][0]["breed"]
            assert dog["code"].startswith(f"D-{datetime.now(UTC).year}-")
            read = app.get(f"/v1/dogs/{dog['code']}").json()
            assert read["code"] == dog["code"] and read["photos"] == dog["photos"]
            listed = app.get("/v1/dogs", params={"since": "2000-01-01T00:00:00Z", "limit": 5}).json()["dogs"]
            assert [d["code"] for d in listed] == [dog["code"]]

            # Add a photo: the dog has three, answered from all of them.
            added = app.post(f"/v1/dogs/{dog['code']}/photos", files=files(three))
            assert added.status_code == 200 and len(added.json()["photos"]) == 3

            # Correct the breed: the catalog's label changes, given by the token's name.
            corrected = app.put(f"/v1/dogs/{dog['code']}/breed", json={"primary": "Harrier"})
            assert corrected.status_code == 200, corrected.text
            after = app.get(f"/v1/dogs/{dog['code']}").json()
            assert after["breed"] == {
                "primary": "Harrier",
                "secondary": None,
                "mix": False,
                "confidence": None,
            }
            assert after["status"] == "registered"
            assert after["labelled_by"]["source"] == "api" and after["labelled_by"]["name"] == "intake-app"
            people = [label for label in rows(url, Label) if label.source == "api"]
            assert len(people) == 3 and {(lb.breed, lb.user_name) for lb in people} == {
                ("harrier", "intake-app")
            }
            export = csv.DictReader(io.StringIO(api.cli("export").stdout))
            assert {(r["label"], r["labeled_by"]) for r in export if r["dog_code"] == dog["code"]} == {
                ("Harrier", "intake-app")
            }
            mixed = app.put(f"/v1/dogs/{dog['code']}/breed", json={"primary": "beagle", "secondary": "Boxer"})
            assert mixed.json()["breed"] == {
                "primary": "Beagle",
                "secondary": "Boxer",
                "mix": True,
                "confidence": None,
            }
            assert error_of(app.put(f"/v1/dogs/{dog['code']}/breed", json={"primary": "Wolfhoundish"})) == (
                422,
                "unknown_breed",
            )
            assert error_of(app.get("/v1/dogs/D-1999-9999")) == (404, "unknown_dog")

            # Bad input: a clear 4xx JSON error, and nothing of that request stored.
            before = len(rows(url, Photo)), len(rows(url, Dog))
            truncated = one[: len(one) // 2]
            checks = {
                "not an image": (
                    app.post("/v1/predict", files=files(b"hello, not a photo")),
                    (422, "not_an_image"),
                ),
                "truncated": (app.post("/v1/predict", files=files(truncated)), (422, "truncated")),
                "truncated among two": (
                    app.post("/v1/dogs", files=files(two, truncated)),
                    (422, "truncated"),
                ),
                "empty body": (app.post("/v1/predict"), (400, "invalid_request")),
                "empty body, dogs": (app.post("/v1/dogs"), (400, "invalid_request")),
                "empty file": (app.post("/v1/predict", files=files(b"")), (422, "empty")),
                "30 MB": (
                    app.post("/v1/predict", files=files(b"\xff\xd8\xff" + bytes(30 * 1024 * 1024))),
                    (413, "body_too_large"),
                ),
                "crop outside": (
                    app.post("/v1/predict", files=files(one), data={"crop": "0,0,5000,10"}),
                    (422, "bad_crop"),
                ),
                "crop outside, dogs": (
                    app.post("/v1/dogs", files=files(one, two), data={"crop": ["", "-1,0,10,10"]}),
                    (422, "bad_crop"),
                ),
                "crop not numbers": (
                    app.post("/v1/predict", files=files(one), data={"crop": "left"}),
                    (422, "bad_crop"),
                ),
            }
            assert {what: error_of(response) for what, (response, _) in checks.items()} == {
                what: expected for what, (_, expected) in checks.items()
            }
            # Within a dog's larger body limit, a photo over 20 MB is refused by its size, in the bot's words.
            big = app.post("/v1/dogs", files=files(one, b"\xff\xd8\xff" + bytes(21 * 1024 * 1024)))
            assert error_of(big) == (413, "too_big")
            assert (
                big.json()["error"]["message"] == "photo 2: This file is too big (21 MB); the limit is 20 MB."
            )
            assert (len(rows(url, Photo)), len(rows(url, Dog))) == before
            # 30 MB sent in chunks, with no length declared: refused once the limit is passed.
            head = b'--zz\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n\r\n'
            chunks = (part for part in [head, *(b"x" * (1024 * 1024) for _ in range(30)), b"\r\n--zz--\r\n"])
            streamed = app.post(
                "/v1/predict", content=chunks, headers={"Content-Type": "multipart/form-data; boundary=zz"}
            )
            assert error_of(streamed) == (413, "body_too_large")

            # An unsure dog waits for staff: it is what /review asks about first.
            unsure = app.post("/v1/dogs", files=files(dog_photos["unsure"]), data={"name": "Bella"}).json()
            assert unsure["status"] == "needs_review" and unsure["breed"]["primary"] is None

            # Revoked: 401 from then on.
            api.cli("api-token", "revoke", "intake-app")
            assert error_of(app.get("/v1/dogs")) == (401, "unauthorized")
            listing = api.cli("api-token", "list").stdout
            assert "intake-app" in listing and "revoked" in listing

        asm3 = list(csv.DictReader(io.StringIO(api.cli("export", "--format", "asm3").stdout)))
        assert {(r["ANIMALCODE"], r["ANIMALNAME"]) for r in asm3} == {
            (dog["code"], "Max"),
            (unsure["code"], "Bella"),
        }
        assert "intake-app" in next(r for r in asm3 if r["ANIMALNAME"] == "Max")["ANIMALCOMMENTS"]
    review = _review_question(data_dir, database_url)
    assert review == unsure["code"]


def _review_question(data_dir: Path, database_url: str) -> str:
    """The dog whose photo the bot's /review asks staff about first, on the API's database."""
    import asyncio

    return asyncio.run(_ask_review(data_dir, database_url))


async def _ask_review(data_dir: Path, database_url: str) -> str:
    from conftest import ADMIN_ID, BOT_TOKEN, STAFF_ID, BotHarness, RecordingRequest

    from bot.app import build_application
    from dogbot.app import Container
    from dogbot.settings import Settings

    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url="" if database_url.startswith("sqlite") else database_url,
        telegram_token=BOT_TOKEN,
        admin_ids=[ADMIN_ID],
        staff_ids=[STAFF_ID],
    )
    container = Container(settings)
    request = RecordingRequest()
    application = build_application(container, request=request)
    harness = BotHarness(application, request, container)
    try:
        async with application:
            await application.start()
            await harness.send_text(STAFF_ID, "/review")
            await application.stop()
            await application.bot_data["services"].batcher.stop()
        question = harness.last_reply(STAFF_ID)  # the dog's card, asking (dog by dog)
        said = question.params.get("caption") or question.params["text"]
        assert said.startswith("🐕 Dog D-") and question.params.get("reply_markup"), question
        return said.split()[2]  # the dog's code
    finally:
        container.engine.dispose()


def test_limits_models_and_docs(tmp_path: Path, dog_photos, predictor) -> None:
    """Per-token rate limit (429, other tokens unaffected); a champion promoted elsewhere is served
    without a restart; the process never loads torch; /openapi.json and /docs describe the routes."""
    from jobs import registry
    from storage.blobs import write_bytes_atomically
    from storage.lifecycle_tables import ModelVersion
    from storage.vocabulary import ModelStatus

    data_dir = tmp_path / "data"
    with live_api(data_dir, api_requests_per_minute="4", champion_check_seconds="1") as api:
        first, second = api.new_token("kiosk"), api.new_token("website")
        with api.client(first) as kiosk, api.client(second) as website, api.client() as anonymous:
            if datetime.now(UTC).second > 50:  # the limit's window is the wall clock's minute
                time.sleep(61 - datetime.now(UTC).second)
            statuses = [kiosk.get("/v1/dogs").status_code for _ in range(5)]
            assert statuses == [200, 200, 200, 200, 429]
            refused = kiosk.get("/v1/dogs")
            assert error_of(refused) == (429, "rate_limited") and refused.headers["Retry-After"] == "60"
            assert website.get("/v1/dogs").status_code == 200

            schema = anonymous.get("/openapi.json").json()
            assert {
                "/v1/health",
                "/v1/predict",
                "/v1/dogs",
                "/v1/dogs/{code}",
                "/v1/dogs/{code}/photos",
            } <= set(schema["paths"])
            assert (
                "/v1/dogs/{code}/breed" in schema["paths"]
                and "put" in schema["paths"]["/v1/dogs/{code}/breed"]
            )
            assert anonymous.get("/docs").status_code == 200
            assert error_of(anonymous.get("/v2/nothing")) == (404, "not_found")

            # A new champion, promoted by another process: served within seconds, no restart.
            engine = make_engine(f"sqlite:///{data_dir / 'dogbot.db'}")
            head = predictor.base_head()
            head.bias[0] += 100.0  # names the first breed for every dog
            now = datetime.now(UTC)
            with open_session(engine) as session:
                session.add(
                    ModelVersion(
                        version="lite0-v1",
                        backbone="lite0",
                        created_at=now,
                        artifact="lite0-v1.pt",
                        sha256=head.save(tmp_path / "worker" / "lite0-v1.pt", write=write_bytes_atomically),
                        breed_keys=head.breed_keys,
                        status=ModelStatus.CANDIDATE,
                    )
                )
                registry.store_artifact(session, "lite0-v1", tmp_path / "worker" / "lite0-v1.pt")
                session.commit()
            registry.promote(engine, "lite0-v1", reason="test", actor="worker", now=now)
            engine.dispose()
            deadline = time.monotonic() + 30
            while anonymous.get("/v1/health").json()["model_version"] != "lite0-v1":
                assert time.monotonic() < deadline, "the API did not serve the new champion"
                time.sleep(0.2)
            answer = website.post("/v1/predict", files=files(dog_photos["sure"])).json()
            assert answer["model_version"] == "lite0-v1" and answer["breed"] == head_first_breed(head)

        # ONNX Runtime serves; torch would cost the API ~300 MB and seconds of start-up.
        libraries = Path(f"/proc/{api.pid}/maps").read_text()
        assert "onnxruntime" in libraries and "libtorch" not in libraries


def head_first_breed(head) -> str:
    from dogbot.core.taxonomy import Taxonomy

    return Taxonomy().get(head.breed_keys[0]).display_name


@pytest.mark.postgres
def test_two_api_processes_share_one_catalog(
    tmp_path: Path, postgres_url, s3_bucket, s3_endpoint, eval_data_dir
) -> None:
    """Step 2 of the deployment: two `dogbot api` processes, each with its own data folder, on one
    PostgreSQL schema and one bucket. Dogs registered through both at once get distinct codes and
    keep their photos; either reads what the other wrote; the token limit and a revocation hold
    across both."""
    import threading

    shared = {
        "photo_store": f"s3://{s3_bucket}/photos",
        "s3_endpoint_url": s3_endpoint,
        "api_requests_per_minute": "30",
    }
    photos = [path.read_bytes() for path in sorted((eval_data_dir / "images" / "boxer").iterdir())[:8]]
    with (
        live_api(tmp_path / "one", postgres_url, **shared) as one,
        live_api(tmp_path / "two", postgres_url, **shared) as two,
    ):
        token = one.new_token("shelter-app")
        codes: list[str] = []
        failures: list[str] = []

        def register(api, pair: list[bytes]) -> None:
            with api.client(token) as client:
                response = client.post("/v1/dogs", files=files(*pair))
            if response.status_code == 201:
                codes.append(response.json()["code"])
            else:
                failures.append(response.text)

        threads = [
            threading.Thread(target=register, args=(api, photos[2 * i : 2 * i + 2]))
            for i, api in enumerate([one, two, one, two])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [] and len(set(codes)) == 4
        with one.client(token) as first, two.client(token) as second:
            for code in codes:
                assert len(second.get(f"/v1/dogs/{code}").json()["photos"]) == 2
            second.put(f"/v1/dogs/{codes[0]}/breed", json={"primary": "Boxer"})
            seen = first.get(f"/v1/dogs/{codes[0]}").json()
            assert seen["breed"]["primary"] == "Boxer" and seen["labelled_by"]["name"] == "shelter-app"

            if datetime.now(UTC).second > 45:  # the limit's window is the wall clock's minute
                time.sleep(61 - datetime.now(UTC).second)
            answers = [api.get("/v1/dogs").status_code for api in (first, second) for _ in range(20)]
            assert answers.count(429) > 0 and answers.count(200) <= 30

            two.cli("api-token", "revoke", "shelter-app")
            assert first.get("/v1/health").status_code == 200
            assert error_of(first.get("/v1/dogs")) == (401, "unauthorized")
            assert error_of(second.get("/v1/dogs")) == (401, "unauthorized")
    stored = rows(postgres_url, Photo)
    assert len(stored) == 8 and len({photo.sha256 for photo in stored}) == 8
