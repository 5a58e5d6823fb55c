"""The HTTP layer: routes that read a request, call the catalog, and answer JSON.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run time,
and the token dependency is defined inside :func:`create_app`.

Handlers are plain ``def``: FastAPI runs them in its thread pool, where the model (ONNX Runtime,
which releases the GIL) and the database calls belong. A request's photos are all checked (decoded,
cropped) before anything is stored, so a 4xx answer means nothing of that request was kept; a
request that passes is stored exactly as if staff had sent the photos to the bot (unsure answers
wait in the chat's /review).

Before a route runs, two middlewares look at the headers only: the token (api/gate.py) and the
body's size (api/limits.py), so a stranger or an oversized body costs no memory and no disk. Every
full-size decode holds one of the process's decode slots (``DecodeSlots``, shared with intake), so
memory follows the slots, not the number of requests.
"""

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import fastapi_offline
from fastapi import Depends, FastAPI, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image

from api import errors
from api.errors import ApiError
from api.gate import CLIENT, TokenGate
from api.limits import BodyLimit
from api.schemas import (
    BreedAnswer,
    Deleted,
    Dog,
    DogChanges,
    DogList,
    ErrorBody,
    Health,
    Prediction,
    Ready,
    dog_of,
    prediction_of,
)
from dogbot.core.api_clients import ApiClient, ApiClients
from dogbot.core.catalog import Catalog
from dogbot.core.dogs import NewDog, UnknownDog
from dogbot.core.intake import Incoming, receive
from dogbot.core.labelling import UnknownBreed
from dogbot.core.limits import SharedPerUserLimit
from dogbot.core.text import clean_text
from ml.images import ImageRejected, crop_image, too_big
from storage.blobs import sha256_of
from storage.db import ping
from storage.vocabulary import MIXED_BREED, AgeGroup, LabelSource, Sex

log = logging.getLogger(__name__)

# Multipart framing around the photos (boundaries, headers, the small form fields).
_FORM_OVERHEAD = 256 * 1024
# A breed answer is three short fields (about a hundred bytes); room for long names and whitespace.
_JSON_BODY = 4096
# Swagger UI's scripts and styles, shipped in a package: /docs works offline, with no CDN.
_DOCS_ASSETS = os.path.join(os.path.dirname(fastapi_offline.__file__), "static")
_OPEN_PATHS = frozenset({"/v1/health", "/v1/ready"})

_REASONS = {
    400: "no body, or a body that is not what the route reads",
    401: "no token, or a token that is unknown or revoked",
    404: "no dog has this code",
    409: "a photo is already in another dog (error.dog is its code); nothing was stored",
    413: "the body, a photo or its pixels are over the limits",
    422: "a field, photo or crop that is not valid",
    429: "over the token's requests a minute (see Retry-After)",
    500: "a bug on the server (it is logged)",
    503: "busy (see Retry-After), or the database or photo store cannot be written now",
}


def _errors(*statuses: int) -> dict:
    """OpenAPI ``responses`` for the error statuses a route can answer, all in the one error schema."""
    return {status: {"model": ErrorBody, "description": _REASONS[status]} for status in statuses}


# What every token route can answer besides its own errors.
_TOKEN = (401, 429, 500, 503)


@dataclass(frozen=True)
class ApiServices:
    """What the routes need, wired by the entry point (api/app.py)."""

    catalog: Catalog
    clients: ApiClients
    request_limit: SharedPerUserLimit
    max_photos: int
    # Serve a champion promoted elsewhere (the registry in the database); called every champion_check_s.
    refresh_champion: Callable[[], bool] = lambda: False
    champion_check_s: float = 60.0

    @property
    def max_photo_bytes(self) -> int:
        return self.catalog.intake.rules.max_bytes

    def body_limit(self, path: str) -> int:
        """The most bytes a request to ``path`` can legitimately carry (refused past it: 413)."""
        path = path.rstrip("/")
        if path == "/v1/predict":
            return self.max_photo_bytes + _FORM_OVERHEAD
        if path == "/v1/dogs" or path.endswith("/photos"):
            return self.max_photos * self.max_photo_bytes + _FORM_OVERHEAD
        return _JSON_BODY


def create_app(services: ApiServices) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        task = asyncio.create_task(_watch_champion(services))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="dogbot recognition API",
        version="1",
        description="Register a shelter's new arrivals from an app or a website: photos in, breed out. "
        "Every route but /v1/health needs `Authorization: Bearer TOKEN` (an admin makes one with "
        "`dogbot api-token create NAME` or /apitoken NAME in the chat). Every error is "
        '`{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        docs_url=None,  # served below from packaged assets
        redoc_url=None,
    )
    errors.install(app)
    catalog = services.catalog
    name_of = catalog.breeds.breed_name

    def authenticate(authorization: str | None) -> ApiClient:
        """The token's client, counted against its request limit; 401 or 429 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "unauthorized",
                "Send 'Authorization: Bearer TOKEN'; an admin makes a token with `dogbot api-token "
                "create NAME`.",
                {"WWW-Authenticate": "Bearer"},
            )
        found = services.clients.authenticate(token.strip())
        if found is None:
            raise ApiError(
                401,
                "unauthorized",
                "This token is unknown or was revoked; ask an admin for a new one.",
                {"WWW-Authenticate": "Bearer"},
            )
        if not services.request_limit.allow(found.token_id):
            limit = services.request_limit.limit
            raise ApiError(
                429,
                "rate_limited",
                f"Over {limit} requests a minute for this token; wait and send again.",
                {"Retry-After": str(int(services.request_limit.window_s))},
            )
        return found

    # Middlewares run outermost last-added first: the token before the body's size.
    app.add_middleware(BodyLimit, limit_for=services.body_limit)
    app.add_middleware(
        TokenGate,
        needs_token=lambda path: path.startswith("/v1/") and path.rstrip("/") not in _OPEN_PATHS,
        authenticate=authenticate,
    )
    bearer = HTTPBearer(auto_error=False, description="a token from `dogbot api-token create NAME`")

    def client(
        request: Request, _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiClient:
        """The client TokenGate found (``bearer`` puts the scheme in /openapi.json: /docs' Authorize)."""
        found = request.scope.get(CLIENT)
        if found is None:  # a token route the gate did not cover: refuse rather than serve a stranger
            raise ApiError(
                401, "unauthorized", "Send 'Authorization: Bearer TOKEN'.", {"WWW-Authenticate": "Bearer"}
            )
        return found

    Client = Annotated[ApiClient, Depends(client)]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
        )

    app.mount("/docs/assets", StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")

    @app.get("/v1/health", response_model=Health)
    def health() -> Health:
        """Alive (liveness: the process answers), and which model answers. No token needed."""
        return Health(model_version=catalog.intake.predictor.model_version)

    @app.get("/v1/ready", response_model=Ready, responses=_errors(503))
    def ready() -> Ready | JSONResponse:
        """Ready to serve: the database answers, the photo store takes a write, the model predicts."""
        checks = {
            "database": _check(lambda: _database_check(catalog)),
            "photo_store": _check(lambda: _photo_store_check(catalog)),
            "model": _check(lambda: _model_check(catalog)),
        }
        failed = {name: why for name, why in checks.items() if why != "ok"}
        if failed:
            message = "; ".join(f"{name}: {why}" for name, why in failed.items())
            return errors.error_response(503, "not_ready", message, {"Retry-After": "30"})
        return Ready(model_version=catalog.intake.predictor.model_version, checks=checks)

    @app.post("/v1/predict", response_model=Prediction, responses=_errors(400, 413, 422, *_TOKEN))
    def predict(
        _client: Client,
        photo: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, ...)")],
        crop: Annotated[str | None, Form(description="x,y,w,h in the photo's pixels")] = None,
    ) -> Prediction:
        """The breed of one photo (or the part ``crop`` frames). Stores nothing."""
        data, box = _read(photo, services.max_photo_bytes), _parse_crop(crop)
        with catalog.intake.decode_slots.hold():
            image = _checked(catalog, data, box)
            model_input = catalog.intake.predictor.prepare(image)  # 0.6 MB: the model runs on this
            del image  # before the slot is free: requests wait for decodes, not for each other's models
        output = catalog.intake.predictor.predict([model_input])[0]
        return prediction_of(output, dog_threshold=catalog.intake.rules.dog_threshold, name_of=name_of)

    @app.post("/v1/dogs", response_model=Dog, status_code=201, responses=_errors(400, 409, 413, 422, *_TOKEN))
    def register_dog(
        who: Client,
        photo: Annotated[list[UploadFile], File(description="one or more photos of the one dog")],
        name: Annotated[str | None, Form()] = None,
        sex: Annotated[Sex | None, Form()] = None,
        age_group: Annotated[AgeGroup | None, Form()] = None,
        crop: Annotated[
            list[str] | None, Form(description="x,y,w,h per photo, in order ('' for none)")
        ] = None,
    ) -> Dog:
        """A new dog from its photos; answered from all of them, as the bot answers an album."""
        incoming = _incoming(catalog, photo, crop, services, who)
        _refuse_known(catalog, incoming, None)
        _put_bytes(catalog, incoming)  # a store that cannot be written fails here, before the dog exists
        # The dog is made in the transaction that stores its first photo; a request that fails after
        # storing some of its photos takes them and the dog away again: nothing half-made stays.
        new_dog = NewDog(
            source=LabelSource.API,
            group=f"api:{uuid.uuid4().hex}",
            sender_id=who.user_id,
            name=name,
            sex=sex,
            age_group=age_group,
        )
        try:
            _store(catalog, [Incoming(**item, new_dog=new_dog) for item in incoming])
        except BaseException as error:
            shas = [sha256_of(item["data"]) for item in incoming]
            catalog.dogs.abandon(new_dog.group, shas, why=f"registration failed: {type(error).__name__}")
            raise
        dog = catalog.dogs.group_dog(new_dog.group)
        return dog_of(catalog.dogs.answer(dog.id), name_of=name_of)

    @app.get("/v1/dogs/{code}", response_model=Dog, responses=_errors(404, 422, *_TOKEN))
    def get_dog(_client: Client, code: str) -> Dog:
        """One dog, as the catalog holds it now (a merged dog's old code finds the one kept)."""
        return dog_of(catalog.dogs.answer(_dog(catalog, code).id), name_of=name_of)

    @app.get("/v1/dogs", response_model=DogList, responses=_errors(422, *_TOKEN))
    def list_dogs(
        _client: Client,
        since: Annotated[
            datetime | None, Query(description="ISO-8601; dogs that came in at or after it")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        # Bounded: a database's OFFSET is a 64-bit integer, and no catalog holds a billion dogs.
        offset: Annotated[
            int, Query(ge=0, le=1_000_000_000, description="dogs to skip: the previous page's next_offset")
        ] = 0,
    ) -> DogList:
        """The newest dogs first, a page at a time (``next_offset`` leads to the next page)."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        dogs = catalog.dogs.recent(limit + 1, since=since, offset=offset)
        more = len(dogs) > limit
        return DogList(
            dogs=[dog_of(catalog.dogs.answer(d.id), name_of=name_of) for d in dogs[:limit]],
            next_offset=offset + limit if more else None,
        )

    @app.get(
        "/v1/dogs/{code}/photos/{number}",
        response_class=Response,
        responses={200: {"content": {"image/*": {}}, "description": "the photo as stored"}}
        | _errors(404, 422, *_TOKEN),
    )
    def dog_photo(_client: Client, code: str, number: Annotated[int, Path(ge=1, le=1_000_000)]) -> Response:
        """A dog's photo: ``number`` 1 is the first that came in, as the dog's ``photos`` list them."""
        dog = _dog(catalog, code)
        try:
            photo, data = catalog.dogs.photo_bytes_of(dog.id, number)
        except IndexError as error:
            raise ApiError(404, "unknown_photo", f"Dog {dog.code} has no photo {number}: {error}.") from None
        media = f"image/{(photo.format or 'jpeg').lower()}"
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400"})

    @app.patch("/v1/dogs/{code}", response_model=Dog, responses=_errors(400, 404, 413, 422, *_TOKEN))
    def change_dog(_client: Client, code: str, changes: DogChanges) -> Dog:
        """Change a dog's name, sex, age group or notes; a field left out stays as it is."""
        dog = _dog(catalog, code)
        catalog.dogs.set_details(
            dog.id, name=changes.name, sex=changes.sex, age_group=changes.age_group, notes=changes.notes
        )
        return dog_of(catalog.dogs.answer(dog.id), name_of=name_of)

    @app.delete("/v1/dogs/{code}", response_model=Deleted, responses=_errors(404, 422, *_TOKEN))
    def delete_dog(who: Client, code: str) -> Deleted:
        """Remove a wrongly registered dog. The record is kept in the audit log (with the token's
        name); its photos stay in the catalog, in no dog, and start a new dog if sent again."""
        dog = _dog(catalog, code)
        photos = len(catalog.dogs.photos_of(dog.id))
        catalog.dogs.delete(dog.id, user_id=who.user_id, why=f"DELETE by API client {who.name}")
        return Deleted(code=dog.code, photos_kept=photos)

    @app.post(
        "/v1/dogs/{code}/photos", response_model=Dog, responses=_errors(400, 404, 409, 413, 422, *_TOKEN)
    )
    def add_photos(
        who: Client,
        code: str,
        photo: Annotated[list[UploadFile], File(description="more photos of this dog")],
        crop: Annotated[list[str] | None, Form()] = None,
    ) -> Dog:
        """More photos of a dog; its answer is made again from all of them."""
        dog = _dog(catalog, code)
        incoming = _incoming(catalog, photo, crop, services, who)
        _refuse_known(catalog, incoming, dog.id)
        _put_bytes(catalog, incoming)
        _store(catalog, [Incoming(**item, dog_id=dog.id) for item in incoming])
        return dog_of(catalog.dogs.answer(dog.id), name_of=name_of)

    @app.put("/v1/dogs/{code}/breed", response_model=Dog, responses=_errors(400, 404, 413, 422, *_TOKEN))
    def set_breed(who: Client, code: str, answer: BreedAnswer) -> Dog:
        """The token's owner says which breed the dog is: it counts as one person's label."""
        dog = _dog(catalog, code)
        primary, secondary = _breed_key(catalog, answer.primary), _breed_key(catalog, answer.secondary)
        mix = answer.mix or secondary is not None
        if primary is None and not mix:
            raise ApiError(
                422, "invalid_request", "Give 'primary' (a breed), or 'mix': true for an unknown mix."
            )
        try:
            catalog.dogs.record_label(
                dog.id,
                MIXED_BREED if mix else primary,
                source=LabelSource.API,
                user_id=who.user_id,
                user_name=who.name,
                primary=primary if mix else None,
                secondary=secondary if mix else None,
            )
        except UnknownBreed as error:
            raise ApiError(422, "unknown_breed", str(error)) from None
        return dog_of(catalog.dogs.answer(dog.id), name_of=name_of)

    @app.exception_handler(404)
    async def not_found(_request, _error) -> JSONResponse:
        return errors.error_response(404, "not_found", "No such route; see /docs for the API's routes.")

    return app


async def _watch_champion(services: ApiServices) -> None:
    while True:
        await asyncio.sleep(services.champion_check_s)
        try:
            await asyncio.to_thread(services.refresh_champion)
        except Exception:  # the database may be away for a moment: keep serving, try next time
            log.exception("checking for a new champion failed")


def _read(upload: UploadFile, max_bytes: int, index: int | None = None) -> bytes:
    """The upload's bytes; one over the limit is refused by its size, without reading it."""
    if upload.size is not None and upload.size > max_bytes:
        raise errors.image_error(too_big(upload.size, max_bytes), index)
    return upload.file.read(max_bytes + 1)  # a size the server did not know: the decoder refuses it


def _parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        box = tuple(int(part.strip()) for part in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise ApiError(422, "bad_crop", f"crop must be x,y,w,h: four whole numbers of pixels, not {text!r}.")
    return box  # type: ignore[return-value]


def _checked(catalog: Catalog, data: bytes, crop, index: int | None = None):
    """The decoded (and cropped) photo, or the bot's reason for refusing it as a 4xx."""
    try:
        image = catalog.intake.decode(data)
        return crop_image(image, crop) if crop is not None else image
    except ImageRejected as rejected:
        raise errors.image_error(rejected, index) from None


def _incoming(catalog: Catalog, photos: list[UploadFile], crops, services: ApiServices, who: ApiClient):
    """Read and check every photo of a request before any is stored."""
    if len(photos) > services.max_photos:
        raise ApiError(413, "too_many_photos", f"At most {services.max_photos} photos in one request.")
    crops = crops or []
    if crops and len(crops) != len(photos):
        raise ApiError(
            422,
            "bad_crop",
            f"{len(crops)} crop fields for {len(photos)} photos: give one per photo, or none.",
        )
    items = []
    for index, upload in enumerate(photos):
        where = index if len(photos) > 1 else None
        data = _read(upload, services.max_photo_bytes, where)
        crop = _parse_crop(crops[index]) if crops else None
        with catalog.intake.decode_slots.hold():  # decoded again when stored; dropped before the next
            _checked(catalog, data, crop, where)
        items.append({"data": data, "crop": crop, "sender_id": who.user_id, "file_name": upload.filename})
    return items


def _refuse_known(catalog: Catalog, items: list[dict], dog_id: int | None) -> None:
    """409 before anything is stored when a photo is already another dog's: the web client hears
    which dog it is in (a second registration of one animal, or a photo sent for the wrong dog)."""
    for index, item in enumerate(items):
        found = catalog.dogs.dog_of_photo_bytes(item["data"])
        if found is not None and found.id != dog_id:
            where = f"Photo {index + 1}" if len(items) > 1 else "The photo"
            raise ApiError(
                409,
                "photo_in_other_dog",
                f"{where} is already in dog {found.code}; nothing was stored. "
                f"Add photos to that dog with POST /v1/dogs/{found.code}/photos.",
                dog=found.code,
            )


def _put_bytes(catalog: Catalog, items: list[dict]) -> None:
    """Every photo's bytes into the store before any row (intake finds them there and skips the write)."""
    for item in items:
        try:
            catalog.intake.photos.put(item["data"])
        except OSError as error:
            raise errors.unavailable(error, what="photo store") or error from None


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as error:  # the reason is the answer
        log.warning("readiness check failed: %s", error)
        failure = errors.unavailable(error)
        return failure.message.split(";")[0] if failure is not None else f"{type(error).__name__}: {error}"
    return "ok"


def _database_check(catalog: Catalog) -> None:
    ping(catalog.intake.engine)


def _photo_store_check(catalog: Catalog) -> None:
    store = catalog.intake.photos
    root = getattr(store, "root", None)
    if root is None:  # S3: the bucket answers
        store.exists("0" * 64)
        return
    os.makedirs(root, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".ready-"):  # a write, removed at once
        pass


def _model_check(catalog: Catalog) -> None:
    catalog.intake.predictor.predict([Image.new("RGB", (64, 64), (128, 128, 128))])


def _store(catalog: Catalog, items: list[Incoming]) -> None:
    results = receive(catalog.intake, items, source=LabelSource.API)
    for result in results:
        if result.rejected is not None:  # checked above; a file cannot change meanwhile
            raise errors.image_error(result.rejected)


def _dog(catalog: Catalog, code: str):
    try:
        return catalog.dogs.by_code(code)
    except UnknownDog:
        raise ApiError(404, "unknown_dog", f"No dog has the code {code}.") from None


def _breed_key(catalog: Catalog, text: str | None) -> str | None:
    text = clean_text(text, 64)  # the one normaliser for text from people, here at the API's edge
    if not text:
        return None
    breed = catalog.breeds.taxonomy.resolve(text)
    if breed is None or breed.is_special:
        suggestions = ", ".join(b.display_name for b, _ in catalog.breeds.taxonomy.suggest(text, 3))
        hint = f" Did you mean: {suggestions}?" if suggestions else ""
        raise ApiError(
            422, "unknown_breed", f"No breed is called {text!r}.{hint} An admin can add one with /addbreed."
        )
    return breed.key
