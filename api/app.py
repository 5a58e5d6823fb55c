"""Entry point of ``dogbot api``: wire the API's services from the composition root and serve them.

Several API processes and bot replicas share one database and photo store (README, "Deployment");
each API process serves the registry's champion and checks for a newer one every
``DOGBOT_CHAMPION_CHECK_SECONDS``, as the bot does.
"""

from __future__ import annotations

import logging

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
    import uvicorn

    settings = container.settings
    app = build_api(container)
    log.info("web API on http://%s:%s", settings.api_host, settings.api_port)
    # One worker process: run more `dogbot api` processes (behind the load balancer) to scale out.
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning", access_log=False)
    return 0
