"""The web API against strangers and bad days (issue 26), over HTTP to a real ``dogbot api``.

Strangers are refused on the headers, before any body is read; every route's body is capped by
what it can carry; full-size decodes wait for the process's decode slots and past the queue get
503 with Retry-After; a locked database or an unwritable photo store answers 503 saying so and
keeps nothing; /v1/ready checks what /v1/health does not; /openapi.json tells the truth (Bearer,
every error in the error schema) and a property-based run of it finds no 5xx and no answer that
breaks it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from liveapi import live_api
from PIL import Image
from sqlmodel import select

from storage.db import make_engine
from storage.db import session as open_session
from storage.tables import Dog, Photo

pytestmark = pytest.mark.slow


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send ``head`` and part of a body that never ends; the answer must come without the rest."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while not _complete(answer):
            chunk = connection.recv(65536)  # a server waiting for the body times this out
            if not chunk:
                break
            answer += chunk
        return answer


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def photo_png(megapixels: float) -> bytes:
    side = int((megapixels * 1_000_000) ** 0.5)
    out = io.BytesIO()
    Image.new("RGB", (side, side), (120, 90, 60)).save(out, "PNG")
    return out.getvalue()


def test_strangers_and_oversized_bodies_are_refused_on_the_headers(tmp_path: Path) -> None:
    # Each answer must come while the body is still unsent: a server that reads (or spools) the
    # body first never answers, and the socket read times out.
    with live_api(tmp_path / "data") as api:
        token = api.new_token("kiosk")
        breed = "PUT /v1/dogs/D-1/breed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        # A stranger declaring 45 MB, and one sending chunks without end: 401 at once, nothing read.
        assert status_of(raw_request(api.url, breed + "Content-Length: 47185920\r\n", b"{" * 1000)) == 401
        chunked = "POST /v1/dogs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        chunked += "Content-Type: multipart/form-data; boundary=b\r\n"
        assert status_of(raw_request(api.url, chunked, b"10000\r\n" + b"x" * 65536)) == 401

        # With a token, a breed answer is capped at a few KB: refused at its declared length...
        authorized = f"Authorization: Bearer {token}\r\n"
        answer = raw_request(api.url, breed + authorized + "Content-Length: 5000000\r\n", b"{")
        assert status_of(answer) == 413 and b"body_too_large" in answer
        # ...or at the first chunk past the cap when no length is declared.
        chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(6))
        answer = raw_request(
            api.url,
            breed.replace("Content-Type", "Transfer-Encoding: chunked\r\nContent-Type") + authorized,
            chunks,
        )
        assert status_of(answer) == 413 and b"body_too_large" in answer
        # A real answer still fits.
        with api.client(token) as app:
            assert error_of(app.put("/v1/dogs/D-1/breed", json={"primary": "Beagle"})) == (404, "unknown_dog")


def test_full_size_decodes_wait_for_a_slot_and_past_the_queue_answer_503(tmp_path: Path) -> None:
    big = photo_png(39.7)  # ~120 MB decoded, a few hundred KB sent
    with live_api(
        tmp_path / "data", decode_slots="1", api_decode_queue="1", api_requests_per_minute="0"
    ) as api:
        token = api.new_token("kiosk")
        answers: list[httpx.Response] = []

        def send() -> None:
            with api.client(token) as app:
                answers.append(app.post("/v1/predict", files=[("photo", ("big.png", big, "image/png"))]))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    # One decoding and one waiting are served; the rest are told to come back, not queued.
    assert statuses.count(200) >= 2 and set(statuses) == {200, 503}, statuses
    busy = [answer for answer in answers if answer.status_code == 503]
    assert all(error_of(answer) == (503, "busy") for answer in busy)
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in busy)


def test_a_locked_database_answers_503_within_its_timeout(tmp_path: Path, database_url) -> None:
    data_dir = tmp_path / "data"
    with live_api(data_dir, database_url, db_busy_timeout_s="1", db_lock_timeout_s="1") as api:
        token = api.new_token("kiosk")
        with api.client(token) as app, _locked(database_url, data_dir):
            refused = app.get("/v1/dogs")
        assert error_of(refused) == (503, "database_locked"), refused.text
        assert "locked" in refused.json()["error"]["message"] and "Retry-After" in refused.headers
        with api.client(token) as app:  # and it serves again once the lock is gone
            assert app.get("/v1/dogs").status_code == 200


@contextlib.contextmanager
def _locked(database_url: str, data_dir: Path):
    """Another writer holding the table every token request writes (the request counter)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(data_dir / "dogbot.db", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    import psycopg

    url, _, schema = database_url.partition("?options=-csearch_path%3D")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        if schema:
            connection.execute(f"SET search_path TO {schema}")
        connection.execute("LOCK TABLE ratewindow IN ACCESS EXCLUSIVE MODE")
        yield
        connection.rollback()


def _mount(*args: str) -> bool:
    return (
        shutil.which("mount") is not None
        and subprocess.run(["mount", *args], capture_output=True).returncode == 0
    )


def test_an_unwritable_photo_store_answers_503_and_keeps_nothing(tmp_path: Path, dog_photos) -> None:
    photos = tmp_path / "data" / "photos"
    photos.mkdir(parents=True)
    if not _mount("-t", "tmpfs", "-o", "size=8k", "tmpfs", str(photos)):
        pytest.skip("needs to mount a small tmpfs (root in a container that allows it)")
    url = f"sqlite:///{tmp_path / 'data' / 'dogbot.db'}"
    try:
        with live_api(tmp_path / "data") as api:
            token = api.new_token("intake")
            files = [("photo", ("a.jpg", dog_photos["sure"], "image/jpeg"))]
            with api.client(token) as app, api.client() as anonymous:
                # Full: the photo is bigger than the 8 KB the store has.
                assert error_of(app.post("/v1/dogs", files=files)) == (503, "photo_store_full")
                assert _mount("-o", "remount,ro", str(photos))
                refused = app.post("/v1/dogs", files=files)
                assert error_of(refused) == (503, "photo_store_read_only"), refused.text
                assert "read-only" in refused.json()["error"]["message"]
                not_ready = anonymous.get("/v1/ready")
                assert error_of(not_ready) == (503, "not_ready") and "photo_store" in not_ready.text
                assert anonymous.get("/v1/health").status_code == 200  # alive, only not ready
        engine = make_engine(url)
        with open_session(engine) as session:
            assert list(session.exec(select(Dog))) == [] and list(session.exec(select(Photo))) == []
        engine.dispose()
    finally:
        subprocess.run(["umount", str(photos)], check=False)


def test_the_contract_is_complete_and_holds_under_generated_requests(tmp_path: Path) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    with live_api(tmp_path / "data", api_requests_per_minute="0") as api:
        token = api.new_token("contract")
        with api.client() as anonymous:
            schema = anonymous.get("/openapi.json").json()
            page = anonymous.get("/docs").text
            # /docs works offline: every script and style it loads is served by the API itself.
            assets = [part.split('"')[0] for part in page.split('src="')[1:] + page.split('href="')[1:]]
            assert assets and all(asset.startswith("/docs/assets/") for asset in assets), assets
            assert all(anonymous.get(asset).status_code == 200 for asset in assets)

        assert schema["components"]["securitySchemes"] == {
            "HTTPBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a token from `dogbot api-token create NAME`",
            }
        }
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                open_route = path in ("/v1/health", "/v1/ready")
                assert ("security" in operation) != open_route, (method, path)
                if not open_route:
                    assert {"401", "429", "503"} <= set(operation["responses"]), (method, path)
                for status, response in operation["responses"].items():
                    if int(status) >= 400:
                        assert response["content"]["application/json"]["schema"] == {
                            "$ref": "#/components/schemas/ErrorBody"
                        }, (method, path, status)
        assert "HTTPValidationError" not in schema["components"]["schemas"]

        # Generated requests of every operation: no 5xx, and every answer as the schema says.
        loaded = schemathesis.openapi.from_dict(schema)
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
        headers = {"Authorization": f"Bearer {token}"}
        for result in loaded.get_all_operations():
            operation = result.ok()

            @settings(
                max_examples=15,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case) -> None:
                case.call_and_validate(base_url=api.url, headers=headers, checks=checks, timeout=60)

            run()
