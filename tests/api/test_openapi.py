"""The OpenAPI document says what the API accepts: the rules the fuzzer found missing from it."""

from __future__ import annotations

import pytest

from bot.api.fields import NO_NUL


@pytest.fixture
async def document(seeded) -> dict:
    return await (await seeded.client.get("/api/v1/openapi.json")).json()


def body(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def parameter(document: dict, method: str, path: str, name: str) -> dict:
    return next(p["schema"] for p in document["paths"][path][method]["parameters"] if p["name"] == name)


async def test_optional_integers_carry_their_bounds(document):
    discount = body(document, "TemplateIn")["properties"]["discount_percent"]["anyOf"][0]
    assert (discount["minimum"], discount["maximum"]) == (1, 99)
    assert parameter(document, "post", "/api/v1/jobs/{job_id}/retry", "job_id")["maximum"] == 2**63 - 1
    assert parameter(document, "get", "/api/v1/events", "before_id")["anyOf"][0]["maximum"] == 2**63 - 1


async def test_patch_fields_that_refuse_null_do_not_offer_it(document):
    for model, field in (("StorePatch", "name"), ("GuidePatch", "store_code"), ("QrCodePatch", "fallback")):
        assert "anyOf" not in body(document, model)["properties"][field], (model, field)
    assert {"type": "null"} in body(document, "StorePatch")["properties"]["opening_hours"]["anyOf"]


async def test_hours_coordinates_and_rules_between_fields_are_stated(document):
    hours = body(document, "GuideIn")["properties"]["working_hours"]["anyOf"][0]
    assert hours["propertyNames"]["enum"][0] == "mon"
    assert "if" in body(document, "StoreIn")["allOf"][0]
    assert body(document, "StoreIn")["properties"]["lat"]["anyOf"][0]["maximum"] == 90
    assert body(document, "AdjustmentIn")["properties"]["points"]["not"] == {"const": 0}
    assert len(body(document, "MemberIn")["anyOf"]) == 3
    assert len(body(document, "TemplateIn")["oneOf"]) == 2
    assert body(document, "OrderIn")["properties"]["coupon_codes"]["uniqueItems"] is True


async def test_every_free_string_says_it_holds_no_nul(document):
    assert body(document, "StoreIn")["properties"]["name"]["pattern"] == NO_NUL
    assert parameter(document, "get", "/api/v1/stores", "city")["anyOf"][0]["pattern"] == NO_NUL


async def test_one_guide_channel_and_code_are_documented(document):
    for path in ("/api/v1/guides/{userid}", "/api/v1/channels/{code}", "/api/v1/qrcodes/{code}"):
        assert "get" in document["paths"][path]


def test_two_models_of_one_name_cannot_share_a_schema():
    import pytest
    from pydantic import BaseModel, create_model

    from bot.api.auth import Role
    from bot.api.spec import Operation, openapi_document

    first: type[BaseModel] = create_model("PreviewIn", step=(str, ...))
    second: type[BaseModel] = create_model("PreviewIn", audience=(dict, ...))
    operations = [Operation("POST", path, "", (Role.HQ_ADMIN,), None, body, None, 200)
                  for path, body in (("/a", first), ("/b", second))]
    with pytest.raises(ValueError, match="PreviewIn"):
        openapi_document(operations, "t", "1")
