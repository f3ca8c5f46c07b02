"""What the admin API and the CSV importer accept and answer for stores, guides, channels and codes.

The importer validates each CSV row with the same models, so a rule lives in one place.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.api.fields import NON_BLANK, both_or_neither
from bot.lbs import CoordSystem, InvalidCoordinates, to_gcj02
from bot.stores.hours import DAYS, InvalidHours, validate_hours

CODE = r"^[A-Za-z0-9_-]+$"
StoreStatus = Literal["open", "closed", "paused"]
GuideStatus = Literal["active", "on_leave", "resigned"]
GuideRule = Literal["round_robin", "least_loaded", "fixed"]
# What validate_hours accepts, said in the OpenAPI document.
_RANGE = {"type": "string", "pattern": r"^\s*([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)\s*$"}
HOURS_SCHEMA = {"type": "object", "propertyNames": {"enum": list(DAYS)},
                "additionalProperties": {"anyOf": [_RANGE, {"type": "array", "items": _RANGE}]},
                "examples": [{"mon": ["10:00-22:00"], "sat": "09:00-23:00"}]}
Hours = Annotated[dict, Field(json_schema_extra=HOURS_SCHEMA)]
# Ranges checked by to_gcj02 (its messages name latitude/longitude, also for CSV rows); said here.
Latitude = Annotated[float, Field(json_schema_extra={"minimum": -90, "maximum": 90})]
Longitude = Annotated[float, Field(json_schema_extra={"minimum": -180, "maximum": 180})]
TagName = Annotated[str, Field(min_length=1, max_length=30, pattern=NON_BLANK)]
COORDINATES = {"allOf": both_or_neither("lat", "lng")}


def _hours(value):
    try:
        return validate_hours(value)
    except InvalidHours as exc:
        raise ValueError(str(exc)) from None


def _coordinates_to_gcj02(model):
    """Coordinates come in any datum and are kept in GCJ-02 (see bot/lbs/datum.py)."""
    if (model.lat is None) != (model.lng is None):
        raise ValueError("give both lat and lng, or neither")
    if model.lat is not None:
        try:
            model.lat, model.lng = to_gcj02(model.lat, model.lng, model.coord_system)
        except InvalidCoordinates as exc:
            raise ValueError(str(exc)) from None
        model.coord_system = CoordSystem.GCJ02
    return model


class StoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=COORDINATES)
    code: str = Field(min_length=1, max_length=32, pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    city: str = Field("", max_length=50)
    address: str = Field("", max_length=300)
    lat: Latitude | None = None
    lng: Longitude | None = None
    coord_system: CoordSystem = CoordSystem.GCJ02
    status: StoreStatus = "open"
    opening_hours: Hours | None = None

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value):
        return _hours(value)

    @model_validator(mode="after")
    def _store_gcj02(self):
        return _coordinates_to_gcj02(self)


# In a PATCH, a field left out stays as it is; null is accepted only where the column may be empty
# (position, hours), so a field typed without `| None` below defaults to None yet refuses null.
class StorePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=COORDINATES)
    name: str = Field(None, min_length=1, max_length=100)
    city: str = Field(None, max_length=50)
    address: str = Field(None, max_length=300)
    lat: Latitude | None = Field(None, description="null with lng null: no position")
    lng: Longitude | None = None
    coord_system: CoordSystem = CoordSystem.GCJ02
    status: StoreStatus = None
    opening_hours: Hours | None = Field(None, description="null: always open")

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value):
        return _hours(value)

    @model_validator(mode="after")
    def _store_gcj02(self):
        return _coordinates_to_gcj02(self)


class StoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    city: str
    address: str
    lat: float | None = Field(description="GCJ-02")
    lng: float | None = Field(description="GCJ-02")
    status: str
    opening_hours: dict | None
    updated_at: dt.datetime


class StoreList(BaseModel):
    stores: list[StoreOut]


class GuideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    userid: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    store_code: str = Field(min_length=1, max_length=32)
    status: GuideStatus = "active"
    daily_add_limit: int = Field(100, ge=0, le=100_000)
    working_hours: Hours | None = None
    is_backup: bool = False

    @field_validator("working_hours")
    @classmethod
    def _check_hours(cls, value):
        return _hours(value)


class GuidePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # null only where the column may be empty (see StorePatch)
    name: str = Field(None, min_length=1, max_length=100)
    store_code: str = Field(None, min_length=1, max_length=32)
    status: GuideStatus = None
    daily_add_limit: int = Field(None, ge=0, le=100_000)
    working_hours: Hours | None = Field(None, description="null: the store's hours")
    is_backup: bool = None

    @field_validator("working_hours")
    @classmethod
    def _check_hours(cls, value):
        return _hours(value)


class GuideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    userid: str
    name: str
    store_code: str
    status: str
    daily_add_limit: int
    working_hours: dict | None
    is_backup: bool


class GuideList(BaseModel):
    guides: list[GuideOut]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32, pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    tag_names: list[TagName] = Field(default_factory=list, max_length=20)
    welcome_text: str | None = Field(None, max_length=1300, description="≤4000 bytes once encoded")
    benefit_template_code: str | None = Field(None, max_length=32)
    benefit_text: str | None = Field(None, max_length=100, description="the new-member benefit on the landing page")

    @field_validator("tag_names")
    @classmethod
    def _tag_names_fit_wecom(cls, names: list[str]) -> list[str]:
        names = [name.strip() for name in names]
        if any(not name or len(name) > 30 for name in names):
            raise ValueError("WeCom tag names are 1 to 30 characters")
        return list(dict.fromkeys(names))


class ChannelOut(ChannelIn):
    model_config = ConfigDict(from_attributes=True)


class ChannelList(BaseModel):
    channels: list[ChannelOut]


class Fallback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_code: str | None = Field(None, description="default store when none is in range")
    guide_userid: str | None = Field(None, description="an online guide who takes anyone")


class QrCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel_code: str = Field(min_length=1, max_length=32)
    name: str = Field("", max_length=100, description="internal; customers never see it")
    public_title: str | None = Field(None, max_length=60, description="the landing page's title")
    radius_m: int = Field(5000, ge=100, le=200_000)
    guide_rule: GuideRule = "round_robin"
    fallback: Fallback = Field(default_factory=Fallback)


class QrCodeOut(BaseModel):
    code: str
    name: str
    public_title: str | None = None
    channel_code: str
    radius_m: int
    store_rule: str
    guide_rule: str
    fallback: dict
    status: str
    landing_url: str
    png_url: str
    svg_url: str


class QrCodeList(BaseModel):
    qrcodes: list[QrCodeOut]
