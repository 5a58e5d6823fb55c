"""Every error the API answers is ``{"error": {"code", "message"}}``: 4xx for the request, 503 for a
server that cannot do it now (busy, or storage that cannot be written), 500 for a bug.

The code is for programs (stable, snake_case); the message is for the developer reading the log, and
says what to change. Image refusals reuse the bot's words (``ml.images``), so both clients hear the
same reason for the same file.
"""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from dogbot.core.limits import Busy
from ml.images import ImageRejected

log = logging.getLogger(__name__)

# A request whose body outgrew the limit while it was being read (api/limits.py marks the scope).
BODY_TOO_LARGE = "dogbot.body_too_large"

# Image refusals: too much data is 413, data that is not a usable photo is 422.
_IMAGE_STATUS = {"too_big": 413, "too_many_pixels": 413}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        dog: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
        self.dog = dog  # the dog the error is about (409 photo_in_other_dog: the dog the photo is in)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, *, dog: str | None = None
) -> JSONResponse:
    detail = {"code": code, "message": message} | ({"dog": dog} if dog is not None else {})
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def image_error(rejected: ImageRejected, index: int | None = None) -> ApiError:
    where = f"photo {index + 1}: " if index is not None else ""
    return ApiError(_IMAGE_STATUS.get(rejected.code, 422), rejected.code, where + rejected.message)


def body_too_large(limit: int) -> JSONResponse:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return error_response(
        413,
        "body_too_large",
        f"The request body is over {size}, the limit for this endpoint "
        "(each photo is at most the bot's upload limit). Send less.",
    )


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def unavailable(error: BaseException, *, what: str = "storage") -> ApiError | None:
    """503 with what is wrong, for a database or photo store that cannot do the work now; None for a bug.

    Each request's writes go photo bytes first, then rows (a failed write leaves no row pointing
    at nothing), so "try again later" is true: nothing half-made stays.
    """
    if isinstance(error, Busy):
        return ApiError(
            503,
            "busy",
            "The server is decoding as many photos as it may; send again after Retry-After seconds.",
            {"Retry-After": str(error.retry_after_s)},
        )
    retry = {"Retry-After": "30"}
    if isinstance(error, DBAPIError):
        text = str(getattr(error, "orig", error)).lower()
        name = type(getattr(error, "orig", error)).__name__
        if "locked" in text or name == "LockNotAvailable" or "lock timeout" in text:
            why = "database_locked", "The database is locked by another writer and stayed locked too long"
        elif "readonly" in text or "read-only" in text or name == "ReadOnlySqlTransaction":
            why = "database_read_only", "The database is read-only"
        elif "disk is full" in text or "no space" in text or name == "DiskFull":
            why = "database_full", "The database's disk is full"
        elif "statement timeout" in text or name == "QueryCanceled":
            why = "database_slow", "The database took too long to answer"
        elif error.connection_invalidated or name in ("OperationalError", "InterfaceError"):
            why = "database_unavailable", "The database cannot be reached or opened"
        else:
            return None
        return ApiError(
            503, why[0], why[1] + "; nothing was changed. An operator must look; try again later.", retry
        )
    if isinstance(error, OSError) and error.errno in _DISK_FULL | _READ_ONLY:
        state = "full" if error.errno in _DISK_FULL else "read-only"
        return ApiError(
            503,
            f"{what.replace(' ', '_')}_{state.replace('-', '_')}",
            f"The {what} cannot be written ({state}); nothing was kept. "
            "An operator must look; try again later.",
            retry,
        )
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.headers, dog=error.dog)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(
                str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
            )
            problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", "invalid"))
        message = "; ".join(problems) or "the request is not valid"
        if any(item.get("loc", ())[-1:] == ("photo",) for item in error.errors()):
            message += " (send the photo as a multipart/form-data file field named 'photo')"
        return error_response(400 if _body_missing(error) else 422, "invalid_request", message)

    @app.exception_handler(Busy)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def on_unavailable(_request: Request, error: Exception) -> JSONResponse:
        failure = unavailable(error)
        if failure is None:
            log.error("unexpected error", exc_info=error)
            return error_response(
                500, "internal_error", "Something went wrong on the server (it is logged); try again."
            )
        if not isinstance(error, Busy):
            log.warning("answered 503 %s: %s", failure.code, error)
        return error_response(failure.status, failure.code, failure.message, failure.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(_request: Request, _error: Exception) -> JSONResponse:
        # The server logs it with its traceback; the client gets JSON like every other answer.
        return error_response(
            500, "internal_error", "Something went wrong on the server (it is logged); try again."
        )

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, error: HTTPException) -> JSONResponse:
        if request.scope.get(BODY_TOO_LARGE):
            return body_too_large(request.scope[BODY_TOO_LARGE])
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return error_response(
            error.status_code, codes.get(error.status_code, "http_error"), str(error.detail), error.headers
        )


def _body_missing(error: RequestValidationError) -> bool:
    return any(
        item.get("type") == "missing" and item.get("loc", ())[:1] == ("body",) for item in error.errors()
    )
