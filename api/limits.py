"""Request body limits, enforced while the body arrives: a 30 MB upload is refused at its declared
length, or at the byte that crosses the limit, never read whole into memory or onto disk first."""

from __future__ import annotations

from collections.abc import Callable

from api.errors import BODY_TOO_LARGE, body_too_large


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the body passes its limit (the handler answers 413)."""


class BodyLimit:
    """Pure ASGI middleware; ``limit_for(path)`` is the most bytes a request to ``path`` may send."""

    def __init__(self, app, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Not read at all. The server closes the connection after answering (h11 does when a
            # body is left unread), so the client stops sending.
            await body_too_large(limit)(scope, receive, send)
            return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    scope[BODY_TOO_LARGE] = limit
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await body_too_large(limit)(scope, receive, send)
