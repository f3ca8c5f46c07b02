"""Admin API for stores and guides; channels, codes, stats and customers register beside it.

Store managers see and edit only their stores and those stores' guides. Each request is one
transaction, and the per-process store directories reload after a store write.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.api.auth import Principal, Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.stores.directory import stores_changed
from bot.stores.models import ContactWay, Guide, Store
from bot.stores.schemas import (
    GuideIn,
    GuideList,
    GuideOut,
    GuidePatch,
    StoreIn,
    StoreList,
    StoreOut,
    StorePatch,
)
from bot.wecom.client import WeComAPIError, WeComUnavailable
from bot.wecom.client.user import USERID_NOT_FOUND

ADMINS = [Role.HQ_ADMIN, Role.STORE_MANAGER]
INVALID_USERID, MEMBER_LEFT = 40003, 5  # WeCom's errcode for an unknown userid elsewhere; status "left"
READERS = [Role.HQ_ADMIN, Role.STORE_MANAGER, Role.INTEGRATION]  # a till may check a store code
STAFF = [Role.HQ_ADMIN, Role.STORE_MANAGER]


def require_store_scope(principal: Principal, store_code: str) -> None:
    if not principal.can_see_store(store_code):
        raise ApiError(403, "forbidden", f"store {store_code!r} is outside this token's scope")


async def _store(session, code: str) -> Store:
    store = await session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise ApiError(404, "unknown_store", f"no store {code!r}")
    return store


async def _guide(session, userid: str) -> Guide:
    guide = await session.scalar(select(Guide).where(Guide.userid == userid))
    if guide is None:
        raise ApiError(404, "unknown_guide", f"no guide {userid!r}")
    return guide


async def require_wecom_member(wecom, userid: str) -> None:
    """A guide is a member of the corp: user/get must know the userid (422 naming it otherwise)."""
    try:
        member = await wecom.user.get(userid)
    except WeComAPIError as exc:
        if exc.errcode in (USERID_NOT_FOUND, INVALID_USERID):
            raise ApiError(422, "unknown_wecom_user", f"WeCom has no member {userid!r}",
                           [{"field": "userid", "problem": "not a member of the corp in WeCom"}]) from None
        raise ApiError(502, "wecom_error", f"WeCom refused user/get: errcode {exc.errcode}") from None
    except WeComUnavailable:
        raise ApiError(503, "wecom_unavailable", "WeCom cannot be reached; try again") from None
    if member.get("status") == MEMBER_LEFT:
        raise ApiError(422, "unknown_wecom_user", f"{userid!r} has left the corp in WeCom",
                       [{"field": "userid", "problem": "left the corp in WeCom"}])


class StoresQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str | None = None
    status: str | None = Field(None, pattern="^(open|closed|paused)$")
    after: str | None = Field(None, description="page: stores with a code after this one")
    limit: int = Field(100, ge=1, le=1000)


@api.route("POST", "/api/v1/stores", summary="Create a store (coordinates in any datum)", roles=[Role.HQ_ADMIN],
           body=StoreIn, response=StoreOut, status=201)
async def create_store(call: ApiCall) -> StoreOut:
    body: StoreIn = call.body
    try:
        async with call.services.db.session() as session, session.begin():
            if await session.scalar(select(Store.id).where(Store.code == body.code)):
                raise ApiError(409, "store_exists", f"store {body.code!r} already exists")
            store = Store(**body.model_dump(exclude={"coord_system"}))
            session.add(store)
    except IntegrityError:
        raise ApiError(409, "store_exists", f"store {body.code!r} already exists") from None
    await stores_changed(call.services.kv)
    return StoreOut.model_validate(store)


@api.route("GET", "/api/v1/stores", summary="Stores by code (store managers: theirs)", roles=READERS,
           query=StoresQuery, response=StoreList)
async def list_stores(call: ApiCall) -> StoreList:
    q: StoresQuery = call.query
    statement = select(Store).order_by(Store.code).limit(q.limit)
    if call.principal.role == Role.STORE_MANAGER:
        statement = statement.where(Store.code.in_(call.principal.store_codes))
    if q.city:
        statement = statement.where(Store.city == q.city)
    if q.status:
        statement = statement.where(Store.status == q.status)
    if q.after:
        statement = statement.where(Store.code > q.after)
    async with call.services.db.session() as session:
        rows = (await session.scalars(statement)).all()
    return StoreList(stores=[StoreOut.model_validate(row) for row in rows])


@api.route("GET", "/api/v1/stores/{code}", summary="One store", roles=READERS, response=StoreOut)
async def get_store(call: ApiCall) -> StoreOut:
    require_store_scope(call.principal, call.path["code"])
    async with call.services.db.session() as session:
        return StoreOut.model_validate(await _store(session, call.path["code"]))


@api.route("PATCH", "/api/v1/stores/{code}", summary="Change a store (status, hours, position…)",
           roles=ADMINS, body=StorePatch, response=StoreOut)
async def patch_store(call: ApiCall) -> StoreOut:
    require_store_scope(call.principal, call.path["code"])
    changes = call.body.model_dump(exclude_unset=True, exclude={"coord_system"})
    async with call.services.db.session() as session, session.begin():
        store = await _store(session, call.path["code"])
        for name, value in changes.items():
            setattr(store, name, value)
        await session.flush()
        out = StoreOut.model_validate(store)  # before the commit: what cannot be answered is not saved
    await stores_changed(call.services.kv)
    return out


class GuidesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_code: str | None = None
    status: str | None = Field(None, pattern="^(active|on_leave|resigned)$")
    limit: int = Field(200, ge=1, le=1000)


@api.route("POST", "/api/v1/guides", summary="Add a guide to a store", roles=ADMINS, body=GuideIn,
           response=GuideOut, status=201)
async def create_guide(call: ApiCall) -> GuideOut:
    body: GuideIn = call.body
    require_store_scope(call.principal, body.store_code)
    await require_wecom_member(call.services.wecom, body.userid)  # before the transaction: a network call
    try:
        async with call.services.db.session() as session, session.begin():
            await _store(session, body.store_code)
            if await session.scalar(select(Guide.id).where(Guide.userid == body.userid)):
                raise ApiError(409, "guide_exists", f"guide {body.userid!r} already exists")
            guide = Guide(**body.model_dump())
            session.add(guide)
    except IntegrityError:
        raise ApiError(409, "guide_exists", f"guide {body.userid!r} already exists") from None
    return GuideOut.model_validate(guide)


@api.route("GET", "/api/v1/guides", summary="Guides (store managers: of their stores)", roles=STAFF,
           query=GuidesQuery, response=GuideList)
async def list_guides(call: ApiCall) -> GuideList:
    q: GuidesQuery = call.query
    statement = select(Guide).order_by(Guide.store_code, Guide.userid).limit(q.limit)
    if call.principal.role == Role.STORE_MANAGER:
        statement = statement.where(Guide.store_code.in_(call.principal.store_codes))
    if q.store_code:
        statement = statement.where(Guide.store_code == q.store_code)
    if q.status:
        statement = statement.where(Guide.status == q.status)
    async with call.services.db.session() as session:
        rows = (await session.scalars(statement)).all()
    return GuideList(guides=[GuideOut.model_validate(row) for row in rows])


@api.route("GET", "/api/v1/guides/{userid}", summary="One guide (store managers: of their stores)", roles=STAFF,
           response=GuideOut)
async def get_guide(call: ApiCall) -> GuideOut:
    async with call.services.db.session() as session:
        guide = await _guide(session, call.path["userid"])
    if not call.principal.can_see_store(guide.store_code):
        raise ApiError(404, "unknown_guide", f"no guide {call.path['userid']!r}")  # as if it did not exist
    return GuideOut.model_validate(guide)


@api.route("PATCH", "/api/v1/guides/{userid}", summary="Change a guide (status, limit, hours, store…)",
           roles=ADMINS, body=GuidePatch, response=GuideOut)
async def patch_guide(call: ApiCall) -> GuideOut:
    changes = call.body.model_dump(exclude_unset=True)
    async with call.services.db.session() as session, session.begin():
        guide = await _guide(session, call.path["userid"])
        require_store_scope(call.principal, guide.store_code)
        new_store = changes.get("store_code")
        if new_store and new_store != guide.store_code:
            require_store_scope(call.principal, new_store)
            await _store(session, new_store)
            # Their contact ways now bring customers to the new store.
            await session.execute(
                update(ContactWay).where(ContactWay.guide_userid == guide.userid).values(store_code=new_store)
            )
        for name, value in changes.items():
            setattr(guide, name, value)
        await session.flush()
        answer = GuideOut.model_validate(guide)  # before the commit: what cannot be answered is not saved
    await stores_changed(call.services.kv)  # the add pipeline's copy of guides (bot/customers/catalog.py)
    return answer
