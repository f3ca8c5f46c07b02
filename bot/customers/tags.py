"""Corp tags by name: find their ids in WeCom, creating the missing ones, with a shared cache.

Channels name their tags; WeCom's mark_tag wants ids. Missing tags are created in the group
TAG_GROUP whatever the welcome message looks like (a peer only tagged when it had attachments).
"""

from __future__ import annotations

import logging

from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.customers.tags")

TAG_GROUP = "导购渠道"
TAG_NAME_EXISTS = 40071
CACHE_SECONDS = 3600


def _cache_key(name: str) -> str:
    return f"corp_tag:{name}"


async def _list_corp_tags(wecom) -> dict[str, str]:
    answer = await wecom.externalcontact.get_corp_tag_list()
    ids: dict[str, str] = {}
    for group in answer.get("tag_group", []):
        for tag in group.get("tag", []):
            # The same name may exist in several groups: prefer ours, else the first seen.
            if tag["name"] not in ids or group.get("group_name") == TAG_GROUP:
                ids[tag["name"]] = tag["id"]
    return ids


async def corp_tag_ids(services, names: list[str]) -> dict[str, str]:
    """name → tag id for every name, creating tags WeCom does not have yet."""
    ids: dict[str, str] = {}
    for name in names:
        cached = await services.kv.get(_cache_key(name))
        if cached:
            ids[name] = cached
    missing = [name for name in names if name not in ids]
    if not missing:
        return ids
    # One creator at a time, or two jobs would both create the tag (WeCom then has two, or 40071).
    async with services.kv.lock("corp_tags:create", timeout=30, wait=30):
        known = await _list_corp_tags(services.wecom)
        to_create = [name for name in missing if name not in known]
        if to_create:
            try:
                answer = await services.wecom.externalcontact.add_corp_tag(
                    group_name=TAG_GROUP, tag=[{"name": name} for name in to_create]
                )
                known.update({tag["name"]: tag["id"] for tag in answer.get("tag_group", {}).get("tag", [])})
                log.info("created corp tags %s", ", ".join(to_create))
            except WeComAPIError as exc:
                if exc.errcode != TAG_NAME_EXISTS:
                    raise
                known = await _list_corp_tags(services.wecom)
    for name in missing:
        if name in known:
            ids[name] = known[name]
            await services.kv.set(_cache_key(name), known[name], ttl=CACHE_SECONDS)
    return ids


async def forget_tags(services, names: list[str]) -> None:
    """Drop cached ids (WeCom said one is invalid: someone deleted it in the console)."""
    for name in names:
        await services.kv.delete(_cache_key(name))
