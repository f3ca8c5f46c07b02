"""Customers, corp tags and handovers."""

from __future__ import annotations

from .api_base import (
    INVALID_EXTERNAL_USERID,
    INVALID_PARAMETER,
    INVALID_TAG_ID,
    MISSING_EXTERNAL_USERID,
    NO_RELATION,
    NOT_FOLLOWER,
    NOT_RESIGNED,
    SAME_HANDOVER_AND_TAKEOVER,
    TAG_NAME_EXISTS,
    TOO_MANY_CORP_TAGS,
    TRANSFER_IN_PROGRESS,
    ApiError,
    Call,
    api,
    check_member,
    page,
    required,
)
from .state import TRANSFER_DELAY, EmulatorState, new_id
from .world import Customer, Follow, Tag, TagGroup, Transfer

MAX_TAGS = 3000
MAX_TAG_NAME_CHARS = 30
MAX_BATCH_USERS = 100
MAX_TRANSFER = 100


def _customer(state: EmulatorState, external_userid) -> Customer:
    if not external_userid:
        raise ApiError(MISSING_EXTERNAL_USERID, "missing external_userid")
    customer = state.customers.get(external_userid)
    if customer is None:
        raise ApiError(INVALID_EXTERNAL_USERID, "invalid external_userid")
    return customer


def _follow_user(state: EmulatorState, follow: Follow) -> dict:
    tags = [state.tags[tag_id] for tag_id in sorted(follow.tag_ids) if tag_id in state.tags]
    return {
        "userid": follow.userid,
        "remark": follow.remark,
        "description": "",
        "createtime": follow.add_time,
        "state": follow.state,
        "add_way": 1,
        "tags": [
            {
                "group_name": state.tag_groups[tag.group_id].group_name,
                "tag_name": tag.name,
                "tag_id": tag.id,
                "type": 1,
            }
            for tag in tags
        ],
    }


@api("externalcontact/get")
def get_customer(state: EmulatorState, call: Call) -> dict:
    customer = _customer(state, call.params.get("external_userid"))
    follows = [_follow_user(state, follow) for follow in customer.follows.values()]
    return {"external_contact": customer.profile(), "follow_user": follows, "next_cursor": ""}


@api("externalcontact/batch/get_by_user")
def batch_get_by_user(state: EmulatorState, call: Call) -> dict:
    userids = required(call.params, "userid_list")
    if not isinstance(userids, list) or len(userids) > MAX_BATCH_USERS:
        raise ApiError(INVALID_PARAMETER, f"userid_list takes at most {MAX_BATCH_USERS} userids")
    pairs = [
        (customer, customer.follows[userid])
        for customer in state.customers.values()
        for userid in userids
        if userid in customer.follows
    ]
    items, next_cursor = page(pairs, call.params, default=50, maximum=100)
    listing = []
    for customer, follow in items:
        follow_info = _follow_user(state, follow)
        follow_info["tag_id"] = [tag["tag_id"] for tag in follow_info.pop("tags")]
        listing.append({"external_contact": customer.profile(), "follow_info": follow_info})
    return {"external_contact_list": listing, "next_cursor": next_cursor}


@api("externalcontact/mark_tag")
def mark_tag(state: EmulatorState, call: Call) -> dict:
    userid = check_member(state, call.params.get("userid"))
    customer = _customer(state, call.params.get("external_userid"))
    follow = customer.follows.get(userid)
    if follow is None:
        raise ApiError(NO_RELATION, "no external contact relation between them")
    add, remove = call.params.get("add_tag") or [], call.params.get("remove_tag") or []
    if not add and not remove:
        raise ApiError(INVALID_PARAMETER, "add_tag and remove_tag are both empty")
    if any(tag_id not in state.tags for tag_id in [*add, *remove]):
        raise ApiError(INVALID_TAG_ID, "invalid tag id")
    follow.tag_ids = (follow.tag_ids | set(add)) - set(remove)
    return {}


def _group_json(state: EmulatorState, group: TagGroup, only: set[str] | None = None) -> dict:
    tags = [t for t in state.tags.values() if t.group_id == group.group_id and (only is None or t.id in only)]
    return {
        "group_id": group.group_id,
        "group_name": group.group_name,
        "create_time": group.create_time,
        "order": group.order,
        "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order} for t in tags],
    }


@api("externalcontact/get_corp_tag_list")
def get_corp_tag_list(state: EmulatorState, call: Call) -> dict:
    tag_ids = set(call.params.get("tag_id") or [])
    group_ids = set(call.params.get("group_id") or [])
    if tag_ids:  # as in WeCom, tag_id wins over group_id
        wanted = {state.tags[tag_id].group_id for tag_id in tag_ids if tag_id in state.tags}
        return {"tag_group": [_group_json(state, state.tag_groups[g], tag_ids) for g in sorted(wanted)]}
    groups = [g for g in state.tag_groups.values() if not group_ids or g.group_id in group_ids]
    return {"tag_group": [_group_json(state, g) for g in groups]}


@api("externalcontact/add_corp_tag")
def add_corp_tag(state: EmulatorState, call: Call) -> dict:
    params = call.params
    names = [item.get("name", "") for item in required(params, "tag")]
    if any(not name or len(name) > MAX_TAG_NAME_CHARS for name in names):
        raise ApiError(INVALID_PARAMETER, f"tag names must be 1..{MAX_TAG_NAME_CHARS} characters")
    if len(state.tags) + len(names) > MAX_TAGS:
        raise ApiError(TOO_MANY_CORP_TAGS, f"at most {MAX_TAGS} corp tags")
    if params.get("group_id"):
        group = state.tag_groups.get(params["group_id"])
        if group is None:
            raise ApiError(INVALID_TAG_ID, "invalid group_id")
    else:
        name = required(params, "group_name")
        group = next((g for g in state.tag_groups.values() if g.group_name == name), None)
        if group is None:
            group = TagGroup(new_id("eg", 8), name, state.now(), params.get("order", 0))
            state.tag_groups[group.group_id] = group
    existing = {t.name for t in state.tags.values() if t.group_id == group.group_id}
    if existing & set(names) or len(set(names)) != len(names):
        raise ApiError(TAG_NAME_EXISTS, "tag name already exists in the group")
    created = set()
    for item in params["tag"]:
        tag = Tag(new_id("et", 8), item["name"], group.group_id, state.now(), item.get("order", 0))
        state.tags[tag.id] = tag
        created.add(tag.id)
    return {"tag_group": _group_json(state, group, created)}


def _transfer(state: EmulatorState, call: Call, *, resigned: bool) -> dict:
    params = call.params
    handover = check_member(state, params.get("handover_userid"))
    takeover = check_member(state, params.get("takeover_userid"))
    if handover == takeover:
        raise ApiError(SAME_HANDOVER_AND_TAKEOVER, "handover and takeover are the same member")
    if resigned and not state.members[handover].resigned:
        raise ApiError(NOT_RESIGNED, "handover member has not resigned")
    external_userids = required(params, "external_userid")
    if len(external_userids) > MAX_TRANSFER:
        raise ApiError(INVALID_PARAMETER, f"at most {MAX_TRANSFER} customers per call")
    waiting = {t.external_userid for t in state.transfers if t.status == "waiting"}
    results = []
    for external_userid in external_userids:
        customer = state.customers.get(external_userid)
        if customer is None or handover not in customer.follows:
            errcode = NOT_FOLLOWER
        elif external_userid in waiting:
            errcode = TRANSFER_IN_PROGRESS
        else:
            errcode = 0
            state.transfers.append(
                Transfer(handover, takeover, external_userid, state.clock() + TRANSFER_DELAY)
            )
        results.append({"external_userid": external_userid, "errcode": errcode})
    return {"customer": results}


@api("externalcontact/transfer_customer")
def transfer_customer(state: EmulatorState, call: Call) -> dict:
    return _transfer(state, call, resigned=False)


@api("externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(state: EmulatorState, call: Call) -> dict:
    return _transfer(state, call, resigned=True)
