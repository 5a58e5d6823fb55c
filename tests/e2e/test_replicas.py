"""Two `dogbot run` replicas in webhook mode behind a round-robin load balancer, as README step 2 runs them.

The replicas share one PostgreSQL schema and one S3 bucket (moto over HTTP) and nothing else: each
has its own data folder, so its own model folder. The fake Telegram server posts every update to the
load balancer (a small aiohttp proxy here), which hands them to the replicas in turn, so consecutive
updates, a photo sent twice or a double tap, are handled by different processes at the same moment.
Every photo must be stored once and answered, every press recorded once, the photo limit counted
across both replicas, and a model the worker promotes must be served by both without a restart,
its files coming out of the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import boto3
import pytest
from aiohttp import web
from fake_telegram import FakeTelegram, Sent, free_port
from sqlmodel import select

from jobs import registry
from storage.blobs import write_bytes_atomically
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import ModelVersion
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import ModelStatus

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ADMIN, STAFF, STAFF2, FLOODER = 1001, 2002, 2003, 2004
DOGBOT = Path(sys.executable).parent / "dogbot"
START_TIMEOUT = 120.0  # two processes importing torch and loading the model on a busy 2-core machine
ANSWER_TIMEOUT = 30.0
PHOTOS_PER_MINUTE = 5
HOOK_PATH = "/tg/hook"


@dataclass
class RoundRobin:
    """The load balancer: each update goes to the next replica in turn (to the other if one is down)."""

    backends: list[str]
    routed: dict[int, int] = field(default_factory=dict)  # update id -> index of the replica that took it
    _turn: itertools.count = field(default_factory=itertools.count)

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        first = next(self._turn)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for step in range(len(self.backends)):
                index = (first + step) % len(self.backends)
                try:
                    url = self.backends[index] + request.path_qs
                    async with http.post(url, data=body, headers=headers) as response:
                        status, answer = response.status, await response.read()
                except (aiohttp.ClientError, OSError):
                    continue
                if status == 200:
                    self.routed[json.loads(body)["update_id"]] = index
                return web.Response(status=status, body=answer)
        return web.Response(status=502)


@dataclass
class Replicas:
    server: FakeTelegram
    balancer: RoundRobin
    homes: list[Path]
    engine: object
    bucket: str
    s3_endpoint: str

    def rows(self, table) -> list:
        with open_session(self.engine) as session:
            return list(session.exec(select(table)))

    def model_dir(self, index: int) -> Path:
        return self.homes[index] / "data" / "models"

    async def photo(self, user_id: int, data: bytes, expect: str = "photo") -> tuple[int, Sent]:
        """``user_id`` sends a photo; the update id and the bot's answer quoting it."""
        since = len(self.server.sent)
        update_id = await self.server.send_photo(user_id, data)
        return update_id, await self.answer_to(user_id, update_id, expect, since=since)

    async def answer_to(self, user_id: int, update_id: int, expect: str, *, since: int) -> Sent:
        message_id = self.server.update(update_id)["message"]["message_id"]

        def quoting(s: Sent) -> bool:
            quoted = (s.message.get("reply_to_message") or {}).get("message_id")
            return s.chat_id == user_id and expect in s.text and quoted == message_id

        return await self.server.wait_for(quoting, timeout=ANSWER_TIMEOUT, since=since)

    async def messages_to(self, user_id: int, n: int, *, since: int) -> list[Sent]:
        """The first ``n`` messages the bot sends ``user_id`` after ``since``, waiting for them."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            found = [
                s for s in self.server.sent[since:] if s.chat_id == user_id and s.method.startswith("send")
            ]
            if len(found) >= n:
                return found[:n]
            assert time.monotonic() < deadline, f"{len(found)} of {n} answers:\n{self.server.transcript()}"
            await asyncio.sleep(0.1)

    async def press(self, user_id: int, message: Sent, label: str) -> str | None:
        """Press the button ``label`` on ``message`` as it is now; the toast shown."""
        update_id = await self.server.press_button(user_id, message, self.server.find_button(message, label))
        answered = await self.server.wait_for_answer(update_id, timeout=ANSWER_TIMEOUT)
        return answered.params.get("text")

    def s3_objects(self) -> list[str]:
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint)
        found = s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return [entry["Key"] for entry in found]


def dataset_photos(eval_data_dir: Path, n: int) -> list[bytes]:
    """``n`` ImageNet-breed photos, each of another breed: distinct dogs the model knows."""
    with (eval_data_dir / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["format"] == "JPEG" and not r["quirks"]]
    by_breed = {r["breed"]: r for r in rows if r["imagenet_overlap"] == "yes"}
    chosen = list(by_breed.values())[:n]
    assert len(chosen) == n, "not enough photos in the evaluation set"
    return [(eval_data_dir / r["path"]).read_bytes() for r in chosen]


@contextlib.asynccontextmanager
async def replicas(
    home: Path, postgres_url: str, s3_endpoint: str, bucket: str, n: int = 2
) -> AsyncIterator[Replicas]:
    ports = [free_port() for _ in range(n)]
    balancer = RoundRobin([f"http://127.0.0.1:{port}" for port in ports])
    processes: list[asyncio.subprocess.Process] = []
    async with contextlib.AsyncExitStack() as stack:
        lb = web.Application()
        lb.router.add_post("/{path:.*}", balancer.forward)
        runner = web.AppRunner(lb, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        lb_port = runner.addresses[0][1]
        engine = make_engine(postgres_url)  # the worker's side: it creates the schema, replicas find it
        stack.callback(engine.dispose)
        server = await stack.enter_async_context(FakeTelegram())
        stack.push_async_callback(_stop, processes)  # before the fake server goes away
        for index, port in enumerate(ports):
            replica_home = home / f"replica-{index}"
            replica_home.mkdir()
            env = {
                **os.environ,
                **server.bot_env,
                "DOGBOT_DATA_DIR": str(replica_home / "data"),
                "DOGBOT_DATABASE_URL": postgres_url,
                "DOGBOT_PHOTO_STORE": f"s3://{bucket}/photos",
                "DOGBOT_S3_ENDPOINT_URL": s3_endpoint,
                "DOGBOT_ADMIN_IDS": str(ADMIN),
                "DOGBOT_STAFF_IDS": f"{STAFF},{STAFF2},{FLOODER}",
                "DOGBOT_TORCH_THREADS": "1",
                "DOGBOT_WEBHOOK_URL": f"http://127.0.0.1:{lb_port}{HOOK_PATH}",
                "DOGBOT_WEBHOOK_LISTEN": "127.0.0.1",
                "DOGBOT_WEBHOOK_PORT": str(port),
                "DOGBOT_WEBHOOK_SECRET": "replicas-webhook-secret",
                "DOGBOT_CHAMPION_CHECK_SECONDS": "1",
                "DOGBOT_SHARED_RATE_LIMIT": "true",
                "DOGBOT_PHOTOS_PER_MINUTE": str(PHOTOS_PER_MINUTE),
            }
            log = stack.enter_context((replica_home / "bot.log").open("wb"))
            # cwd: the replica's own folder, so a developer's .env cannot leak in.
            processes.append(
                await asyncio.create_subprocess_exec(
                    str(DOGBOT), "-v", "run", env=env, cwd=replica_home, stdout=log, stderr=log
                )
            )
        homes = [home / f"replica-{i}" for i in range(n)]
        bot = Replicas(server, balancer, homes, engine, bucket, s3_endpoint)
        await _wait_until_ready(server, ports, processes, bot)
        yield bot
    for index, process in enumerate(processes):
        text = (home / f"replica-{index}" / "bot.log").read_text(errors="replace")
        assert process.returncode == 0, f"replica {index} exited with {process.returncode}:\n{text[-3000:]}"
        assert "Traceback" not in text, f"replica {index}:\n{text[-3000:]}"


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM, as an orchestrator stops a replica; killed if it has not exited 20 s later."""
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_until_ready(server: FakeTelegram, ports: list[int], processes, bot: Replicas) -> None:
    """Both replicas have set the webhook and listen (PTB sets the webhook before it listens)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for index, process in enumerate(processes):
            if process.returncode is not None:
                log = (bot.homes[index] / "bot.log").read_text(errors="replace")
                raise AssertionError(f"replica {index} exited with {process.returncode}:\n{log[-3000:]}")
        hooks = [call for call in server.calls_for("setWebhook") if call.ok]
        if len(hooks) >= len(ports) and all([await _listens(port) for port in ports]):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the replicas did not start within {START_TIMEOUT} s")


async def _listens(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_two_replicas_share_photos_presses_the_limit_and_new_models(
    tmp_path, postgres_url, s3_endpoint, s3_bucket, eval_data_dir, predictor
) -> None:
    photos = dataset_photos(eval_data_dir, 9)
    first_round, flood, later = photos[:6], photos[6], photos[7:]
    async with replicas(tmp_path, postgres_url, s3_endpoint, s3_bucket) as bot:
        server = bot.server

        # Three people send two photos each, then one sends a photo another already sent.
        since = len(server.sent)
        senders = [STAFF, STAFF2, ADMIN, STAFF, STAFF2, ADMIN]
        sent = [
            (user, await server.send_photo(user, data))
            for user, data in zip(senders, first_round, strict=True)
        ]
        answers = [await bot.answer_to(user, update_id, "🐕 Dog ", since=since) for user, update_id in sent]
        since = len(server.sent)
        sent.append((STAFF2, await server.send_photo(STAFF2, first_round[0])))
        answers.append(await bot.answer_to(STAFF2, sent[-1][1], "seen this photo before", since=since))
        assert {bot.balancer.routed[update_id] for _, update_id in sent} == {0, 1}, "both replicas served"
        assert len(bot.rows(Photo)) == len(first_round)

        # Each person answers each of their questions, tapping twice (Telegram clients resend a tap):
        # consecutive updates, so the two taps reach different replicas at the same moment.
        for (user, _), answer in zip(sent, answers, strict=True):
            key = (answer.chat_id, answer.message_id)
            if "Mixed breed" not in str(answer.buttons):  # "Wrong?" or "It is a dog" reopens the question
                reopen = next(b for b in answer.buttons if b[0] in ("Wrong?", "It is a dog"))
                await bot.press(user, answer, reopen[0])
                await server.wait_for(
                    lambda s, key=key: (s.chat_id, s.message_id) == key and "Mixed breed" in str(s.buttons),
                    timeout=ANSWER_TIMEOUT,
                )
            current = next(s for s in reversed(server.sent) if (s.chat_id, s.message_id) == key)
            button = server.find_button(current, "Mixed breed")
            taps = [await server.press_button(user, current, button) for _ in range(2)]
            toasts = [
                (await server.wait_for_answer(t, timeout=ANSWER_TIMEOUT)).params.get("text") for t in taps
            ]
            assert sorted(toasts) == ["Already saved.", "Saved: Mixed breed"], toasts
            assert {bot.balancer.routed[tap] for tap in taps} == {0, 1}
        people = [(label.photo_id, label.user_id) for label in bot.rows(Label) if label.user_id is not None]
        assert len(people) == len(set(people)) == len(sent)

        # One person floods with the same photo: the limit is counted across both replicas, not per
        # replica, and the photo, arriving at both at once, is stored once.
        if time.time() % 60 > 45:  # not across the limit's minute boundary
            await asyncio.sleep(61 - time.time() % 60)
        since = len(server.sent)
        floods = [await server.send_photo(FLOODER, flood) for _ in range(PHOTOS_PER_MINUTE + 1)]
        replies = await bot.messages_to(FLOODER, len(floods), since=since)
        assert sum("wait a moment" in reply.text for reply in replies) == 1, [r.text for r in replies]
        assert {bot.balancer.routed[update_id] for update_id in floods} == {0, 1}

        # The worker promotes a new model: a head that names the first breed for every dog, saved in
        # the worker's own folder. Neither replica has the file; both must load it from the database.
        head = predictor.base_head()
        head.bias[0] += 100.0
        worker_dir = tmp_path / "worker-models"
        now = datetime.now(UTC)
        with open_session(bot.engine) as session:
            session.add(
                ModelVersion(
                    version="lite0-v1",
                    backbone="lite0",
                    created_at=now,
                    artifact="lite0-v1.pt",
                    sha256=head.save(worker_dir / "lite0-v1.pt", write=write_bytes_atomically),
                    breed_keys=head.breed_keys,
                    status=ModelStatus.CANDIDATE,
                )
            )
            registry.store_artifact(session, "lite0-v1", worker_dir / "lite0-v1.pt")
            session.commit()
        assert not any((bot.model_dir(i) / "lite0-v1.pt").exists() for i in (0, 1))
        registry.promote(bot.engine, "lite0-v1", reason="test", actor="worker", now=now)
        deadline = time.monotonic() + 20
        while not all((bot.model_dir(i) / "lite0-v1.pt").is_file() for i in (0, 1)):
            assert time.monotonic() < deadline, "the replicas did not fetch the new champion"
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # fetched, then swapped in

        served = {}
        for user, data in zip((STAFF, ADMIN), later, strict=True):
            update_id, answer = await bot.photo(user, data, expect="🐕 Dog ")
            served[bot.balancer.routed[update_id]] = (hashlib.sha256(data).hexdigest(), answer)
        assert set(served) == {0, 1}, "one photo for each replica"
        by_sha = {p.sha256: p.id for p in bot.rows(Photo)}
        predictions = {p.photo_id: p for p in bot.rows(Prediction)}
        for sha, answer in served.values():
            prediction = predictions[by_sha[sha]]
            assert (prediction.model_version, prediction.breed) == ("lite0-v1", head.breed_keys[0])
            assert answer.chat_id in (STAFF, ADMIN)
        for i in (0, 1):
            cached = (bot.model_dir(i) / "lite0-v1.pt").read_bytes()
            assert cached == (worker_dir / "lite0-v1.pt").read_bytes()

        # Every photo once, in the database and in the bucket.
        everything = [*first_round, flood, *later]
        expected = sorted(hashlib.sha256(data).hexdigest() for data in everything)
        assert sorted(photo.sha256 for photo in bot.rows(Photo)) == expected
        assert sorted(key.rsplit("/", 1)[-1] for key in bot.s3_objects()) == expected
