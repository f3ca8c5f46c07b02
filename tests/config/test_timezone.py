"""TIMEZONE is the one corp zone: the dates the chat and the welcome write follow it."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from bot.config import DEFAULT_TIMEZONE, corp_zone, use_timezone
from bot.members.chat.replies import day
from bot.members.welcome import _coupon_sentence

# 23:30 UTC on 1 March: already 2 March in Shanghai, still 1 March in New York.
LATE_EVENING_UTC = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)


@pytest.fixture
def zone():
    yield use_timezone
    use_timezone(DEFAULT_TIMEZONE)


def test_dates_in_chat_replies_follow_the_configured_zone(zone):
    assert day(LATE_EVENING_UTC) == "2026年03月02日"
    zone("America/New_York")
    assert day(LATE_EVENING_UTC) == "2026年03月01日"


def test_the_welcome_coupon_date_follows_the_configured_zone(zone):
    template = SimpleNamespace(name="新人券", kind="cash", value_fen=1000, min_spend_fen=0)
    zone("America/New_York")
    assert "03月01日前有效" in _coupon_sentence(template, LATE_EVENING_UTC)


async def test_opening_the_services_makes_timezone_the_process_zone(make_settings):
    from bot.services import open_services

    async with open_services(make_settings(timezone="Europe/London"), migrate=True):
        assert corp_zone().key == "Europe/London"
    use_timezone(DEFAULT_TIMEZONE)
