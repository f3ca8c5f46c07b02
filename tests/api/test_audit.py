"""Admin writes are audited (who, role, method, path, target, when, status) and readable by HQ only."""

from __future__ import annotations


async def audit(seeded, **query) -> list[dict]:
    response = await seeded.client.get("/api/v1/audit", headers=seeded.auth["hq"], params=query)
    assert response.status == 200
    return (await response.json())["entries"]


async def test_a_write_is_recorded_with_its_author_and_target_but_not_its_body(seeded):
    response = await seeded.client.patch("/api/v1/stores/S1", headers=seeded.auth["manager"],
                                         json={"address": "南京西路 1 号"})
    assert response.status == 200
    entry = (await audit(seeded))[0]
    assert {k: entry[k] for k in ("role", "method", "operation", "path", "target", "status")} == {
        "role": "store_manager", "method": "PATCH", "operation": "/api/v1/stores/{code}",
        "path": "/api/v1/stores/S1", "target": "code=S1", "status": 200}
    assert "南京西路" not in str(entry) and entry["at"]


async def test_a_create_names_what_it_created_and_a_refusal_is_recorded_too(seeded):
    created = await seeded.client.post("/api/v1/members", headers=seeded.auth["integration"],
                                       json={"phone": "13700000000", "name": "王女士"})
    refused = await seeded.client.post("/api/v1/stores", headers=seeded.auth["hq"], json={"code": "S1", "name": "重"})
    assert (created.status, refused.status) == (201, 409)
    member_no = (await created.json())["member_no"]
    entries = await audit(seeded, limit=2)
    assert [(e["operation"], e["target"], e["status"]) for e in entries] == [
        ("/api/v1/stores", None, 409), ("/api/v1/members", f"member_no={member_no}", 201)]
    assert "13700000000" not in str(entries) and "王女士" not in str(entries)


async def test_reads_are_not_audited_and_pages_go_back_in_time(seeded):
    before = await audit(seeded)
    await seeded.client.get("/api/v1/stores", headers=seeded.auth["hq"])
    assert await audit(seeded) == before
    assert len(before) >= 3  # the seeding's writes
    older = await audit(seeded, before_id=before[0]["id"], limit=1)
    assert [e["id"] for e in older] == [before[1]["id"]]


async def test_only_hq_reads_the_audit_log(seeded):
    for role in ("manager", "guide", "integration"):
        response = await seeded.client.get("/api/v1/audit", headers=seeded.auth[role])
        assert response.status == 403
