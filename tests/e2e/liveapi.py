"""The web API as it runs in production: ``dogbot api`` in its own process, on a loopback port.

Shared by tests/e2e/test_api.py and bench/bench_api.py. Tokens are made with the real CLI
(``dogbot api-token create``), whose last line of output is the token.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveApi:
    url: str
    env: dict[str, str]
    log: Path
    pid: int = 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "dogbot.cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=600,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def new_token(self, name: str) -> str:
        return self.cli("api-token", "create", name).stdout.strip().splitlines()[-1]

    def client(self, token: str | None = None, **options) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **options)


def api_env(data_dir: Path, database_url: str | None = None, **settings: str) -> dict[str, str]:
    env = {**os.environ, "DOGBOT_DATA_DIR": str(data_dir), "DOGBOT_TORCH_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.pop("DOGBOT_DATABASE_URL", None)
    if database_url and not database_url.startswith("sqlite"):
        env["DOGBOT_DATABASE_URL"] = database_url
    env.update({f"DOGBOT_{key.upper()}": value for key, value in settings.items()})
    return env


@contextlib.contextmanager
def live_api(data_dir: Path, database_url: str | None = None, **settings: str) -> Iterator[LiveApi]:
    """Start ``dogbot api`` and wait until /v1/health answers; stop it (SIGTERM) afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = api_env(data_dir, database_url, api_host="127.0.0.1", api_port=str(port), **settings)
    log = data_dir / "api.log"
    api = LiveApi(f"http://127.0.0.1:{port}", env, log)
    api.cli("db", "upgrade")  # the schema, and the serving model exported, before the server starts
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dogbot.cli", "api"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    api.pid = process.pid
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"dogbot api exited: {log.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{api.url}/v1/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"dogbot api did not answer: {log.read_text()}"
            time.sleep(0.2)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rows(url: str, table) -> list:
    """Every row of ``table`` in the catalog at ``url``, read as the API left it."""
    from sqlmodel import select

    from storage.db import make_engine
    from storage.db import session as open_session

    engine = make_engine(url)
    try:
        with open_session(engine) as session:
            return list(session.exec(select(table)))
    finally:
        engine.dispose()
