"""Entry point of ``dogbot api``: wire the API's services from the composition root and serve them.

Several API processes and bot replicas share one database and photo store (README, "Deployment");
each API process serves the registry's champion and checks for a newer one every
``DOGBOT_CHAMPION_CHECK_SECONDS``, as the bot does.
"""

from __future__ import annotations

import contextlib
import logging

import uvicorn
from fastapi import FastAPI

from api.server import ApiServices, create_app
from dogbot.app import Container
from dogbot.core.api_clients import ApiClients
from dogbot.core.limits import SharedPerUserLimit

log = logging.getLogger(__name__)


def build_api(container: Container) -> FastAPI:
    settings = container.settings
    catalog = container.catalog  # loads the model now: the first request is as fast as the rest
    services = ApiServices(
        catalog=catalog,
        clients=ApiClients(container.engine, clock=container.clock),
        # In the database: every API process counts the same token's requests together.
        request_limit=SharedPerUserLimit(
            container.engine, settings.api_requests_per_minute, 60.0, kind="api"
        ),
        max_photos=settings.api_max_photos,
        refresh_champion=container.refresh_champion,
        champion_check_s=settings.champion_check_seconds,
    )
    return create_app(services)


def run_api(container: Container) -> int:
    """Serve until stopped (Ctrl-C, SIGTERM)."""
    settings = container.settings
    _return_big_blocks()
    app = build_api(container)
    log.info("web API on http://%s:%s", settings.api_host, settings.api_port)
    # One worker process: run more `dogbot api` processes (behind the load balancer) to scale out.
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_level="warning", access_log=False
    )
    server = ReadyServer(config, ready_line(settings.api_host, settings.api_port))
    server.run()
    return 0 if server.started else 1  # as uvicorn.run: a port in use is a failed start


def ready_line(host: str, port: int) -> str:
    """What `dogbot api` prints once it listens: where, and where its documentation is."""
    url = f"http://{host}:{port}"
    return f"web API listening on {url} (documentation: {url}/docs; Ctrl-C stops)"


class ReadyServer(uvicorn.Server):
    """uvicorn's server that prints one line once the socket listens (its own logs are off)."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self.line = line

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:  # False when the port was taken: uvicorn then says so and exits
            print(self.line, flush=True)


def _return_big_blocks() -> None:
    """Give a decoded photo's memory back to the system when it is freed.

    Requests run in a pool of threads and glibc gives each thread its own heap (arena), raising its
    mmap threshold as big blocks are freed: a 120 MB decode freed in eight threads stayed as 2 GB
    of resident memory though only one was ever decoded at a time (bench/README.md, "Web API
    memory"). A fixed 1 MB threshold maps every large block on its own and unmaps it on free.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
