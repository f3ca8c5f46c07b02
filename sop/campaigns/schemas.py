"""Request and response shapes of the campaigns API (as issue 9 writes them)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.validation import rule_broken
from sop.audience import Audience
from sop.outreach.fanout import SENDER_PLACEHOLDERS, unknown_placeholders

TEXT_BYTES = 4000  # one group-send task's text (add_msg_template)
MAX_ATTACHMENTS = 9
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImagePart(_Part):
    media_id: str | None = Field(None, min_length=1, max_length=256)
    pic_url: str | None = Field(None, min_length=1, max_length=2048)


class LinkPart(_Part):
    title: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    picurl: str | None = Field(None, max_length=2048)
    desc: str | None = Field(None, max_length=512)


class MiniprogramPart(_Part):
    title: str = Field(min_length=1, max_length=64)
    pic_media_id: str = Field(min_length=1, max_length=256)
    appid: str = Field(min_length=1, max_length=64)
    page: str = Field(min_length=1, max_length=512)


class MediaPart(_Part):
    media_id: str = Field(min_length=1, max_length=256)


class Attachment(BaseModel):
    """One attachment as WeCom's add_msg_template takes it: its msgtype and the part of that name."""

    model_config = ConfigDict(extra="forbid")
    msgtype: Literal["image", "link", "miniprogram", "video", "file"]
    image: ImagePart | None = None
    link: LinkPart | None = None
    miniprogram: MiniprogramPart | None = None
    video: MediaPart | None = None
    file: MediaPart | None = None

    @model_validator(mode="after")
    def _has_its_part(self) -> Attachment:
        if getattr(self, self.msgtype) is None:
            raise rule_broken(f"a {self.msgtype} attachment needs its {self.msgtype!r} object")
        return self


class Content(BaseModel):
    # Something to send: a text or at least one attachment (the schema says so, the validator below checks).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"minLength": 1}}},
        {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}}]})
    text: str = Field("", description="one text for every recipient of a guide's task")
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("text")
    @classmethod
    def _one_text_per_sender(cls, text: str) -> str:
        if len(text.encode()) > TEXT_BYTES:
            raise rule_broken(f"is {len(text.encode())} bytes; a group send takes at most {TEXT_BYTES}")
        unknown = unknown_placeholders(text)
        if unknown:
            allowed = ", ".join("{" + name + "}" for name in SENDER_PLACEHOLDERS)
            raise rule_broken(
                f"placeholder(s) {', '.join('{' + n + '}' for n in unknown)} cannot be used: one group-send task "
                f"carries one text for all its recipients, so only per-sender placeholders work ({allowed})")
        return text


class Benefit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coupon_template_code: str = Field(min_length=1, max_length=32)


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    audience: Audience
    content: Content
    benefit: Benefit | None = None
    send_at: AwareDatetime | None = None
    attribution_days: int = Field(7, ge=1, le=90)
    holdout_percent: int = Field(0, ge=0, le=50)

    @field_validator("send_at")
    @classmethod
    def _in_the_future(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value <= dt.datetime.now(dt.UTC):
            raise rule_broken("is in the past")
        return value

    @field_validator("content")
    @classmethod
    def _something_to_send(cls, content: Content) -> Content:
        if not content.text and not content.attachments:
            raise rule_broken("needs a text or an attachment")
        return content


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignCreated(BaseModel):
    id: int
    status: str


class Counts(BaseModel):
    targeted: int
    held_out: int
    tasks: int
    guides_confirmed: int
    sent: int
    not_friend: int
    over_cap: int
    failed: int
    pending: int
    skipped: int
    cancelled: int


class Conversions(BaseModel):
    orders: int
    revenue_fen: int
    coupons_redeemed: int
    conversion_rate: float | None
    holdout_conversion_rate: float | None
    uplift: float | None


class Breakdown(BaseModel):
    code: str | None
    targeted: int
    sent: int
    pending: int
    not_friend: int
    over_cap: int
    failed: int
    held_out: int


class CampaignOut(BaseModel):
    id: int
    name: str
    status: str
    audience: dict
    content: dict
    benefit: dict | None
    send_at: dt.datetime | None
    attribution_days: int
    holdout_percent: int
    created_at: dt.datetime
    launched_at: dt.datetime | None
    counts: Counts
    conversions: Conversions
    by_store: list[Breakdown]
    by_guide: list[Breakdown]


class CampaignRow(BaseModel):
    id: int
    name: str
    status: str
    send_at: dt.datetime | None
    created_at: dt.datetime
    launched_at: dt.datetime | None


class CampaignPage(BaseModel):
    campaigns: list[CampaignRow]


class CampaignsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(draft|approved|scheduled|sending|sent|finished|cancelled)$")
    before_id: int | None = Field(None, ge=1)
    limit: int = Field(50, ge=1, le=200)


class RecipientsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(
        None, pattern="^(held_out|planned|pending|sent|not_friend|over_cap|failed|skipped|cancelled)$")
    after_id: int | None = Field(None, ge=0, description="page: recipients after this id")
    limit: int = Field(100, ge=1, le=1000)


class RecipientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    external_userid: str
    guide_userid: str | None
    store_code: str | None
    status: str
    reason: str | None
    coupon_code: str | None
    sent_at: dt.datetime | None


class RecipientPage(BaseModel):
    recipients: list[RecipientOut]
    next_after_id: int | None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience
    holdout_percent: int = Field(0, ge=0, le=50)


class PreviewCount(BaseModel):
    code: str | None
    count: int


class PreviewOut(BaseModel):
    total: int
    by_store: list[PreviewCount]
    by_guide: list[PreviewCount]
    excluded: dict[str, int]


class RemindOut(BaseModel):
    reminded_tasks: int
    reminders_left_24h: int


class CancelOut(BaseModel):
    id: int
    status: str
    cancelled_tasks: int
