"""Admin API routes declared once: auth, role check, pydantic validation and the OpenAPI entry.

    @api.route("GET", "/api/v1/events", roles=[Role.HQ_ADMIN], query=EventsQuery, response=EventPage)
    async def list_events(call: ApiCall) -> EventPage: ...
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from bot.api.audit import record_write, write_target
from bot.api.auth import Principal, Role, authenticate
from bot.api.errors import ApiError
from bot.api.fields import NO_NUL
from bot.errors import DomainError
from bot.services import SERVICES, Services
from bot.validation import RULE_BROKEN


@dataclass
class ApiCall:
    request: web.Request
    services: Services
    principal: Principal
    query: Any = None
    body: Any = None
    params: Any = None  # the path parameters, parsed, when the route declares a model for them

    @property
    def path(self) -> dict[str, str]:
        return dict(self.request.match_info)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    roles: tuple[Role, ...]
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    path_model: type[BaseModel] | None = None


def validation_details(exc: ValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(p) for p in error["loc"]), "problem": error["msg"]} for error in exc.errors()
    ]


def parse_model(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    reject_unstorable_text(data, where)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        only_rules = all(error["type"] == RULE_BROKEN for error in exc.errors())
        raise ApiError(422 if only_rules else 400, "invalid_request", f"invalid {where}",
                       validation_details(exc)) from None


@dataclass(frozen=True)
class DeclaredRoute:
    """What `@api.route(...)` attaches to the function it decorates: the operation and its view."""

    operation: Operation
    view: Callable[[web.Request], Awaitable[web.StreamResponse]]


def declared_route(function: Callable) -> DeclaredRoute:
    declared = getattr(function, "api_route", None)
    if not isinstance(declared, DeclaredRoute):
        raise TypeError(f"{function!r} is not declared as an API route (decorate it with @api.route(...))")
    return declared


class ApiRoutes:
    """`@api.route(...)` declares an operation on the function (auth, roles, models, OpenAPI entry);
    a feature lists its route functions and the app's composition adds them (`route_table`)."""

    def route(
        self, method: str, path: str, *, summary: str, roles: Iterable[Role],
        query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None, status: int = 200, path_model: type[BaseModel] | None = None,
    ) -> Callable:
        operation = Operation(method, path, summary, tuple(roles), query, body, response, status, path_model)

        def decorator(function: Callable[[ApiCall], Awaitable[Any]]):
            async def view(request: web.Request) -> web.StreamResponse:
                services = request.app[SERVICES]
                principal = await authenticate(request, services.db)
                if principal.role not in operation.roles:
                    raise ApiError(403, "forbidden", f"role {principal.role} cannot {method} {path}")
                if method == "GET":
                    return await answer(request, services, principal)
                # Every write that got past the role check is audited, refused ones too.
                status, answered = 500, None
                try:
                    response = await answer(request, services, principal)
                    status, answered = response.status, getattr(response, "text", None)
                    return response
                except DomainError as exc:
                    status = exc.status
                    raise
                finally:
                    await record_write(services.db, principal, method, path, request.path,
                                       write_target(dict(request.match_info), answered), status)

            async def answer(request: web.Request, services: Services, principal: Principal) -> web.StreamResponse:
                reject_unstorable_text(dict(request.match_info), "path")
                call = ApiCall(request, services, principal)
                if operation.path_model:
                    call.params = parse_model(operation.path_model, dict(request.match_info), "path")
                if operation.query:
                    call.query = parse_model(operation.query, dict(request.query), "query")
                if operation.body:
                    call.body = parse_model(operation.body, await read_json_body(request), "body")
                result = await function(call)
                if isinstance(result, web.StreamResponse):
                    return result
                if isinstance(result, BaseModel):
                    return web.Response(
                        text=result.model_dump_json(), status=operation.status, content_type="application/json"
                    )
                return web.json_response(result, status=operation.status)

            view.__name__ = function.__name__
            function.api_route = DeclaredRoute(operation, view)  # type: ignore[attr-defined]
            return function

        return decorator


async def read_json_body(request: web.Request) -> Any:
    """The request's JSON body (None when empty); 400 malformed_json for anything json.loads refuses,
    including nesting too deep for the parser and integer literals too long to convert."""
    try:
        return json.loads(await request.text() or "null", parse_constant=_refuse_constant)
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; LookupError: a charset Python does not know.
    except (ValueError, RecursionError, LookupError) as exc:
        raise ApiError(400, "malformed_json", f"request body is not JSON: {str(exc)[:200]}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unstorable(text: str) -> str | None:
    # PostgreSQL text holds no NUL, and a lone surrogate cannot be encoded to UTF-8 at all.
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    if any("\ud800" <= char <= "\udfff" for char in text):
        return "must not contain a lone UTF-16 surrogate"
    return None


def reject_unstorable_text(data: Any, where: str) -> None:
    """400 naming the field when a string anywhere in `data` (keys too) cannot be stored as text."""
    problems: list[dict] = []

    def walk(value: Any, loc: tuple) -> None:
        if isinstance(value, str):
            if problem := _unstorable(value):
                problems.append({"field": ".".join(map(str, loc)) or where, "problem": problem})
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and (problem := _unstorable(key)):
                    problems.append({"field": ".".join(map(str, loc)) or where, "problem": "a key " + problem})
                    continue
                walk(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*loc, index))

    walk(data, ())
    if problems:
        raise ApiError(400, "invalid_request", f"invalid {where}", problems[:20])


def openapi_document(operations: Iterable[Operation], title: str, version: str) -> dict:
    operations = list(operations)
    models = {m for op in operations for m in (op.body, op.response) if m is not None}
    names = [m.__name__ for m in models]
    if clashes := sorted({name for name in names if names.count(name) > 1}):
        # The document names schemas by class name: two models of one name would share one schema.
        raise ValueError(f"two API models are named {', '.join(clashes)}: rename one")
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "description": "Roles: " + ", ".join(r.value for r in op.roles),
            "security": [{"bearer": []}],
            "parameters": [
                {"name": name, "in": "path", "required": True,
                 "schema": _field_schema(op.path_model, name) if op.path_model else {"type": "string"}}
                for name in _path_params(op.path)
            ],
            "responses": {
                str(op.status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": _ref(op.response)}} if op.response else {},
                },
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if op.query:
            for name, field in op.query.model_fields.items():
                entry["parameters"].append(
                    {"name": name, "in": "query", "required": field.is_required(),
                     "schema": _field_schema(op.query, name)}
                )
        if op.body:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    components = dict(schemas.get("$defs", {}))
    components["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}},
    }
    _say_no_nul(paths)
    _say_no_nul(components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _say_no_nul(node: Any) -> None:
    """Every string schema says what reject_unstorable_text enforces: no NUL (own patterns already do)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & node.keys():
            node["pattern"] = NO_NUL
        for value in node.values():
            _say_no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _say_no_nul(value)


def _field_schema(model: type[BaseModel], name: str) -> dict:
    return model.model_json_schema()["properties"][name]


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


api = ApiRoutes()


def route_table(functions: Iterable[Callable]) -> list[web.RouteDef]:
    """aiohttp routes for declared API functions, in the order given."""
    return [web.route(d.operation.method, d.operation.path, d.view)
            for d in (declared_route(function) for function in functions)]


def declared_routes(*modules: ModuleType) -> list[Callable]:
    """The API route functions declared in these modules (with @api.route), in the order defined."""
    return [value for module in modules for value in vars(module).values()
            if isinstance(getattr(value, "api_route", None), DeclaredRoute)
            and getattr(value, "__module__", None) == module.__name__]


API_OPERATIONS = web.AppKey("api_operations", list)  # the app's operations, for its OpenAPI document
