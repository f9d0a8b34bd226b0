"""Every error leaves the API as JSON: ``{"error", "message", "hint"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from gridvm.common.errors import GridvmError
from gridvm.schemas.base import ErrorBody

log = logging.getLogger(__name__)


def _json(status: int, error: str, message: str, hint: str | None = None) -> JSONResponse:
    body = ErrorBody(error=error, message=message, hint=hint).model_dump()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content=body, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def error_json(exc: GridvmError) -> JSONResponse:
    if exc.http_status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    return _json(exc.http_status, exc.code, exc.message, exc.hint)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GridvmError)
    async def gridvm_error(_request: Request, exc: GridvmError) -> JSONResponse:
        return error_json(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(422, "invalid_input", _describe_validation(exc), "see /api/v1/docs")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _json(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same name or row; the loser may simply retry.
        log.warning("integrity error: %s", exc.orig)
        return _json(409, "conflict", "the change conflicts with another one", "try again")

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return _json(500, "internal_error", "internal error", "the server log has the details")
