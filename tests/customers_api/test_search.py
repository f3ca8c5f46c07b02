"""Customer search for the console: one box (name, member phone, external id), the stage, paging,
and the scope: a store manager finds nothing of another store's customers, by any key."""

from __future__ import annotations

import pytest


async def test_name_matches_a_substring_in_any_case(crm):
    assert await crm.search(q="alice") == ["wmAlice"]
    assert await crm.search(q="ICE wa") == ["wmAlice"]
    assert await crm.search(q="三丰") == []  # 1–2 characters: the start of a name (an index can find it)
    assert await crm.search(q="张三") == ["wmCarol"]
    assert await crm.search(q="al") == ["wmAlice"]
    assert await crm.search(q=" 王小波 ") == ["wmBob"]  # the box's stray spaces do not count


async def test_phone_matches_the_linked_members_phone_exactly(crm):
    page = await crm.get("/api/v1/customers", q="13900000003")
    assert [(r["external_userid"], r["member_no"], r["stage"]) for r in page["items"]] == [("wmCarol", "M0004", "repeat")]
    assert await crm.search(q="1390000000") == []  # part of a phone is not a phone


async def test_external_userid_matches_exactly_or_by_prefix(crm):
    assert await crm.search(q="wmBob") == ["wmBob"]
    assert await crm.search(q="wmAli") == ["wmAlicia", "wmAlice"]  # newest first
    assert await crm.search(q="WMBOB") == []  # ids are case-sensitive


async def test_like_wildcards_are_taken_literally(crm):
    assert await crm.search(q="0%纯") == ["wmPct"]
    assert await crm.search(q="10") == ["wmPct"]
    for q in ("%", "_", "1_", "1%", "wm%", "wm_ob", "0_纯"):
        assert await crm.search(q=q) == [], q


async def test_stage_filters_by_lifecycle_as_the_audience_language_names_it(crm):
    assert await crm.search(stage="new_friend") == ["wmPct", "wmAlicia"]
    assert await crm.search(stage="dormant") == ["wmDan"]
    assert await crm.search(stage="first_purchase") == ["wmBob"]
    assert await crm.search(stage="member") == ["wmAlice"]
    assert await crm.search(stage="repeat", store_code="S2") == ["wmCarol"]
    assert await crm.search(stage="repeat", store_code="S1") == []
    page = await crm.get("/api/v1/customers")
    assert {r["external_userid"]: (r["stage"], r["member_no"]) for r in page["items"]} == {
        "wmAlice": ("member", "M0001"), "wmAlicia": ("new_friend", None), "wmBob": ("first_purchase", "M0003"),
        "wmCarol": ("repeat", "M0004"), "wmDan": ("dormant", "M0005"), "wmPct": ("new_friend", None)}


async def test_search_combines_with_the_other_filters_and_pages(crm):
    assert await crm.search(q="wm", guide_userid="g1") == ["wmBob", "wmAlicia", "wmAlice"]
    first = await crm.search(q="wm", limit=4)
    assert first == ["wmPct", "wmDan", "wmCarol", "wmBob"]
    rest = await crm.search(q="wm", limit=4, before_id=crm.ids["wmBob"])
    assert rest == ["wmAlicia", "wmAlice"]


async def test_a_store_manager_finds_only_their_stores_customers(crm):
    assert await crm.search(as_="manager", q="wm") == ["wmBob", "wmAlicia", "wmAlice"]
    for q in ("13900000003", "张三丰", "wmCarol", "wmC"):  # wmCarol is at S2
        assert await crm.search(as_="manager", q=q) == [], q
    assert await crm.search(as_="manager", q="13900000001") == ["wmAlice"]
    assert await crm.search(as_="manager", stage="dormant") == []
    assert await crm.search(as_="guide", q="wm") == ["wmPct", "wmDan", "wmCarol"]  # g2's own


@pytest.mark.parametrize("query, field", [
    ({"stage": "planet"}, "stage"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 101}, "q"),
    ({"q": "a\x00b"}, "q"), ({"limit": "0"}, "limit"), ({"before_id": "0"}, "before_id"), ({"sort": "name"}, "sort"),
])
async def test_bad_search_input_is_a_400_naming_the_field(crm, query, field):
    data = await crm.get("/api/v1/customers", 400, **query)
    assert data["error"]["code"] == "invalid_request"
    assert field in str(data["error"]["details"]), data
