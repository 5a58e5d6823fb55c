"""The token check, on the request's headers alone, before any of its body is read.

FastAPI resolves a route's dependencies after it has parsed the body (a JSON body whole into
memory, a multipart one spooled to disk), so a token checked by a dependency let a stranger make
the server read 45 MB of JSON or spool 760 MB to /tmp before answering 401. This middleware
answers 401 / 429 from the headers and never calls ``receive``: a stranger costs one database
look-up. The route's dependency only picks up the client found here.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from api.errors import ApiError, error_response, unavailable
from dogbot.core.api_clients import ApiClient

# Where the gate keeps the authenticated client for the route (api/server.py's ``client``).
CLIENT = "dogbot.client"


class TokenGate:
    """Pure ASGI middleware: every request whose path ``needs_token`` must carry a good one."""

    def __init__(
        self,
        app,
        *,
        needs_token: Callable[[str], bool],
        authenticate: Callable[[str | None], ApiClient],
    ) -> None:
        self.app = app
        self.needs_token = needs_token
        # Raises ApiError (401, 429); runs in a worker thread (one database round trip).
        self.authenticate = authenticate

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.needs_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        text = header.decode("latin-1") if header is not None else None
        try:
            scope[CLIENT] = await anyio.to_thread.run_sync(self.authenticate, text)
        except ApiError as refused:
            # Answered without reading the body; the server closes the connection after it.
            await error_response(refused.status, refused.code, refused.message, refused.headers)(
                scope, receive, send
            )
            return
        except Exception as error:
            failure = unavailable(error)
            if failure is None:
                raise
            await error_response(failure.status, failure.code, failure.message, failure.headers)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)
