"""A feature's settings live on the services: declared by the feature, read from the environment
once when the services open, or given (tests); never module-global."""

from __future__ import annotations

from bot.features import wiring
from bot.members.config import MembersConfig
from bot.services import open_services
from bot.wiring import Feature, Wiring
from sop.engine.config import SopConfig
from sop.outreach.config import OutreachConfig


def test_the_wiring_lists_each_declared_settings_class_once():
    both = Wiring((Feature("a", configs=[MembersConfig]), Feature("b", configs=[MembersConfig, SopConfig])))
    assert both.configs == [MembersConfig, SopConfig]
    assert {MembersConfig, OutreachConfig, SopConfig} <= set(wiring().configs)


async def test_settings_are_read_when_the_services_open_and_given_ones_replace_them(make_settings, monkeypatch):
    monkeypatch.setenv("MEMBERS_JOIN_BONUS_POINTS", "7")
    monkeypatch.setenv("SOP_DIGEST_ITEMS", "4")
    given = OutreachConfig(_env_file=None, cap_per_day=3)
    async with open_services(make_settings(), wiring=wiring(), migrate=True, configs=[given]) as services:
        monkeypatch.setenv("MEMBERS_JOIN_BONUS_POINTS", "9")  # read once: a later change is not seen
        assert services.config(MembersConfig).join_bonus_points == 7
        assert services.config(SopConfig).digest_items == 4
        assert services.config(OutreachConfig) is given
        services.use_config(MembersConfig(_env_file=None, join_bonus_points=1))
        assert services.config(MembersConfig).join_bonus_points == 1
    async with open_services(make_settings(), wiring=wiring(), migrate=True) as other:
        assert other.config(MembersConfig).join_bonus_points == 9  # each process's own, not a global
        assert other.config(OutreachConfig).cap_per_day == OutreachConfig(_env_file=None).cap_per_day
