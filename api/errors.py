"""Every error the API answers is ``{"error": {"code", "message"}}`` with a 4xx status.

The code is for programs (stable, snake_case); the message is for the developer reading the log, and
says what to change. Image refusals reuse the bot's words (``ml.images``), so both clients hear the
same reason for the same file.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ml.images import ImageRejected

# A request whose body outgrew the limit while it was being read (api/limits.py marks the scope).
BODY_TOO_LARGE = "dogbot.body_too_large"

# Image refusals: too much data is 413, data that is not a usable photo is 422.
_IMAGE_STATUS = {"too_big": 413, "too_many_pixels": 413}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def image_error(rejected: ImageRejected, index: int | None = None) -> ApiError:
    where = f"photo {index + 1}: " if index is not None else ""
    return ApiError(_IMAGE_STATUS.get(rejected.code, 422), rejected.code, where + rejected.message)


def body_too_large(limit: int) -> JSONResponse:
    return error_response(
        413,
        "body_too_large",
        f"The request body is over {limit // (1024 * 1024)} MB, the limit for this endpoint "
        "(each photo is at most the bot's upload limit). Send fewer or smaller photos.",
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.headers)

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
