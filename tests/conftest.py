"""Shared fixtures: where the real evaluation photos live, and how to read their manifests.

The photos stay in the shared dataset folder, outside the repository; tests that need them skip
with a clear reason when it is absent (a fresh clone, a CI runner without the dataset).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

# PTB 22 warns on flood-control errors unless this opts in to timedelta durations; with warnings
# as errors that warning would replace the RetryAfter the code under test handles.
os.environ.setdefault("PTB_TIMEDELTA", "1")

# The serving backbone (ml/runtime.py) is exported once, into a cache beside the repository, and every
# dogbot process the tests start finds it there through the environment (a fresh clone's first run
# exports it, about 20 s).
os.environ.setdefault(
    "DOGBOT_BACKBONE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "backbones")
)

# No developer's .env reaches a test: the dogbot processes the tests start would otherwise find the
# repository's own .env (the install's, dogbot.settings.env_file) from any folder they run in.
os.environ.setdefault("DOGBOT_ENV_FILE", os.devnull)

DEFAULT_EVAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "dogs"

ManifestReader = Callable[[str], list[dict[str, str]]]


def default_settings():
    """The deployment's defaults (no .env), for tests that build services by hand."""
    from dogbot.settings import Settings

    return Settings(_env_file=None)


def load_photo(data: bytes):
    """Decode photo bytes as the bot's intake does (Settings' size limits)."""
    from dogbot.app import intake_rules
    from ml.images import load_image

    rules = intake_rules(default_settings())
    return load_image(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)


def open_catalog(engine, photos, predictor, **options):
    """A Catalog with Settings' defaults, except what a test names: an intake rule
    (``auto_accept_threshold=...``), ``ask_rules``, ``lookalike_min_corrections``, ``lookalike_days``,
    ``exemplars`` or ``clock``."""
    from dogbot.app import ask_rules, dog_rules, exemplar_rules, intake_rules
    from dogbot.core.catalog import Catalog

    settings = default_settings()
    rules = intake_rules(settings)
    dogs = dog_rules(settings)  # shares the thresholds: a test's auto_accept_threshold applies to both
    rules = replace(rules, **{k: v for k, v in options.items() if hasattr(rules, k)})
    dogs = replace(dogs, **{k: v for k, v in options.items() if hasattr(dogs, k)})
    options = {k: v for k, v in options.items() if not hasattr(rules, k) and not hasattr(dogs, k)}
    return Catalog.open(
        engine,
        photos,
        predictor,
        rules=rules,
        dog_rules=dogs,
        ask_rules=options.pop("ask_rules", ask_rules(settings)),
        lookalike_min_corrections=options.pop(
            "lookalike_min_corrections", settings.lookalike_min_corrections
        ),
        lookalike_days=options.pop("lookalike_days", settings.lookalike_days),
        exemplars=options.pop("exemplars", exemplar_rules(settings)),
        **options,
    )


@pytest.fixture(scope="session")
def eval_data_dir() -> Path:
    """The labelled dog photos: $DOGBOT_EVAL_DATA, else ../shared/datasets/dogs beside the repo."""
    configured = os.environ.get("DOGBOT_EVAL_DATA")
    folder = Path(configured) if configured else DEFAULT_EVAL_DATA
    if not (folder / "manifest.csv").is_file():
        source = "DOGBOT_EVAL_DATA" if configured else "the default location"
        pytest.skip(f"evaluation photos not found at {folder} ({source}); set DOGBOT_EVAL_DATA")
    return folder.resolve()


@pytest.fixture(scope="session")
def shared_manifest(eval_data_dir: Path) -> ManifestReader:
    """Read a manifest CSV of the shared dataset (`manifest.csv`, `other_breeds.csv`) as dict rows.

    Columns are described in the dataset's README; `path` is relative to `eval_data_dir`.
    Skips the calling test when that CSV is missing.
    """

    def read(name: str) -> list[dict[str, str]]:
        path = eval_data_dir / name
        if not path.is_file():
            pytest.skip(f"{name} not found in {eval_data_dir}")
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    return read


# --- databases ----------------------------------------------------------------------------------
POSTGRES_URL = os.environ.get("DOGBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema_url() -> tuple[str, Callable[[], None]]:
    """A fresh schema in the test database, dropped afterwards; skip when no server answers."""
    import uuid

    import sqlalchemy

    schema = f"dogbot_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL}: {error.orig}")

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()

    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path):
    """Each storage test runs on SQLite (a file, WAL) and on PostgreSQL (its own schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dogbot.db'}"
        return
    url, drop = _postgres_schema_url()
    yield url
    drop()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL schema, for tests that only make sense there (mark them ``postgres``)."""
    url, drop = _postgres_schema_url()
    yield url
    drop()


# --- an S3-compatible object store ----------------------------------------------------------------
_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on a free port of 127.0.0.1 for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch) -> str:
    """A new empty bucket; credentials through the standard AWS variables, as in production."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    bucket = f"dogbot-test-{next(_buckets)}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


# --- the real model -----------------------------------------------------------------------------
@pytest.fixture
def one_torch_thread():
    """Two torch threads fighting other work for two busy cores are ~50x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def serving_backbone_dir() -> Path:
    """Where the exported Lite0 lives; exported before any test starts a dogbot process that needs it."""
    from ml.runtime import ensure_exported

    folder = Path(os.environ["DOGBOT_BACKBONE_DIR"])
    ensure_exported("lite0", folder)
    return folder


@pytest.fixture(scope="session")
def imagenet_breeds() -> list[tuple[int, str]]:
    from dogbot.core.taxonomy import Taxonomy

    return [(breed.imagenet_index, breed.key) for breed in Taxonomy().imagenet_breeds()]


@pytest.fixture(scope="session")
def predictor(serving_backbone_dir, imagenet_breeds):
    """The real pretrained Lite0 as served (ONNX Runtime), loaded once per test session."""
    from ml.predictor import Predictor

    return Predictor.pretrained("lite0", imagenet_breeds, backbone_dir=serving_backbone_dir)


@pytest.fixture(scope="session")
def torch_predictor(imagenet_breeds):
    """The same Lite0 in eager torch: the reference the served model is checked against."""
    from ml.backbone import TorchEncoder
    from ml.predictor import Predictor

    return Predictor(TorchEncoder("lite0"), imagenet_breeds)


@pytest.fixture
def make_catalog(tmp_path: Path, predictor):
    """Build a Catalog (see :func:`open_catalog`) on a given database URL with photos under a temp dir."""
    from storage.blobs import LocalPhotoStore
    from storage.db import make_engine

    engines = []

    def build(url: str | None = None, **options):
        engine = make_engine(url or f"sqlite:///{tmp_path / 'dogbot.db'}")
        engines.append(engine)
        predictor.use_head(predictor.base_head(), "lite0-v0")  # undo any test's head swap
        return open_catalog(engine, LocalPhotoStore(tmp_path / "photos"), predictor, **options)

    yield build
    for engine in engines:
        engine.dispose()


# --- the Telegram bot ----------------------------------------------------------------------------
# Handler tests run the real PTB Application with a recording request object instead of the network
# (``RecordingRequest``), push real ``Update`` objects through ``process_update`` and record every
# exception the handlers raise. End-to-end tests use tests/e2e/fake_telegram.py instead.
from telegram.request import BaseRequest  # noqa: E402

BOT_TOKEN = "123456789:TEST-token-for-handler-tests"
ADMIN_ID, STAFF_ID, STAFF2_ID, STRANGER_ID = 1001, 2002, 2003, 6666


@dataclass
class BotCall:
    method: str
    params: dict
    files: dict
    result: object = None  # what the fake Bot API answered (the message, for send/edit calls)


class RecordingRequest(BaseRequest):
    """A PTB request object that answers like the Bot API, records every call, and serves files."""

    def __init__(self) -> None:
        self.calls: list[BotCall] = []
        self.files: dict[str, bytes] = {}  # file_id (also its file_path) -> bytes
        self.messages: dict[int, dict] = {}  # the bot's messages as they are now, by message id
        self.failures: dict[tuple[str, int | None], tuple[int, str]] = {}  # (method, chat) -> error, once
        self._ids = itertools.count(500)

    @property
    def read_timeout(self) -> float:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url, method, request_data=None, **timeouts):
        if "/file/bot" in url:
            return 200, self.files[url.rsplit("/", 1)[1]]
        endpoint = url.rsplit("/", 1)[1]
        params = dict(request_data.parameters) if request_data else {}
        failure = self.failures.pop((endpoint, params.get("chat_id")), None)
        if failure is not None:
            self.calls.append(BotCall(endpoint, params, {}, None))
            status, description = failure
            return status, json.dumps(
                {"ok": False, "error_code": status, "description": description}
            ).encode()
        files = dict(request_data.multipart_data) if request_data and request_data.contains_files else {}
        call = BotCall(endpoint, params, files)
        call.result = self._result(endpoint, params)
        self.calls.append(call)
        return 200, json.dumps({"ok": True, "result": call.result}).encode()

    def _result(self, endpoint: str, params: dict):
        if endpoint == "getMe":
            return {"id": 123456789, "is_bot": True, "first_name": "Dogbot", "username": "dogbot_test_bot"}
        if endpoint == "getFile":
            file_id = params["file_id"]
            return {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_path": file_id,
                "file_size": len(self.files[file_id]),
            }
        if endpoint == "sendMediaGroup":  # one photo message per item of the album
            media = params["media"]
            return [
                self._message("sendPhoto", params)
                for _ in (json.loads(media) if isinstance(media, str) else media)
            ]
        if endpoint.startswith(("send", "edit")) and endpoint != "sendChatAction":
            return self._message(endpoint, params)
        return True

    def _message(self, endpoint: str, params: dict) -> dict:
        message_id = params.get("message_id") or next(self._ids)
        message = dict(self.messages.get(message_id, {}))
        message.update(
            message_id=message_id,
            date=int(time.time()),
            chat={"id": params.get("chat_id"), "type": "private"},
            **{"from": {"id": 123456789, "is_bot": True, "first_name": "Dogbot"}},
        )
        for key in ("text", "caption"):
            if key in params:
                message[key] = params[key]
        if "inline_keyboard" in params.get("reply_markup", {}):  # messages only carry inline keyboards
            message["reply_markup"] = params["reply_markup"]
        if endpoint.startswith("edit") and "reply_markup" not in params:
            message.pop("reply_markup", None)  # an edit without a keyboard removes it, as on Telegram
        if endpoint == "sendPhoto":
            message["photo"] = [{"file_id": "sent", "file_unique_id": "sent", "width": 1, "height": 1}]
        if endpoint == "sendDocument":
            message["document"] = {"file_id": "doc", "file_unique_id": "doc", "file_name": "export.csv"}
        self.messages[message_id] = message
        return message


class BotHarness:
    """Users talking to the real Application: build updates, process them, read what the bot did."""

    def __init__(self, application, request, container) -> None:
        self.app, self.request, self.container = application, request, container
        self.errors: list[BaseException] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    @property
    def catalog(self):
        return self.container.catalog

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[BotCall]:
        return [
            c
            for c in self.request.calls
            if (method is None or c.method == method)
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def replies(self, chat_id: int) -> list[BotCall]:
        """Messages, photos and documents sent to ``chat_id`` (not chat actions or edits)."""
        return [
            c for c in self.sent(chat_id=chat_id) if c.method in ("sendMessage", "sendPhoto", "sendDocument")
        ]

    def last_reply(self, chat_id: int) -> BotCall:
        found = self.replies(chat_id)
        assert found, f"the bot sent nothing to {chat_id}; calls: {[c.method for c in self.request.calls]}"
        return found[-1]

    @staticmethod
    def buttons(call: BotCall) -> dict[str, str]:
        markup = call.params.get("reply_markup") or {}
        return {b["text"]: b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row}

    def _user(self, user_id: int) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}

    def _message(self, user_id: int, **content) -> dict:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": self._user(user_id),
            **content,
        }

    async def push(self, payload: dict) -> None:
        from telegram import Update

        update = Update.de_json({"update_id": next(self._update_ids), **payload}, self.app.bot)
        await self.app.process_update(update)
        await self.drain()

    async def drain(self) -> None:
        """Wait for the handlers PTB runs as tasks (block=False) and the tasks they started."""
        current = asyncio.current_task()
        for _ in range(200):
            pending = [
                t
                for t in asyncio.all_tasks()
                if t is not current
                and not t.done()
                and "batcher" not in t.get_name()
                and (
                    "process_update_non_blocking" in t.get_name()
                    or "dogbot" in t.get_name()
                    or "process_error" in t.get_name()
                )
            ]
            if not pending:
                return
            await asyncio.wait(pending, timeout=30)

    async def send_text(self, user_id: int, text: str, reply_to: dict | None = None) -> None:
        content: dict = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        await self.push({"message": self._message(user_id, **content)})

    def add_file(self, data: bytes) -> str:
        file_id = f"f{len(self.request.files) + 1}"
        self.request.files[file_id] = data
        return file_id

    def photo_content(self, data: bytes) -> dict:
        file_id = self.add_file(data)
        return {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": file_id,
                    "width": 100,
                    "height": 100,
                    "file_size": len(data),
                }
            ]
        }

    async def send_photo(self, user_id: int, data: bytes, **extra) -> None:
        await self.push({"message": self._message(user_id, **self.photo_content(data), **extra)})

    async def send_document(
        self, user_id: int, data: bytes, file_name: str, mime_type: str, file_size: int | None = None
    ) -> None:
        file_id = self.add_file(data)
        document = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": file_size if file_size is not None else len(data),
        }
        await self.push({"message": self._message(user_id, document=document)})

    async def send(self, user_id: int, **content) -> None:
        await self.push({"message": self._message(user_id, **content)})

    async def press(self, user_id: int, call: BotCall, data: str) -> None:
        """``user_id`` presses a button with ``data`` on the message ``call`` sent (as it is now)."""
        query = {
            "id": str(next(self._update_ids)),
            "from": self._user(user_id),
            "chat_instance": "ci",
            "message": self.message_of(call),
            "data": data,
        }
        await self.push({"callback_query": query})

    def message_of(self, call: BotCall) -> dict:
        """The message a send call created, in its current state (after edits)."""
        return self.request.messages[call.result["message_id"]]

    def answers(self) -> list[BotCall]:
        return self.sent("answerCallbackQuery")


@pytest.fixture
def bot_settings() -> dict:
    """More settings for the handler tests' container: a test module overrides this fixture."""
    return {}


@pytest.fixture
def bot_container(tmp_path: Path, predictor, bot_settings):
    """A Container on a temp data dir with the session's model and fixed admin/staff ids."""
    from dogbot.app import Container
    from dogbot.settings import Settings

    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        telegram_token=BOT_TOKEN,
        admin_ids=[ADMIN_ID],
        staff_ids=[STAFF_ID, STAFF2_ID],
        batch_window_ms=5,
        # No spot checks unless a test asks: a random tenth of sure answers would ask again.
        **{"spot_check_share": 0.0, **bot_settings},
    )
    container = Container(settings)
    predictor.use_head(predictor.base_head(), "lite0-v0")
    container.predictor = predictor  # cached_property: the instance attribute wins
    yield container
    container.engine.dispose()


@pytest.fixture
async def bot(bot_container):
    """The real bot Application over a recording request; fails the test if a handler raised."""
    from bot.app import build_application

    request = RecordingRequest()
    application = build_application(bot_container, request=request)
    harness = BotHarness(application, request, bot_container)

    async def record(update, context) -> None:
        harness.errors.append(context.error)

    application.add_error_handler(record)
    async with application:
        await application.start()  # non-blocking handlers need a running application
        yield harness
        await application.stop()
        await application.bot_data["services"].batcher.stop()
    assert not harness.errors, f"handlers raised: {harness.errors!r}"


@pytest.fixture(scope="session")
def dog_photos(eval_data_dir: Path, predictor) -> dict[str, bytes]:
    """Real photos the model is sure about ("sure"), unsure about ("unsure"), and a non-dog ("not_dog")."""
    with (eval_data_dir / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["format"] == "JPEG" and not row["quirks"]]
    predictor.use_head(predictor.base_head(), "lite0-v0")
    # Photos from outside ImageNet are where the model hesitates; cats are clearly not dogs.
    wanted = {
        # Clearly not a dog: below Settings.not_a_dog_below, so filed without a question.
        "not_dog": ([r for r in rows if r["breed"] == "not_a_dog"], lambda o: o.dog_probability < 0.02),
        "sure": ([r for r in rows if r["imagenet_overlap"] == "yes"], lambda o: o.top(1)[0][1] > 0.9),
        "unsure": (
            [r for r in rows if r["imagenet_overlap"] == "no" and r["breed"] != "not_a_dog"],
            lambda o: o.dog_probability > 0.9 and o.top(1)[0][1] < 0.5,
        ),
    }
    found: dict[str, bytes] = {}
    for kind, (candidates, fits) in wanted.items():
        for start in range(0, min(len(candidates), 64), 8):
            batch = [(eval_data_dir / row["path"]).read_bytes() for row in candidates[start : start + 8]]
            outputs = predictor.predict([load_photo(data) for data in batch])
            match = next((data for data, output in zip(batch, outputs, strict=True) if fits(output)), None)
            if match is not None:
                found[kind] = match
                break
        else:
            pytest.skip(f"no {kind!r} photo among the first candidates in {eval_data_dir}")
    return found
