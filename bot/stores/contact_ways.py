"""One WeCom contact way (联系我) per (guide, channel), created on first use and kept alive.

Its `state` (≤30 chars) is how an add event tells us the channel and store: the contact_ways row
with that state is the decoder. The config_id and QR URL are kept in the row; the QR URL is also
in the KV store for CHECK_SECONDS after WeCom last confirmed the contact way, so most locates
touch neither. When that entry lapses, the next locate asks WeCom and recreates the contact way if
it is gone (an admin may delete it in the console; the QR a customer long-presses must not be dead).
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import select

from bot.stores.models import ContactWay
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.stores.contact_ways")

CHECK_SECONDS = 600
INVALID_CONFIG_ID = 41044
STATE_MAX = 30
# WeCom's answers that a member cannot have a contact way (not in the address book, left the corp):
# the guide is passed over for UNREACHABLE_SECONDS, then tried again (an admin may fix the account).
MEMBER_UNKNOWN_ERRCODES = frozenset({40003, 60111})
UNREACHABLE_SECONDS = CHECK_SECONDS


def new_state(channel_code: str, store_code: str) -> str:
    """Readable in WeCom's console (channel.store.random), unique, ≤30 chars."""
    state = f"{channel_code[:10]}.{store_code[:10]}.{secrets.token_hex(3)}"
    assert len(state) <= STATE_MAX
    return state


async def decode_state(session, state: str | None) -> ContactWay | None:
    """The contact way a `State` came from, or None (empty, foreign or forged state)."""
    if not state or len(state) > STATE_MAX:
        return None
    return await session.scalar(select(ContactWay).where(ContactWay.state == state))


def qr_cache_key(guide_userid: str, channel_code: str) -> str:
    return f"contact_way_qr:{guide_userid}:{channel_code}"


async def cached_qr_code(kv, guide_userid: str, channel_code: str) -> str | None:
    """The QR of a contact way WeCom confirmed within CHECK_SECONDS: a locate needs no DB or WeCom."""
    return await kv.get(qr_cache_key(guide_userid, channel_code))


def _unreachable_key(guide_userid: str) -> str:
    return f"guide_unreachable:{guide_userid}"


async def mark_unreachable(kv, guide_userid: str) -> None:
    """WeCom refused this guide's account: pass them over for a while instead of asking each scan."""
    await kv.set(_unreachable_key(guide_userid), "1", ttl=UNREACHABLE_SECONDS)


async def is_unreachable(kv, guide_userid: str) -> bool:
    return await kv.get(_unreachable_key(guide_userid)) is not None


async def _load(services, guide_userid: str, channel_code: str) -> ContactWay | None:
    async with services.db.session() as session:
        return await session.scalar(
            select(ContactWay).where(ContactWay.guide_userid == guide_userid,
                                     ContactWay.channel_code == channel_code)
        )


async def _still_exists(services, way: ContactWay) -> bool:
    try:
        await services.wecom.externalcontact.get_contact_way(way.config_id)
    except WeComAPIError as exc:
        if exc.errcode == INVALID_CONFIG_ID:
            log.warning("contact way %s of %s vanished from WeCom; recreating", way.config_id, way.guide_userid)
            return False
        log.info("could not check contact way %s: %s", way.config_id, exc)
    except Exception as exc:  # WeCom unreachable: serve the known QR rather than fail the scan
        log.info("could not check contact way %s: %s", way.config_id, exc)
    return True


async def _confirmed(services, way: ContactWay) -> ContactWay:
    await services.kv.set(qr_cache_key(way.guide_userid, way.channel_code), way.qr_code, ttl=CHECK_SECONDS)
    return way


async def contact_way_for(services, guide_userid: str, store_code: str, channel_code: str) -> ContactWay:
    """The guide's contact way for the channel, created (or recreated) in WeCom when needed.

    `store_code` is recorded on creation; when a guide moves, the guides API re-points the rows.
    """
    way = await _load(services, guide_userid, channel_code)
    if way is not None and way.qr_code and await _still_exists(services, way):
        return await _confirmed(services, way)
    # Two scans at once must not create two contact ways for the same guide and channel.
    async with services.kv.lock(f"contact_way:{guide_userid}:{channel_code}", timeout=30, wait=30):
        fresh = await _load(services, guide_userid, channel_code)
        if fresh is not None and fresh.qr_code and (way is None or fresh.config_id != way.config_id):
            return await _confirmed(services, fresh)  # another request made it while we waited
        state = fresh.state if fresh is not None else new_state(channel_code, store_code)
        answer = await services.wecom.externalcontact.add_contact_way(
            type=1, scene=2, user=[guide_userid], state=state, skip_verify=True, remark=channel_code[:30]
        )
        async with services.db.session() as session, session.begin():
            row = await session.scalar(
                select(ContactWay).where(ContactWay.guide_userid == guide_userid,
                                         ContactWay.channel_code == channel_code)
            )
            if row is None:
                row = ContactWay(guide_userid=guide_userid, channel_code=channel_code, state=state)
                session.add(row)
            row.store_code, row.config_id, row.qr_code = store_code, answer["config_id"], answer.get("qr_code")
        log.info("contact way %s created for %s / %s", row.config_id, guide_userid, channel_code)
        return await _confirmed(services, row)
