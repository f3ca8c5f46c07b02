"""A guide is created only for a member of the corp: WeCom's user/get is asked first."""

from __future__ import annotations


async def test_an_unknown_userid_is_refused_naming_it_and_nothing_is_written(seeded):
    response = await seeded.client.post("/api/v1/guides", headers=seeded.auth["hq"],
                                        json={"userid": "ghost", "name": "幽灵", "store_code": "S1"})
    assert response.status == 422
    error = (await response.json())["error"]
    assert (error["code"], error["details"][0]["field"]) == ("unknown_wecom_user", "userid")
    assert (await seeded.client.get("/api/v1/guides/ghost", headers=seeded.auth["hq"])).status == 404
    assert [call["query"]["userid"] for call in seeded.world.emulator.calls_to("user/get")][-1:] == ["ghost"]


async def test_a_member_who_left_the_corp_is_refused(seeded):
    seeded.world.emulator.add_member("gone", "离职", resigned=True)
    response = await seeded.client.post("/api/v1/guides", headers=seeded.auth["hq"],
                                        json={"userid": "gone", "name": "离职", "store_code": "S1"})
    assert response.status == 422


async def test_a_member_of_the_corp_becomes_a_guide(seeded):
    seeded.world.emulator.add_member("zhangsan", "张三")
    response = await seeded.client.post("/api/v1/guides", headers=seeded.auth["manager"],
                                        json={"userid": "zhangsan", "name": "张三", "store_code": "S1"})
    assert response.status == 201


async def test_a_manager_cannot_probe_wecom_for_another_store(seeded):
    response = await seeded.client.post("/api/v1/guides", headers=seeded.auth["manager"],
                                        json={"userid": "ghost", "name": "幽灵", "store_code": "S2"})
    assert response.status == 403
