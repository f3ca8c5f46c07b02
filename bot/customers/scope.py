"""Who sees which customer: store managers their stores' customers, guides their own, HQ everyone.

A customer outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.api.auth import Principal, Role
from bot.api.errors import ApiError
from bot.customers.models import Customer

# Not the integration role: a till finds members through /api/v1/members and needs no customer lists.
ROLES = [Role.HQ_ADMIN, Role.STORE_MANAGER, Role.GUIDE]


def scoped(statement, principal: Principal):
    if principal.role == Role.STORE_MANAGER:
        return statement.where(Customer.store_code.in_(principal.store_codes))
    if principal.role == Role.GUIDE:
        return statement.where(Customer.guide_userid == principal.guide_userid)
    return statement


async def visible_customer(session, principal: Principal, external_userid: str) -> Customer:
    customer = await session.scalar(
        scoped(select(Customer), principal).where(Customer.external_userid == external_userid))
    if customer is None:
        raise ApiError(404, "unknown_customer", f"no customer {external_userid!r}")
    return customer
