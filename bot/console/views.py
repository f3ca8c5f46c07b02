"""The console's own routes: sign-in/out (/api/v1/session) and the built app at /console/.

Static files: hashed assets (/console/assets/*) are immutable for a year; index.html is no-cache,
so a new build is picked up at the next load. Any other /console/ path is the app's own route and
answers index.html (history-mode routing).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.api.errors import ApiError
from bot.api.spec import parse_model, read_json_body
from bot.console.accounts import check_sign_in
from bot.console.models import ConsoleSession, ConsoleUser
from bot.console.sessions import COOKIE, MAX_SECONDS, close_session, csrf_ok, current_session, open_session
from bot.services import SERVICES

STATIC = Path(__file__).with_name("static")
IMMUTABLE = "public, max-age=31536000, immutable"
routes = web.RouteTableDef()


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


def session_body(row: ConsoleSession, user: ConsoleUser) -> dict:
    return {"signed_in": True, "username": user.username, "role": user.role, "store_codes": list(user.store_codes or []),
            "csrf_token": row.csrf_token, "expires_at": row.expires_at.isoformat()}


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[SERVICES].settings.public_base_url.startswith("https://")


@routes.post("/api/v1/session")
async def sign_in(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        # A cross-site HTML form cannot send JSON: this keeps other sites from signing people in.
        raise ApiError(415, "unsupported_media_type", "send the credentials as application/json")
    body: SignIn = parse_model(SignIn, await read_json_body(request), "body")
    db = request.app[SERVICES].db
    result = await check_sign_in(db, body.username, body.password)
    if result.problem == "locked":
        raise ApiError(423, "account_locked", "too many wrong passwords; try again later",
                       {"locked_until": result.locked_until.isoformat()})
    if result.user is None:
        raise ApiError(401, "invalid_credentials", "wrong username or password",
                       [{"field": "password", "problem": "wrong username or password"}])
    token, row = await open_session(db, result.user.id)
    response = web.json_response(session_body(row, result.user))
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=_secure(request),
                        max_age=MAX_SECONDS)
    return response


@routes.get("/api/v1/session")
async def who_am_i(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    found = token and await current_session(request.app[SERVICES].db, token)
    # 200 either way: the console asks this on every first load, and a 401 would be logged as an error.
    response = web.json_response(session_body(*found) if found else {"signed_in": False})
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.delete("/api/v1/session")
async def sign_out(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    db = request.app[SERVICES].db
    found = token and await current_session(db, token)
    if found:
        if not csrf_ok(request, found[0]):
            raise ApiError(403, "csrf_failed", "send the session's CSRF token in X-CSRF-Token")
        await close_session(db, token)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/console")
async def console_root(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/console/")


@routes.get("/console/{tail:.*}")
async def console_file(request: web.Request) -> web.StreamResponse:
    index = STATIC / "index.html"
    if not index.is_file():
        return web.Response(status=503, content_type="text/plain", text=(
            "the console is not built: run ./scripts/serve (needs Node.js and npm) "
            "or `npm --prefix console ci && npm --prefix console run build`\n"))
    tail = request.match_info["tail"]
    target = (STATIC / tail).resolve()
    if tail and target.is_file() and target.is_relative_to(STATIC.resolve()):
        response = web.FileResponse(target)
        response.headers["Cache-Control"] = IMMUTABLE if tail.startswith("assets/") else "public, max-age=3600"
        return response
    if tail.startswith("assets/"):
        raise web.HTTPNotFound()  # a missing hashed file must not come back as HTML
    response = web.FileResponse(index)
    response.headers["Cache-Control"] = "no-cache"
    return response


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)


