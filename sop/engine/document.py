"""The SOP template document (JSON through the API, YAML/JSON files through the CLI) and the
checks a model cannot express: placeholders, step order, coupon templates. Every refusal names
the field (`steps[1].content.text`)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select

from bot.members.models import CouponTemplate
from sop.audience import Audience, Stage

TRIGGERS = ("friend_added", "member_joined", "first_purchase", "purchase", "coupon_issued", "coupon_expiring",
            "birthday", "stage_entered", "no_purchase_for", "schedule")
EXITS = ("purchased", "unfriended", "coupon_redeemed", "stage_changed")
REACHES = ("group_send", "guide_push", "guide_task")
SENDER_PLACEHOLDERS = {"guide_name", "store_name"}  # the same for all of one guide's recipients
CUSTOMER_PLACEHOLDERS = {"customer_name", "points", "coupon_name", "coupon_expires"}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
MAX_ATTACHMENTS = 9  # add_msg_template: at most 9 attachments per task


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Trigger(Strict):
    event: Literal[TRIGGERS]
    days_before: int | None = Field(None, ge=0, le=60)  # coupon_expiring, birthday
    stage: Stage | None = None  # stage_entered
    days: int | None = Field(None, ge=1, le=3650)  # no_purchase_for
    dates: list[dt.date] | None = None  # schedule
    weekdays: list[int] | None = None  # schedule: 1 Monday … 7 Sunday
    monthdays: list[int] | None = None  # schedule: 1 … 31

    @model_validator(mode="after")
    def _needs(self) -> Trigger:
        needed = {"coupon_expiring": "days_before", "birthday": "days_before", "stage_entered": "stage",
                  "no_purchase_for": "days"}.get(self.event)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"{self.event} needs {needed}")
        if self.event == "schedule" and not (self.dates or self.weekdays or self.monthdays):
            raise ValueError("schedule needs dates, weekdays or monthdays")
        if any(not 1 <= day <= 7 for day in self.weekdays or []):
            raise ValueError("weekdays are 1 (Monday) … 7 (Sunday)")
        if any(not 1 <= day <= 31 for day in self.monthdays or []):
            raise ValueError("monthdays are 1 … 31")
        return self


class Window(Strict):
    from_: str = Field(alias="from", pattern=CLOCK)
    to: str = Field(pattern=CLOCK)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.to <= self.from_:
            raise ValueError("to must be after from")
        return self


class After(Strict):
    days: int = Field(0, ge=0, le=3650)
    hours: int = Field(0, ge=0, le=23)
    minutes: int = Field(0, ge=0, le=59)

    def delta(self) -> dt.timedelta:
        return dt.timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class Content(Strict):
    text: str | None = Field(None, max_length=4000)
    attachments: list[dict] | None = Field(None, max_length=MAX_ATTACHMENTS)


class Sku(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    price_fen: int | None = Field(None, ge=0)
    url: str | None = Field(None, max_length=500)


class Benefit(Strict):
    coupon_template_code: str = Field(min_length=1, max_length=32)


class Step(Strict):
    key: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    after: After = Field(default_factory=After)
    at: str | None = Field(None, pattern=CLOCK)
    reach: Literal[REACHES] = "group_send"
    content: Content | None = None
    overrides: dict[str, Content] | None = None  # per store code
    when: Audience | None = None
    sku: list[Sku] | None = Field(None, max_length=MAX_ATTACHMENTS)
    benefit: Benefit | None = None


class SopDocument(Strict):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    trigger: Trigger
    audience: Audience = Field(default_factory=Audience)
    exit_on: list[Literal[EXITS]] = Field(default_factory=list)
    window: Window | None = None
    # Held out of every step (the same customers for the whole SOP): the baseline for uplift.
    holdout_percent: int = Field(0, ge=0, le=50)
    steps: list[Step] = Field(min_length=1, max_length=50)
    description: str | None = None

    @field_validator("steps")
    @classmethod
    def _unique_keys(cls, steps: list[Step]) -> list[Step]:
        keys = [step.key for step in steps]
        if len(set(keys)) != len(keys):
            raise ValueError("step keys must be unique")
        return steps


class SopInvalid(Exception):
    """A template refused: the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def parse(raw: dict) -> SopDocument:
    """The document, or SopInvalid naming the first bad field."""
    try:
        return SopDocument.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
        raise SopInvalid(field or "document", error["msg"]) from None


def step_offset(step: Step) -> tuple[int, str, int, int]:
    """What orders steps: the day, then the clock time (or the hours/minutes after)."""
    return (step.after.days, step.at or "", step.after.hours, step.after.minutes)


def step_attachments(step: Step, content: Content) -> list[dict]:
    """The step's own attachments, then one link per SKU — never another step's."""
    links = [{"msgtype": "link", "link": {"title": sku.name, "url": sku.url,
                                          "desc": f"¥{sku.price_fen / 100:.2f}" if sku.price_fen is not None else ""}}
             for sku in step.sku or [] if sku.url]
    return list(content.attachments or []) + links


def check_semantics(document: SopDocument) -> None:
    """The rules across fields, in document order; raises SopInvalid."""
    previous = None
    for index, step in enumerate(document.steps):
        where = f"steps[{index}]"
        contents = [("content", step.content)] + [(f"overrides.{store}", content)
                                                  for store, content in (step.overrides or {}).items()]
        if step.content is None or not (step.content.text or step.content.attachments):
            raise SopInvalid(f"{where}.content", "a step needs content (text or attachments)")
        for name, content in contents:
            for placeholder in PLACEHOLDER.findall(content.text or ""):
                if placeholder not in SENDER_PLACEHOLDERS | CUSTOMER_PLACEHOLDERS:
                    raise SopInvalid(f"{where}.{name}.text", f"unknown placeholder {{{placeholder}}}")
                if placeholder in CUSTOMER_PLACEHOLDERS and step.reach != "guide_task":
                    raise SopInvalid(f"{where}.{name}.text",
                                     f"{{{placeholder}}} is per customer: only guide_task steps may use it "
                                     "(a group send has one text for all recipients)")
            if len(step_attachments(step, content)) > MAX_ATTACHMENTS:
                raise SopInvalid(f"{where}.{name}.attachments", f"at most {MAX_ATTACHMENTS} attachments with the SKUs")
        if previous is not None and step_offset(step) <= step_offset(previous):
            raise SopInvalid(f"{where}.after", f"offsets out of order: must come after step {previous.key!r}")
        previous = step


async def check_coupons(session, document: SopDocument) -> None:
    for index, step in enumerate(document.steps):
        if step.benefit is None:
            continue
        template = await session.scalar(select(CouponTemplate).where(
            CouponTemplate.code == step.benefit.coupon_template_code))
        if template is None or not template.active:
            raise SopInvalid(f"steps[{index}].benefit.coupon_template_code",
                             f"no active coupon template {step.benefit.coupon_template_code!r}")


async def validate(session, raw: dict) -> SopDocument:
    document = parse(raw)
    check_semantics(document)
    await check_coupons(session, document)
    return document
