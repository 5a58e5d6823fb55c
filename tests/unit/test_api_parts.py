"""Pieces of the web API that need no server: crops, body limits, the refusal of a body too large."""

from __future__ import annotations

import asyncio
import json

import pytest
from PIL import Image

from api.errors import ApiError
from api.limits import BodyLimit
from api.server import _parse_crop
from ml.images import ImageRejected, crop_image, too_big


def test_a_crop_inside_the_photo_is_cut_and_one_outside_is_refused() -> None:
    photo = Image.new("RGB", (640, 480))
    assert crop_image(photo, (10, 20, 300, 200)).size == (300, 200)
    assert crop_image(photo, (0, 0, 640, 480)).size == (640, 480)
    for box in ((600, 0, 100, 10), (0, 0, 0, 10), (-1, 0, 10, 10), (0, 470, 10, 11)):
        with pytest.raises(ImageRejected) as refused:
            crop_image(photo, box)
        assert refused.value.code == "bad_crop" and "640x480" in refused.value.message


def test_crop_text_is_four_whole_numbers() -> None:
    assert _parse_crop(" 1, 2,3 ,4 ") == (1, 2, 3, 4)
    assert _parse_crop(None) is None and _parse_crop("  ") is None
    for text in ("1,2,3", "1,2,3,4,5", "a,b,c,d", "1.5,2,3,4"):
        with pytest.raises(ApiError) as refused:
            _parse_crop(text)
        assert refused.value.status == 422 and refused.value.code == "bad_crop"


def test_too_big_says_the_size_and_the_limit() -> None:
    assert too_big(31 * 1024 * 1024, 20 * 1024 * 1024).message == (
        "This file is too big (31 MB); the limit is 20 MB."
    )


def run_asgi(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, dict, int]:
    """Send a POST through ``app``; returns (status, JSON body, body bytes the app read)."""
    sent: list[dict] = []
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    read = 0

    async def receive():
        nonlocal read
        message = queue.pop(0)
        read += len(message["body"])
        return message

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": headers}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body), read


async def reads_everything(scope, receive, send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    limited = BodyLimit(reads_everything, limit_for=lambda path: 100)
    status, body, read = run_asgi(limited, [(b"content-length", b"5000")], [b"x" * 5000])
    assert (status, body["error"]["code"], read) == (413, "body_too_large", 0)
    # No length declared: refused at the chunk that passes the limit, the rest never read.
    status, body, read = run_asgi(limited, [], [b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert (status, body["error"]["code"], read) == (413, "body_too_large", 120)
    assert run_asgi(limited, [(b"content-length", b"100")], [b"x" * 100])[0] == 200
