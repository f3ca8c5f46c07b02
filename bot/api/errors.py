from __future__ import annotations

import logging
import uuid

from aiohttp import web

from bot.errors import DomainError
from bot.logs import bind_log_context

log = logging.getLogger("bot.api")


class ApiError(DomainError):
    """An error answered as {"error": {"code", "message", "details"}}; a domain's own errors
    (bot.errors.DomainError) are answered in the same shape."""


def error_response(status: int, code: str, message: str, details=None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )


@web.middleware
async def request_context(request: web.Request, handler):
    """Every log line of a request carries its id (X-Request-Id when the caller sent one)."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
    with bind_log_context(request_id=request_id, path=request.path):
        response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def error_middleware(request: web.Request, handler):
    """No traceback ever reaches a client; API paths get the JSON error shape."""
    api = request.path.startswith("/api/")
    try:
        return await handler(request)
    except DomainError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except web.HTTPException as exc:
        if not api or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if api:
            return error_response(500, "internal", "internal error; see the server log")
        return web.Response(status=500, text="internal error\n")
